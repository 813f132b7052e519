import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import type { StateDict } from './dtypes';
import { loadHfCheckpoint, readJsonFile, saveHfCheckpoint } from './hf-checkpoint';
import { writeSafetensors } from './safetensors';
import { makeTempDir, randomFloats, seededRandom } from './test-helpers';

const tmp = makeTempDir();
afterAll(tmp.cleanup);

function gpt2Like(rand: () => number): StateDict {
  // GPT-2's own names and Conv1D [in, out] layout, as in openai-community/gpt2's model.safetensors.
  const sd: StateDict = new Map();
  sd.set('wte.weight', { dtype: 'F32', shape: [11, 4], data: randomFloats(rand, 44) });
  sd.set('wpe.weight', { dtype: 'F32', shape: [6, 4], data: randomFloats(rand, 24) });
  for (let i = 0; i < 2; i++) {
    sd.set(`h.${i}.attn.c_attn.weight`, { dtype: 'F32', shape: [4, 12], data: randomFloats(rand, 48) });
    sd.set(`h.${i}.attn.c_attn.bias`, { dtype: 'F32', shape: [12], data: randomFloats(rand, 12) });
    sd.set(`h.${i}.ln_1.weight`, { dtype: 'BF16', shape: [4], data: randomFloats(rand, 4) });
  }
  sd.set('ln_f.weight', { dtype: 'F32', shape: [4], data: randomFloats(rand, 4) });
  return sd;
}

/** What a reader gets back for `sd` (BF16 rounds once on write). */
function roundTripped(sd: StateDict): StateDict {
  const p = join(tmp.dir, `rt-${Math.random()}.safetensors`);
  writeSafetensors(p, sd);
  return loadHfCheckpoint(p).tensors;
}

