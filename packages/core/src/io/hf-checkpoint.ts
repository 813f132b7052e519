/**
 * Hugging Face checkpoint folders as they are on the Hub: `config.json`, then either `model.safetensors` or
 * `model.safetensors.index.json` (`{ metadata, weight_map: { tensor name: shard file } }`) with its shards.
 * Tensor names are kept exactly as in the files (e.g. GPT-2's `h.0.attn.c_attn.weight`, Llama's
 * `model.layers.0.self_attn.q_proj.weight`); mapping them onto a model is the model's job.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, normalize } from 'node:path';
import { ensureWritableDir, writeFileAtomic } from './atomic-write';
import type { StateDict } from './dtypes';
import { readSafetensors, serializeSafetensors } from './safetensors';

/** A loaded checkpoint folder: the parsed config.json (empty object when absent) and all tensors. */
export interface HfCheckpoint {
  config: Record<string, unknown>;
  tensors: StateDict;
  /** `__metadata__` of the (first) safetensors file. */
  metadata: Record<string, string>;
}

/** Reads and parses a JSON file, with the path in every error. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Loads a checkpoint folder (or a single `.safetensors` file, with no config). Sharded checkpoints are read
 * shard by shard; every tensor the index names must be in the shard it names, and no name may appear twice.
 */
export function loadHfCheckpoint(path: string): HfCheckpoint {
  if (!existsSync(path)) throw new Error(`checkpoint ${path} does not exist`);
  if (statSync(path).isFile()) {
    const f = readSafetensors(path);
    return { config: {}, tensors: f.tensors, metadata: f.metadata };
  }
  const dir = path;
  const configPath = join(dir, 'config.json');
  let config: Record<string, unknown> = {};
  if (existsSync(configPath)) {
    const c = readJsonFile(configPath);
    if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new Error(`${configPath} is not a JSON object`);
    config = c as Record<string, unknown>;
  }
  const single = join(dir, 'model.safetensors');
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (existsSync(single)) {
    const f = readSafetensors(single);
    return { config, tensors: f.tensors, metadata: f.metadata };
  }
  if (!existsSync(indexPath)) {
    // PyTorch pickles can run code when loaded and are not read here: say what to do instead.
    const pickle = ['pytorch_model.bin', 'pytorch_model.bin.index.json'].find((f) => existsSync(join(dir, f)));
    const hint = pickle ? ` (it has ${pickle}, a PyTorch pickle, which is not read: convert it to safetensors)` : '';
    throw new Error(`checkpoint ${dir} has neither model.safetensors nor model.safetensors.index.json${hint}`);
  }
  const index = readJsonFile(indexPath) as { weight_map?: unknown };
  const wm = index?.weight_map;
  if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) throw new Error(`${indexPath}: weight_map is missing or not an object`);
  const weightMap = wm as Record<string, unknown>;
  const shards = new Map<string, string[]>();
  for (const [name, file] of Object.entries(weightMap)) {
    // A shard name from an untrusted index must stay inside the folder.
    if (typeof file !== 'string' || file === '' || isAbsolute(file) || normalize(file).startsWith('..') || basename(file) !== file) {
      throw new Error(`${indexPath}: tensor "${name}" maps to an invalid shard file ${JSON.stringify(file)}`);
    }
    if (!shards.has(file)) shards.set(file, []);
    shards.get(file)!.push(name);
  }
  const tensors: StateDict = new Map();
  let metadata: Record<string, string> | undefined;
  for (const [file, names] of shards) {
    const shardPath = join(dir, file);
    if (!existsSync(shardPath)) throw new Error(`${indexPath}: shard ${file} (holding "${names[0]}") does not exist`);
    const f = readSafetensors(shardPath);
    metadata ??= f.metadata;
    for (const [name, t] of f.tensors) {
      if (tensors.has(name)) throw new Error(`${shardPath}: tensor "${name}" appears in more than one shard`);
      if (weightMap[name] !== file) {
        throw new Error(`${shardPath}: tensor "${name}" is not listed for this shard in ${basename(indexPath)}`);
      }
      tensors.set(name, t);
    }
    for (const name of names) {
      if (!f.tensors.has(name)) throw new Error(`${shardPath}: tensor "${name}" listed in ${basename(indexPath)} is missing`);
    }
  }
  return { config, tensors, metadata: metadata ?? {} };
}

/** Options for `saveHfCheckpoint`. */
export interface SaveHfCheckpointOptions {
  /** Safetensors `__metadata__`; defaults to `{ format: 'pt' }` as transformers writes it. */
  metadata?: Record<string, string>;
  /** Split into shards of at most about this many bytes (a tensor is never split); default: one file. */
  maxShardBytes?: number;
}

/**
 * Saves `config.json` and the tensors as `model.safetensors` (or shards `model-0000i-of-0000n.safetensors` plus
 * `model.safetensors.index.json` when `maxShardBytes` is given and exceeded), each file written atomically.
 * The folder is created if needed. What this writes, `loadHfCheckpoint` reads back bit-exactly.
 */
export function saveHfCheckpoint(dir: string, config: Record<string, unknown>, tensors: StateDict, options: SaveHfCheckpointOptions = {}): void {
  // not mkdirSync's recursive mode: Node 20's loops forever under /proc (ENOENT for a child it cannot make)
  ensureWritableDir(dir, `saveHfCheckpoint: ${dir}`);
  const metadata = options.metadata ?? { format: 'pt' };
  const bytesOf = (n: string) => {
    const t = tensors.get(n)!;
    return t.dtype === 'F16' || t.dtype === 'BF16' ? t.data.length * 2 : t.data.byteLength;
  };
  const groups: string[][] = [[]];
  let current = 0;
  const max = options.maxShardBytes;
  if (max !== undefined && !(max > 0)) throw new RangeError(`saveHfCheckpoint: maxShardBytes must be positive, got ${max}`);
  for (const name of tensors.keys()) {
    const b = bytesOf(name);
    if (max !== undefined && current > 0 && current + b > max) {
      groups.push([]);
      current = 0;
    }
    groups[groups.length - 1].push(name);
    current += b;
  }
  const pick = (names: string[]): StateDict => new Map(names.map((n) => [n, tensors.get(n)!]));
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  if (groups.length === 1) {
    writeFileAtomic(join(dir, 'model.safetensors'), serializeSafetensors(tensors, metadata));
    // A stale index from an earlier sharded save would be ignored by our loader but confuse other tools.
    rmSync(join(dir, 'model.safetensors.index.json'), { force: true });
    return;
  }
  const n = groups.length;
  const pad = (i: number) => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  let total = 0;
  groups.forEach((names, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    writeFileAtomic(join(dir, file), serializeSafetensors(pick(names), metadata));
    for (const name of names) {
      weightMap[name] = file;
      total += bytesOf(name);
    }
  });
  // The index goes last: a reader that finds it finds every shard it names.
  writeFileAtomic(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
  // A single-file model.safetensors from an earlier save would take precedence over the new shards: remove it.
  rmSync(join(dir, 'model.safetensors'), { force: true });
}
