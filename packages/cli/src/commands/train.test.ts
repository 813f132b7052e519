import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { GPT2, HH_CHAT_TEMPLATE, fromPretrained, loadTokenizer, readMetrics, saveModelDir, saveTokenizer, toSftExamples, trainByteLevelBpe } from '@rlhf/core';
import { readAll, sharedDirForTests, sharedPath } from '@rlhf/data';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerDpo } from './dpo';
import { registerPpo } from './ppo';
import { registerRm } from './rm';
import { registerSft } from './sft';

const root = mkdtempSync(join(tmpdir(), 'rlhf-cli-train-'));
/** the built command (the package's test task builds it first) */
const CLI = fileURLToPath(new URL('../../dist/bin.js', import.meta.url));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const base = join(root, 'base');
const jsonl = (name: string, rows: unknown[]) => {
  const p = join(root, name);
  writeFileSync(p, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return p;
};

beforeAll(() => {
  // a tiny base model with its own byte-level BPE tokenizer, saved as a Hugging Face folder
  const corpus = ['the sky is blue. the grass is green. is the sky blue? yes. no. hello there.'];
  const tok = trainByteLevelBpe(corpus, { vocabSize: 290 });
  const model = new GPT2({ vocabSize: tok.vocabSize, nPositions: 64, nEmbd: 32, nLayer: 1, nHead: 2 }, { seed: 1 });
  mkdirSync(base, { recursive: true });
  saveModelDir(base, model.hfConfig(), model.stateDict());
  saveTokenizer(base, tok);
});

/** Runs one training command in-process; returns the summary line it printed. */
async function run(register: (p: Command) => void, name: string, ...args: string[]): Promise<Record<string, unknown>> {
  return (await runWithStderr(register, name, ...args)).summary;
}

/** The same, with what the command wrote on stderr. */
async function runWithStderr(register: (p: Command) => void, name: string, ...args: string[]): Promise<{ summary: Record<string, unknown>; err: string }> {
  const program = new Command('rlhf').exitOverride();
  register(program);
  let out = '';
  let err = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  const quiet = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    err += String(s);
    return true;
  });
  try {
    await program.parseAsync(['node', 'rlhf', name, ...args]);
  } finally {
    spy.mockRestore();
    quiet.mockRestore();
  }
  return { summary: JSON.parse(out.trim().split('\n').at(-1)!), err };
}