describe('saveHfCheckpoint / loadHfCheckpoint', () => {
  // Linux only: under /proc, Node 20's recursive mkdirSync never returns (procfs answers ENOENT for a child it
  // cannot make; Node takes it for a missing parent and tries again, forever). In a child, bundled by esbuild.
  it.skipIf(process.platform !== 'linux')('a folder that cannot be made is an error naming it, not a hang', () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const script = join(tmp.dir, 'save-under-proc.cjs');
    const contents = `import { saveHfCheckpoint } from ${JSON.stringify(join(here, 'hf-checkpoint.ts'))};
try { saveHfCheckpoint('/proc/rlhf-hf-test/model', {}, new Map()); } catch (e) { process.stderr.write(e.message); process.exit(3); }`;
    buildSync({ stdin: { contents, resolveDir: here, loader: 'ts' }, bundle: true, platform: 'node', format: 'cjs', outfile: script, logLevel: 'silent' });
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal).toBeNull(); // not killed by the timeout
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/^saveHfCheckpoint: \/proc\/rlhf-hf-test\/model: .*\/proc\/rlhf-hf-test/);
  });

  it('single file: config and tensors load back bit-exactly, names untouched', () => {
    const sd = gpt2Like(seededRandom(1));
    const dir = join(tmp.dir, 'gpt2');
    const config = { model_type: 'gpt2', n_embd: 4, n_layer: 2 };
    saveHfCheckpoint(dir, config, sd);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
    const ck = loadHfCheckpoint(dir);
    expect(ck.config).toEqual(config);
    expect(ck.metadata).toEqual({ format: 'pt' });
    expect(new Set(ck.tensors.keys())).toEqual(new Set(sd.keys()));
    expect(ck.tensors.get('wte.weight')).toEqual(sd.get('wte.weight'));
    // saving what was loaded gives identical bytes
    const dir2 = join(tmp.dir, 'gpt2-again');
    saveHfCheckpoint(dir2, ck.config, ck.tensors);
    expect(readFileSync(join(dir2, 'model.safetensors')).equals(readFileSync(join(dir, 'model.safetensors')))).toBe(true);
  });

  it('sharded: writes an index and shards, loads them back; a later single save replaces them', () => {
    const sd = gpt2Like(seededRandom(2));
    const dir = join(tmp.dir, 'sharded');
    saveHfCheckpoint(dir, { a: 1 }, sd, { maxShardBytes: 200 });
    const files = readdirSync(dir).sort();
    expect(files).toContain('model.safetensors.index.json');
    const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    expect(shards.length).toBeGreaterThan(1);
    const index = readJsonFile(join(dir, 'model.safetensors.index.json')) as { weight_map: Record<string, string> };
    expect(Object.keys(index.weight_map).sort()).toEqual([...sd.keys()].sort());
    const ck = loadHfCheckpoint(dir);
    expect(ck.tensors).toEqual(roundTripped(sd));
    saveHfCheckpoint(dir, { a: 1 }, sd);
    expect(existsSync(join(dir, 'model.safetensors.index.json'))).toBe(false);
    expect(loadHfCheckpoint(dir).tensors).toEqual(ck.tensors);
  });

  it('rejects inconsistent sharded checkpoints with the file and tensor named', () => {
    const sd = gpt2Like(seededRandom(3));
    const dir = join(tmp.dir, 'broken');
    saveHfCheckpoint(dir, {}, sd, { maxShardBytes: 200 });
    const ip = join(dir, 'model.safetensors.index.json');
    const good = readFileSync(ip, 'utf8');
    const edit = (f: (wm: Record<string, string>) => void) => {
      const j = JSON.parse(good);
      f(j.weight_map);
      writeFileSync(ip, JSON.stringify(j));
    };
    edit((wm) => (wm['ghost.weight'] = wm['wte.weight']));
    expect(() => loadHfCheckpoint(dir)).toThrow(/tensor "ghost\.weight" listed in model\.safetensors\.index\.json is missing/);
    edit((wm) => (wm['wte.weight'] = '../../etc/passwd'));
    expect(() => loadHfCheckpoint(dir)).toThrow(/tensor "wte\.weight" maps to an invalid shard file/);
    edit((wm) => (wm['wte.weight'] = 'model-00009-of-00009.safetensors'));
    expect(() => loadHfCheckpoint(dir)).toThrow(/shard model-00009-of-00009\.safetensors \(holding "wte\.weight"\) does not exist/);
    // Unlist a tensor whose shard still holds listed ones (a shard the index never names is simply not read).
    const wm0 = JSON.parse(good).weight_map as Record<string, string>;
    const victim = Object.keys(wm0).find((n) => Object.values(wm0).filter((f) => f === wm0[n]).length > 1)!;
    edit((wm) => delete wm[victim]);
    expect(() => loadHfCheckpoint(dir)).toThrow(new RegExp(`tensor "${victim.replace(/[.]/g, '\\.')}" is not listed for this shard`));
    writeFileSync(ip, '{"weight_map": 3}');
    expect(() => loadHfCheckpoint(dir)).toThrow(/weight_map is missing or not an object/);
    writeFileSync(ip, '{oops');
    expect(() => loadHfCheckpoint(dir)).toThrow(/model\.safetensors\.index\.json is not valid JSON/);
    writeFileSync(ip, good);
    writeFileSync(join(dir, 'config.json'), '[1]');
    expect(() => loadHfCheckpoint(dir)).toThrow(/config\.json is not a JSON object/);
  });

  it('explains a missing or empty folder', () => {
    expect(() => loadHfCheckpoint(join(tmp.dir, 'nope'))).toThrow(/does not exist/);
    const empty = join(tmp.dir, 'empty');
    saveHfCheckpoint(empty, {}, new Map());
    writeFileSync(join(empty, 'model.safetensors'), '');
    expect(() => loadHfCheckpoint(empty)).toThrow(/model\.safetensors: file is 0 bytes/);
    expect(() => saveHfCheckpoint(empty, {}, new Map(), { maxShardBytes: 0 })).toThrow(/maxShardBytes must be positive/);
    const torch = join(tmp.dir, 'torch');
    saveHfCheckpoint(torch, {}, new Map());
    rmSync(join(torch, 'model.safetensors'));
    expect(() => loadHfCheckpoint(torch)).toThrow(/has neither model\.safetensors nor model\.safetensors\.index\.json$/);
    writeFileSync(join(torch, 'pytorch_model.bin'), 'PK');
    expect(() => loadHfCheckpoint(torch)).toThrow(/it has pytorch_model\.bin, a PyTorch pickle, which is not read: convert it to safetensors/);
  });
});