describe('rlhf sft | rm | ppo | dpo', () => {
  it('sft: --config plus overriding flags, writes checkpoints, metrics and a loadable final model; --resume continues', async () => {
    const data = jsonl('demos.jsonl', [
      { kind: 'demonstration', prompt: 'is the sky blue?', completion: ' yes.' },
      { kind: 'demonstration', prompt: 'is the grass blue?', completion: ' no.' },
      { kind: 'demonstration', prompt: [{ role: 'user', content: 'hello' }], completion: [{ role: 'assistant', content: 'hello there.' }] },
    ]);
    const cfg = join(root, 'sft.json');
    writeFileSync(cfg, JSON.stringify({ modelPath: base, datasetPath: data, learningRate: 1e-3, perDeviceTrainBatchSize: 2, numTrainEpochs: 1, maxSteps: 4 }));
    const out = join(root, 'sft-out');
    const s = await run(registerSft, 'sft', '--config', cfg, '--out', out, '--max-steps', '3', '--save-steps', '1');
    expect(s).toMatchObject({ command: 'sft', steps: 3, final: join(out, 'final') });
    expect(readMetrics(join(out, 'metrics.jsonl')).filter((r) => 'loss' in r).length).toBe(3);
    expect(existsSync(join(out, 'final', 'tokenizer.json'))).toBe(true);
    const first = fromPretrained(join(out, 'final')).model.stateDict();
    // --resume from checkpoint-2 redoes step 3 and must land on the same weights
    const again = await run(registerSft, 'sft', '--config', cfg, '--out', out, '--max-steps', '3', '--save-steps', '1', '--resume', join(out, 'checkpoint-2'));
    expect(again.steps).toBe(3);
    const second = fromPretrained(join(out, 'final')).model.stateDict();
    for (const [k, v] of first) expect(second.get(k)!.data).toEqual(v.data);
    expect(readMetrics(join(out, 'metrics.jsonl')).filter((r) => 'loss' in r).map((r) => r.step)).toEqual([1, 2, 3]);
  });

  it('rm, then ppo against it, then dpo, from the command line', async () => {
    const comps = jsonl('comparisons.jsonl', [
      { kind: 'comparison', prompt: 'is the sky blue?', completions: [' yes.', ' no.', ' hello.'], ranking: [[0], [2], [1]] },
      { kind: 'comparison', prompt: 'is the grass green?', completions: [' no.', ' yes.'], ranking: [[1], [0]] },
    ]);
    const rmOut = join(root, 'rm-out');
    const r = await run(registerRm, 'rm', '--model-path', base, '--dataset-path', comps, '--eval-dataset-path', comps, '--out', rmOut, '--learning-rate', '1e-3', '--per-device-train-batch-size', '2', '--num-train-epochs', '2');
    expect(r.command).toBe('rm');
    expect((r.eval as { accuracy: number }).accuracy).toBeGreaterThanOrEqual(0);
    expect(JSON.parse(readFileSync(join(rmOut, 'final', 'reward-normalization.json'), 'utf8')).count).toBe(5);

    const prompts = jsonl('prompts.jsonl', [{ kind: 'prompt', prompt: 'is the sky blue?' }, { kind: 'prompt', prompt: 'hello' }]);
    const ppoOut = join(root, 'ppo-out');
    const p = await run(registerPpo, 'ppo', '--model-path', base, '--reward-model-path', join(rmOut, 'final'), '--dataset-path', prompts, '--out', ppoOut,
      '--per-device-train-batch-size', '2', '--response-length', '4', '--total-episodes', '4', '--ppo-epochs', '1', '--missing-eos-penalty', '1');
    expect(p).toMatchObject({ command: 'ppo', steps: 2 });
    expect(fromPretrained(join(ppoOut, 'final')).model.numParameters()).toBeGreaterThan(0); // no value head in the final folder

    // a reward model whose folder holds another tokenizer is refused, naming the field
    const otherTok = trainByteLevelBpe(['completely different text with other merges: zebra quartz jukebox.'], { vocabSize: 290 });
    const otherRm = join(root, 'rm-other');
    mkdirSync(otherRm, { recursive: true });
    for (const f of ['config.json', 'model.safetensors', 'reward-normalization.json']) writeFileSync(join(otherRm, f), readFileSync(join(rmOut, 'final', f)));
    saveTokenizer(otherRm, otherTok);
    const mismatch = await run(registerPpo, 'ppo', '--model-path', base, '--reward-model-path', otherRm, '--dataset-path', prompts, '--out', join(root, 'ppo-x'),
      '--per-device-train-batch-size', '2', '--response-length', '4', '--total-episodes', '4').catch((e: Error) => e);
    expect(String(mismatch)).toMatch(/rewardModelPath .*rm-other: its tokenizer \(\d+ tokens\) does not encode like the policy's \(\d+ tokens\); the models must share one tokenizer/);

    const dpoMismatch = await run(registerDpo, 'dpo', '--model-path', base, '--dataset-path', comps, '--out', join(root, 'dpo-x'), '--ref-model-path', otherRm).catch((e: Error) => e);
    expect(String(dpoMismatch)).toMatch(/refModelPath .*rm-other: its tokenizer \(\d+ tokens\) does not encode like the policy's/);

    const dpoOut = join(root, 'dpo-out');
    const d = await run(registerDpo, 'dpo', '--model-path', base, '--dataset-path', comps, '--out', dpoOut, '--per-device-train-batch-size', '2', '--beta', '0.2');
    expect(d).toMatchObject({ command: 'dpo', steps: 2 }); // 3 + 1 pairs, batches of 2
  });

  it('dpo --loss-type kto (feedback from a file), simpo and orpo (reference-free); --help lists their fields', async () => {
    // TRL's unpaired layout, detected from the first row; a config file names the loss, flags override it
    const feedback = jsonl('feedback.jsonl', [
      { prompt: 'is the sky blue?', completion: ' yes.', label: true },
      { prompt: 'is the sky blue?', completion: ' no.', label: false },
      { prompt: 'is the grass green?', completion: ' yes.', label: true },
      { prompt: [{ role: 'user', content: 'hello' }], completion: [{ role: 'assistant', content: 'go away.' }], label: false },
    ]);
    const cfg = join(root, 'kto.json');
    writeFileSync(cfg, JSON.stringify({ modelPath: base, datasetPath: feedback, lossType: 'kto', perDeviceTrainBatchSize: 2, desirableWeight: 1.33 }));
    const ktoOut = join(root, 'kto-out');
    const k = await run(registerDpo, 'dpo', '--config', cfg, '--eval-dataset-path', feedback, '--out', ktoOut, '--undesirable-weight', '1', '--per-device-eval-batch-size', '2');
    expect(k).toMatchObject({ command: 'dpo', steps: 2, final: join(ktoOut, 'final') });
    expect(Object.keys(k.eval as object)).toEqual(expect.arrayContaining(['loss', 'kl', 'rewards/chosen', 'rewards/rejected', 'rewards/margin']));
    const metrics = readMetrics(join(ktoOut, 'metrics.jsonl')).filter((r) => 'loss' in r && !('eval/loss' in r));
    expect(metrics.length).toBe(2);
    expect(metrics.every((r) => typeof r.kl === 'number' && r.kl >= 0)).toBe(true);
    expect(fromPretrained(join(ktoOut, 'final')).model.numParameters()).toBeGreaterThan(0);

    const prefs = jsonl('prefs.jsonl', [
      { prompt: 'is the sky blue?', chosen: ' yes.', rejected: ' no.' },
      { prompt: 'is the grass green?', chosen: ' yes.', rejected: ' hello there.' },
    ]);
    for (const lossType of ['simpo', 'orpo']) {
      const s = await run(registerDpo, 'dpo', '--model-path', base, '--dataset-path', prefs, '--eval-dataset-path', prefs, '--out', join(root, `${lossType}-out`), '--loss-type', lossType, '--beta', '1');
      expect(s).toMatchObject({ command: 'dpo', steps: 1 });
      expect((s.eval as Record<string, number>)['rewards/accuracy']).toBeGreaterThanOrEqual(0);
    }
    // pairs for KTO: named by file and line, with the conversion; a reference for a reference-free loss: by field
    await expect(run(registerDpo, 'dpo', '--model-path', base, '--dataset-path', prefs, '--out', join(root, 'kto-x'), '--loss-type', 'kto')).rejects.toThrow(
      /prefs.jsonl:1: kind 'preference' cannot be used here; expected 'feedback' \(prompt, completion, label\) \(lossType 'kto' learns from unpaired labels; unpair the pairs first: rlhf data convert FILE --to trl-unpaired/,
    );
    await expect(run(registerDpo, 'dpo', '--model-path', base, '--dataset-path', feedback, '--out', join(root, 'kto-y'))).rejects.toThrow(/feedback.jsonl:1: kind 'feedback' cannot be used here; expected 'preference' or 'comparison' \(unpaired good\/bad feedback trains with lossType 'kto'\)/);
    const refFree = await run(registerDpo, 'dpo', '--model-path', base, '--dataset-path', prefs, '--loss-type', 'simpo', '--ref-model-path', base, '--desirable-weight', '-1').catch((e: Error) => e);
    expect(String(refFree)).toMatch(/desirableWeight: must be ≥ 0, got -1[\s\S]*refModelPath: lossType 'simpo' is reference-free and uses no reference model/);

    const program = new Command('rlhf');
    registerDpo(program);
    const help = program.commands.find((c) => c.name() === 'dpo')!.helpInformation().replace(/\s+/g, ' '); // lines wrap with the terminal
    for (const s of ['kto on unpaired good/bad feedback', '--loss-type <value>', 'simpo, orpo (reference-free); kto (unpaired: prompt, completion, label)', '--simpo-gamma <value>', '--desirable-weight <value>', '--undesirable-weight <value>']) expect(help).toContain(s);
  });

  it('a bad config gives every problem at once, file and flags together, by field name', async () => {
    const cfg = join(root, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ learningRate: -1, klcoef: 0.1, gamma: 2 }));
    const err = await run(registerPpo, 'ppo', '--config', cfg, '--cliprange', 'wide', '--ppo-epochs', '0').catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    for (const f of [
      'learningRate: must be > 0',
      'klcoef: unknown field (did you mean klCoef?)',
      'gamma: must be ≤ 1',
      "cliprange: must be a finite number, got 'wide'",
      'ppoEpochs: must be ≥ 1',
      'modelPath: is required',
      'datasetPath: is required',
      'rewardModelPath: is required',
    ]) {
      expect(msg).toContain(f);
    }
    await expect(run(registerSft, 'sft', '--config', join(root, 'missing.json'))).rejects.toThrow(/--config .*missing.json/);
    await expect(run(registerSft, 'sft', '--out', join(root, 'x'))).rejects.toThrow(/modelPath: is required/);
  });

  it('bad data: dropped lines are listed and training goes on; an unusable record is named by file and line; an empty or damaged file is refused', async () => {
    // one folder for every try: each replaces the last (--overwrite-output-dir)
    const sft = (data: string, ...more: string[]) =>
      runWithStderr(registerSft, 'sft', '--model-path', base, '--dataset-path', data, '--out', join(root, 'sft-bad-data'), '--max-steps', '1', '--overwrite-output-dir', 'true', ...more);
    const some = jsonl('demos-some-bad.jsonl', [
      { kind: 'demonstration', prompt: 'is the sky blue?', completion: ' yes.' },
      { kind: 'demonstration', prompt: '', completion: ' no.' },
      { kind: 'demonstration', prompt: 'is it?', completion: 42 },
    ]);
    const r = await sft(some);
    expect(r.summary).toMatchObject({ command: 'sft', steps: 1 });
    expect(r.err).toMatch(/datasetPath: .*demos-some-bad.jsonl \(rlhf\): 3 read, 1 kept, 2 dropped, 0 warnings/);
    expect(r.err).toMatch(/demos-some-bad.jsonl:2: prompt: the prompt is empty \(empty-prompt\)/);
    expect(r.err).toMatch(/demos-some-bad.jsonl:3: completion: expected a string or a list of \{role, content\} messages, received number \(schema\)/);
    expect(r.err).toMatch(/training on the 1 records kept/);

    const conv = jsonl('demos-conv.jsonl', [
      { kind: 'demonstration', prompt: 'is the sky blue?', completion: ' yes.' },
      { kind: 'demonstration', prompt: 'hi', completion: [{ role: 'user', content: 'hello' }] },
    ]);
    await expect(sft(conv)).rejects.toThrow(/^\S*demos-conv.jsonl:2: a conversational completion must be one 'assistant' message; got \[user\]$/);
    // a whole conversation with no prompt (trl-lm {messages}) trains on its assistant turns
    const whole = jsonl('demos-whole-conv.jsonl', [
      { kind: 'demonstration', completion: [{ role: 'user', content: 'is the sky blue?' }, { role: 'assistant', content: 'yes.' }, { role: 'user', content: 'and grass?' }, { role: 'assistant', content: 'green.' }] },
    ]);
    expect((await sft(whole)).summary).toMatchObject({ command: 'sft', steps: 1 });
    const prefs = jsonl('prefs-for-sft.jsonl', [{ prompt: 'is the sky blue?', chosen: ' yes.', rejected: ' no.' }]);
    await expect(sft(prefs)).rejects.toThrow(/^\S*prefs-for-sft.jsonl:1: kind 'preference' cannot be used here; expected 'demonstration'/);

    const empty = join(root, 'empty.jsonl');
    writeFileSync(empty, '\n\n');
    await expect(sft(empty)).rejects.toThrow(/^datasetPath: \S*empty.jsonl: the file is empty: no records \(empty-file\)$/);
    const k1 = jsonl('k1.jsonl', [{ kind: 'comparison', prompt: 'p', completions: [' a'], ranking: [[0]] }]);
    await expect(runWithStderr(registerRm, 'rm', '--model-path', base, '--dataset-path', k1, '--out', join(root, 'rm-bad-data'))).rejects.toThrow(
      /^\S*k1.jsonl: no usable record\ndatasetPath: \S*k1.jsonl \(rlhf\): 1 read, 0 kept, 1 dropped[\s\S]*k1.jsonl:1: completions: K = 1: a comparison needs at least 2 completions \(k-less-than-2\)/,
    );
    const rows = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ kind: 'demonstration', prompt: `q${i}`, completion: ' yes.' })).join('\n');
    const gz = gzipSync(Buffer.from(rows));
    const cut = join(root, 'cut.jsonl.gz');
    writeFileSync(cut, gz.subarray(0, gz.length - 40));
    await expect(sft(cut)).rejects.toThrow(/^datasetPath: \S*cut.jsonl.gz: cannot read \S*cut.jsonl.gz after line \d+: the gzip stream is truncated \(read-error\) \(a damaged file is not trained on/);
  });
});

describe('rlhf sft: the output folder and the data as given', () => {
  const demos = () =>
    jsonl('demos-dup.jsonl', [
      { kind: 'demonstration', prompt: 'is the sky blue?', completion: ' yes.' },
      { kind: 'demonstration', prompt: 'is the sky blue?', completion: ' yes.' }, // an exact copy
      { kind: 'demonstration', prompt: 'is the grass blue?', completion: ' no.' },
    ]);

  it("refuses another run's folder (naming it) before loading anything; --resume or --overwrite-output-dir true go on", async () => {
    const out = join(root, 'sft-twice');
    const args = ['--model-path', base, '--dataset-path', demos(), '--out', out, '--max-steps', '1'];
    await run(registerSft, 'sft', ...args);
    await expect(run(registerSft, 'sft', ...args)).rejects.toThrow(/^sft config: 1 problem:\n {2}- outputDir: \S+sft-twice is not empty \(checkpoint-1, final, metrics\.jsonl\): another run's output\?/);
    expect((await run(registerSft, 'sft', ...args, '--overwrite-output-dir', 'true')).steps).toBe(1);
    expect(readMetrics(join(out, 'metrics.jsonl')).map((r) => r.step)).toEqual([1]); // not appended to the first run's
    expect((await run(registerSft, 'sft', ...args.slice(0, -1), '2', '--resume', out)).steps).toBe(2);
    // nothing left to train: refused, naming both numbers, and final/ is not written again
    const finalWritten = statSync(join(out, 'final', 'model.safetensors')).mtimeMs;
    await expect(run(registerSft, 'sft', ...args.slice(0, -1), '2', '--resume', out)).rejects.toThrow(
      /^resume: \S+checkpoint-2 is at step 2 and this run has 2 steps \(maxSteps 2\): nothing left to train\. To train on, raise maxSteps \(--max-steps\) above 2;/,
    );
    expect(statSync(join(out, 'final', 'model.safetensors')).mtimeMs).toBe(finalWritten);
  });

  it('keeps exact duplicate records, as the SDK converters do, and says so', async () => {
    const data = demos();
    const r = await runWithStderr(registerSft, 'sft', '--model-path', base, '--dataset-path', data, '--out', join(root, 'sft-dup'), '--max-steps', '1');
    expect(r.err).toMatch(/datasetPath: \S+demos-dup\.jsonl has 1 exact duplicate record, kept \(each copy counts again; `rlhf data convert \S+ --dedupe record -o OUT` removes them\)/);
    // the SDK on the same file: readAll keeps the copy, toSftExamples maps records one to one
    const tok = loadTokenizer(base);
    const { records } = await readAll(data);
    expect(toSftExamples(tok, records)).toHaveLength(3);
  });

  it('a folder that cannot be written is named as such (not EACCES/ENOENT from mkdir)', () => {
    // root writes anywhere: run the built CLI as an unprivileged user then (the files it reads are world-readable)
    const ro = join(root, 'read-only');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    chmodSync(root, 0o755);
    const asRoot = process.getuid?.() === 0;
    const r = spawnSync(process.execPath, [CLI, 'sft', '--model-path', base, '--dataset-path', demos(), '--out', join(ro, 'run'), '--max-steps', '1'], {
      encoding: 'utf8',
      env: { ...process.env, RLHF_NUM_THREADS: '1' },
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/outputDir: \S+read-only\/run: the folder \S+read-only is not writable/);
  });
});

describe.skipIf(!sharedDirForTests())('rlhf sft on the pretrained stories260K (llama2.c .bin + tok512.bin)', () => {
  it('fine-tunes a couple of steps; the final folder loads, with the tokenizer carried over', async () => {
    const data = jsonl('stories.jsonl', [
      { kind: 'demonstration', prompt: 'Once upon a time, there was a little dog.', completion: ' The dog liked to play.' },
      { kind: 'demonstration', prompt: 'Lily went to the park.', completion: ' She saw a big tree.' },
    ]);
    const out = join(root, 'stories-sft');
    const s = await run(registerSft, 'sft', '--model-path', sharedPath('models/stories260K/stories260K.bin'), '--dataset-path', data, '--out', out, '--max-steps', '2', '--learning-rate', '1e-3');
    expect(s.steps).toBe(2);
    expect(existsSync(join(out, 'final', 'tok512.bin'))).toBe(true);
    const m = readMetrics(join(out, 'metrics.jsonl')).filter((r) => 'loss' in r);
    expect(m.map((r) => r.step)).toEqual([1, 2]);
    expect(Number(m[0].loss)).toBeGreaterThan(0);
    expect(fromPretrained(join(out, 'final')).model.vocabSize).toBe(512);
    expect(loadTokenizer(join(out, 'final')).vocabSize).toBe(512);
  });

  it('chat records: refused without a chat template (stories260K has none); --chat-template hh trains on them and the final folder carries it', async () => {
    const data = jsonl('stories-chat.jsonl', [
      { kind: 'demonstration', prompt: [{ role: 'user', content: 'Tell me about the dog.' }], completion: [{ role: 'assistant', content: 'The dog liked to play.' }] },
      { kind: 'demonstration', prompt: [{ role: 'user', content: 'Where did Lily go?' }], completion: [{ role: 'assistant', content: 'She went to the park.' }] },
    ]);
    const model = sharedPath('models/stories260K/stories260K.bin');
    const args = (out: string) => ['--model-path', model, '--dataset-path', data, '--out', join(root, out), '--max-steps', '1', '--learning-rate', '1e-3'];
    await expect(run(registerSft, 'sft', ...args('stories-chat-none'))).rejects.toThrow(/stories-chat\.jsonl:1: the tokenizer has no chat template .*--chat-template NAME\|FILE/);
    await expect(run(registerSft, 'sft', ...args('stories-chat-bad'), '--chat-template', join(root, 'missing.jinja'))).rejects.toThrow(/^--chat-template \S*missing\.jinja: neither a built-in template \(hh, rlhf\) nor an existing file or folder$/);
    const s = await run(registerSft, 'sft', ...args('stories-chat-hh'), '--chat-template', 'hh');
    expect(s.steps).toBe(1);
    const final = join(root, 'stories-chat-hh', 'final');
    expect(readFileSync(join(final, 'chat_template.jinja'), 'utf8')).toBe(HH_CHAT_TEMPLATE);
    const tok = loadTokenizer(final);
    expect(tok.chatTemplate).toBe(HH_CHAT_TEMPLATE);
    // what the run trained on is what the saved folder renders
    expect(toSftExamples(tok, [{ kind: 'demonstration', prompt: [{ role: 'user', content: 'Where did Lily go?' }], completion: [{ role: 'assistant', content: 'She went to the park.' }] }])[0].ids)
      .toEqual(tok.encode('<s>\n\nHuman: Where did Lily go?\n\nAssistant: She went to the park.</s>'));
    // the checkpoint carries the tokenizer and its template: a resumed run goes on with it without the flag, and
    // refuses another one
    const ckpt = join(root, 'stories-chat-hh', 'checkpoint-1');
    expect(loadTokenizer(ckpt).chatTemplate).toBe(HH_CHAT_TEMPLATE);
    await expect(run(registerSft, 'sft', ...args('stories-chat-hh'), '--max-steps', '2', '--resume', ckpt, '--chat-template', 'rlhf'))
      .rejects.toThrow(/^--chat-template rlhf: the run resumed from \S*checkpoint-1 rendered its chat records with another template/);
    const resumed = await run(registerSft, 'sft', ...args('stories-chat-hh'), '--max-steps', '2', '--resume', ckpt);
    expect(resumed.steps).toBe(2);
    expect(loadTokenizer(final).chatTemplate).toBe(HH_CHAT_TEMPLATE);
    expect(fromPretrained(join(root, 'stories-chat-hh', 'checkpoint-2')).tokenizer?.chatTemplate).toBe(HH_CHAT_TEMPLATE);
  });
});
