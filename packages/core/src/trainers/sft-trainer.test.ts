import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadLatestCheckpoint, resolveResume } from './checkpoint';
import { readMetrics } from './metrics';
import { silentProgress } from './progress';
import { StatefulRng } from './rng';
import { collateSft, SftTrainer, type SftExample } from './sft-trainer';
import { Llama } from '../model/llama';
import { changedParams, snapshotParams, tempDir, tinyGpt2 } from './test-utils';
import { fromPretrained } from '../model/pretrained';
import { trainByteLevelBpe } from '../tokenizers/bpe-trainer';
import { HH_CHAT_TEMPLATE, withChatTemplate } from '../tokenizers/chat-template';
import { loadTokenizer } from '../tokenizers/load-tokenizer';
import type { Tokenizer } from '../tokenizers/types';

const tmp = tempDir('sft');
afterAll(tmp.cleanup);

/**
 * A task a tiny model can learn: prompt = BOS(1) a b SEP(2), completion = b a EOS(3) with a, b in 4..11
 * (reverse the pair). The prompt is random, so only the completion is learnable.
 */
function task(n: number, seed: number): SftExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, () => {
    const a = 4 + rng.nextInt(8);
    const b = 4 + rng.nextInt(8);
    return { ids: [1, a, b, 2, b, a, 3], lossMask: [0, 0, 0, 0, 1, 1, 1] };
  });
}

describe('collateSft', () => {
  it('shifts targets, masks the prompt and padding, and counts trained tokens', () => {
    const rows = [
      { ids: [1, 5, 2, 6, 3], target: [false, false, false, true, true], positions: [0, 1, 2, 3, 4] },
      { ids: [1, 7, 8], target: [false, true, true], positions: [0, 1, 2] },
    ];
    const b = collateSft(rows);
    expect([b.B, b.T, b.count]).toEqual([2, 5, 4]);
    expect([...b.targets]).toEqual([-100, -100, 6, 3, -100, 7, 8, -100, -100, -100]);
    expect([...b.attentionMask]).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
  });
});

describe('SftTrainer', () => {
  it('writes the tokenizer it is given, chat template included, into every checkpoint (the folder loads with it); one it cannot write is said', () => {
    const bpe = trainByteLevelBpe(['the cat sat on the mat. the dog sat on the log.'.repeat(4)], { vocabSize: 270, specialTokens: ['<|bos|>', '<|eos|>'] });
    const tokenizer = withChatTemplate(bpe, HH_CHAT_TEMPLATE);
    const model = tinyGpt2(3, bpe.vocabSize);
    const out = join(tmp.path, 'with-tokenizer');
    const config = { outputDir: out, learningRate: 1e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 1, saveSteps: 1 };
    new SftTrainer(model, task(16, 5), { config, tokenizer }).train();
    const ckpt = join(out, 'checkpoint-2');
    expect(loadTokenizer(ckpt).chatTemplate).toBe(HH_CHAT_TEMPLATE);
    const pre = fromPretrained(ckpt);
    expect(pre.tokenizer?.encode('the cat sat')).toEqual(bpe.encode('the cat sat'));
    expect(pre.tokenizer?.chatTemplate).toBe(HH_CHAT_TEMPLATE);
    // a tokenizer of the user's own making: the run goes on, its checkpoints without a tokenizer, and says so once
    const logs: string[] = [];
    const own = { ...bpe, encode: (t: string) => bpe.encode(t), decode: (ids: number[]) => bpe.decode(ids) } as unknown as Tokenizer;
    const out2 = join(tmp.path, 'own-tokenizer');
    new SftTrainer(tinyGpt2(3, bpe.vocabSize), task(16, 5), { config: { ...config, outputDir: out2 }, tokenizer: own, progress: { ...silentProgress, log: (m: string) => void logs.push(m) } }).train();
    expect(existsSync(join(out2, 'checkpoint-2', 'model.safetensors'))).toBe(true);
    expect(existsSync(join(out2, 'checkpoint-2', 'tokenizer.json'))).toBe(false);
    expect(logs.filter((l) => /is not one loadTokenizer builds; checkpoints are written without it/.test(l))).toHaveLength(1);
  });

  it('drives the held-out completion loss down; every parameter changes; metrics and checkpoint are written', () => {
    const model = tinyGpt2(1);
    const before = snapshotParams(model.namedParameters());
    const out = join(tmp.path, 'learn');
    const trainer = new SftTrainer(model, task(96, 1), {
      evalData: task(32, 2),
      config: { outputDir: out, learningRate: 3e-3, perDeviceTrainBatchSize: 16, numTrainEpochs: 6, warmupSteps: 2, lrSchedulerType: 'cosine' },
    });
    const first = trainer.evaluate();
    const { steps, lastEval } = trainer.train();
    expect(steps).toBe(36);
    // ln 8 ≈ 2.08 is the floor for a model that ignores the prompt on the first completion token, 0 for
    // one that learnt the reversal; a random model starts near ln 12 ≈ 2.48
    console.log(`sft eval loss ${first.loss.toFixed(3)} -> ${lastEval.loss.toFixed(3)}`);
    expect(first.loss).toBeGreaterThan(2);
    expect(lastEval.loss).toBeLessThan(first.loss * 0.6);
    expect(changedParams(model.namedParameters(), before)).toEqual(model.namedParameters().map(([n]) => n));
    const m = readMetrics(join(out, 'metrics.jsonl'));
    expect(m.filter((r) => 'loss' in r).length).toBe(36);
    expect(m.at(-1)!['eval/loss']).toBeCloseTo(lastEval.loss, 6);
    expect(loadLatestCheckpoint(out)!.step).toBe(36);
    expect(existsSync(join(out, 'checkpoint-36', 'config.json'))).toBe(true);
  });

  it('frozen parameters do not change', () => {
    const model = tinyGpt2(2);
    model.freeze((n) => n.startsWith('h.0.') || n === 'wpe.weight');
    const before = snapshotParams(model.namedParameters());
    new SftTrainer(model, task(16, 3), { evalData: task(4, 13), config: { outputDir: join(tmp.path, 'frozen'), learningRate: 1e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 1, evalSteps: 1 } }).train();
    // periodic evaluation: one eval line per step with evalSteps = 1
    expect(readMetrics(join(tmp.path, 'frozen', 'metrics.jsonl')).filter((r) => 'eval/loss' in r).map((r) => r.step)).toEqual([1, 2]);
    const changed = changedParams(model.namedParameters(), before);
    expect(changed.some((n) => n.startsWith('h.0.') || n === 'wpe.weight')).toBe(false);
    expect(changed).toContain('h.1.attn.c_attn.weight');
  });

  it('gradient accumulation over micro-batches gives the update of one big batch', () => {
    const data = task(16, 4);
    const a = tinyGpt2(3);
    const b = tinyGpt2(3);
    const common = { learningRate: 1e-3, numTrainEpochs: 1, saveSteps: 0, maxGradNorm: 0 };
    new SftTrainer(a, data, { config: { ...common, outputDir: join(tmp.path, 'ga1'), perDeviceTrainBatchSize: 16 } }).train();
    new SftTrainer(b, data, { config: { ...common, outputDir: join(tmp.path, 'ga4'), perDeviceTrainBatchSize: 4, gradientAccumulationSteps: 4 } }).train();
    // same data order (same seed), same mean-over-tokens gradient up to float32 summation order
    const pb = new Map(b.namedParameters());
    for (const [n, t] of a.namedParameters()) {
      const u = pb.get(n)!.data;
      t.data.forEach((x, i) => expect(Math.abs(x - u[i])).toBeLessThan(2e-5));
    }
  });

  it('gradientCheckpointing trains to the same weights, bit for bit', () => {
    const data = task(32, 6);
    const cfg = { learningRate: 2e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 1, saveSteps: 0 };
    const a = tinyGpt2(5), b = tinyGpt2(5);
    new SftTrainer(a, data, { config: { ...cfg, outputDir: join(tmp.path, 'ckpt-off') } }).train();
    new SftTrainer(b, data, { config: { ...cfg, outputDir: join(tmp.path, 'ckpt-on'), gradientCheckpointing: true } }).train();
    expect(b.gradientCheckpointing).toBe(true);
    const pb = new Map(b.namedParameters());
    for (const [n, t] of a.namedParameters()) expect(pb.get(n)!.data, n).toEqual(t.data);
  });

  it('resumes from a checkpoint to the same final weights, bit for bit', () => {
    const data = task(48, 5);
    const cfg = { learningRate: 2e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 2, warmupRatio: 0.2 };
    const full = tinyGpt2(4);
    new SftTrainer(full, data, { config: { ...cfg, outputDir: join(tmp.path, 'full') } }).train();
    // the interrupted run stops after 5 of 12 steps (maxSteps cannot be used: it changes the schedule)
    const dir = join(tmp.path, 'interrupted');
    const part = tinyGpt2(4);
    const t1 = new SftTrainer(part, data, { config: { ...cfg, outputDir: dir, saveSteps: 5 } });
    const stopAt5 = t1 as unknown as { totalSteps: () => number };
    const realTotal = t1.totalSteps();
    stopAt5.totalSteps = () => 5;
    (t1 as unknown as { schedule: () => unknown }).schedule = () => ({ type: 'linear', warmupSteps: Math.ceil(realTotal * 0.2), totalSteps: realTotal });
    t1.train();
    const resumed = tinyGpt2(99); // different init: everything must come from the checkpoint
    new SftTrainer(resumed, data, { config: { ...cfg, outputDir: dir, saveSteps: 5 }, resume: resolveResume(dir) }).train();
    const pr = new Map(resumed.namedParameters());
    for (const [n, t] of full.namedParameters()) expect(pr.get(n)!.data).toEqual(t.data);
    expect(readMetrics(join(dir, 'metrics.jsonl')).filter((r) => 'loss' in r).map((r) => r.step)).toEqual(
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
  });

  it('refuses to resume from a checkpoint of another model, naming the file, and leaves the model untouched', () => {
    const data = task(16, 5);
    const cfg = { learningRate: 2e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 1 };
    const dir = join(tmp.path, 'other-shape');
    new SftTrainer(tinyGpt2(1, 12, 16), data, { config: { ...cfg, outputDir: dir, saveSteps: 1 } }).train();
    const ck = resolveResume(dir);
    const m = tinyGpt2(2); // 32 positions: wpe.weight and its moments have another size
    const before = snapshotParams(m.namedParameters());
    const t = new SftTrainer(m, data, { config: { ...cfg, outputDir: join(tmp.path, 'other-shape-run') }, resume: ck });
    expect(() => t.train()).toThrow(/optimizer\.safetensors does not fit this run's model .*wpe\.weight\.exp_avg has 512 values, the parameter 1024/);
    expect(changedParams(m.namedParameters(), before)).toEqual([]);
    // a checkpoint whose step count is not a count is refused before anything is loaded
    ck.state.optimizerSteps = 'x';
    const m2 = tinyGpt2(3, 12, 16);
    expect(() => new SftTrainer(m2, data, { config: { ...cfg, outputDir: join(tmp.path, 'bad-steps') }, resume: ck }).train()).toThrow(
      /trainer-state.json: state.optimizerSteps "x" is not a non-negative integer/,
    );
  });

  it('with a snapshot (nanGuardSnapshotSteps 1) skips a step whose loss is NaN and restores the last good weights', () => {
    const model = tinyGpt2(5);
    const trainer = new SftTrainer(model, task(32, 6), { config: { outputDir: join(tmp.path, 'nan'), learningRate: 1e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 1, nanGuardSnapshotSteps: 1 } });
    const w = model.param('h.1.mlp.c_fc.weight').data;
    const orig = (trainer as unknown as { trainStep: (s: number) => Record<string, number> }).trainStep.bind(trainer);
    let poisoned: Float32Array | null = null;
    (trainer as unknown as { trainStep: (s: number) => Record<string, number> }).trainStep = (s: number) => {
      if (s === 2) {
        poisoned = w.slice();
        w[0] = Number.NaN; // a weight goes bad before step 3's forward
      }
      return orig(s);
    };
    trainer.train();
    expect(trainer.guard.skipped).toBe(1);
    expect(Number.isFinite(w[0])).toBe(true);
    expect(poisoned).not.toBeNull();
    const rec = readMetrics(join(tmp.path, 'nan', 'metrics.jsonl')).find((r) => r.step === 3)!;
    expect(rec.skipped).toBe(1);
    expect(rec.loss).toBe('NaN');

    // without a snapshot (nanGuardSnapshotSteps 0) the bad weight stays, every later step is bad, and the
    // run stops, saying why; a NaN from the batch alone would only have skipped that step
    const m2 = tinyGpt2(5);
    const t2 = new SftTrainer(m2, task(32, 6), { config: { outputDir: join(tmp.path, 'nan0'), learningRate: 1e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 2, nanGuardSnapshotSteps: 0, nanGuardMaxConsecutive: 2 } });
    const w2 = m2.param('h.1.mlp.c_fc.weight').data;
    const orig2 = (t2 as unknown as { trainStep: (s: number) => Record<string, number> }).trainStep.bind(t2);
    (t2 as unknown as { trainStep: (s: number) => Record<string, number> }).trainStep = (s: number) => {
      if (s === 2) w2[0] = Number.NaN;
      return orig2(s);
    };
    expect(() => t2.train()).toThrow(/for 2 steps in a row; stopped \(no in-memory snapshot is kept: nanGuardSnapshotSteps 0/);
    expect(Number.isNaN(w2[0])).toBe(true);
  });

  it('an update that overflows the weights (finite loss and gradient) is undone (snapshot) or never applied (the default), never snapshotted nor saved', () => {
    // learning rate 1e39: the loss and gradient norm of the step are finite, but AdamW's update (~lr) is
    // not a float32; the guard must see the weights, not only the step's scalars
    const model = tinyGpt2(5);
    const before = snapshotParams(model.namedParameters());
    const out = join(tmp.path, 'overflow');
    const lines: string[] = [];
    const progress = { ...silentProgress, log: (l: string) => lines.push(l) };
    const cfg = { outputDir: out, learningRate: 1e39, perDeviceTrainBatchSize: 8, maxSteps: 3, saveSteps: 1, nanGuardMaxConsecutive: 5, nanGuardSnapshotSteps: 1 };
    const r = new SftTrainer(model, task(32, 6), { config: cfg, progress }).train();
    expect(r.steps).toBe(3);
    expect(changedParams(model.namedParameters(), before)).toEqual([]); // every step undone
    const m = readMetrics(join(out, 'metrics.jsonl'));
    expect(m.map((x) => x.skipped)).toEqual([1, 1, 1]);
    expect(m.every((x) => Number.isFinite(x.loss) && Number.isFinite(x.gradNorm))).toBe(true);
    expect(lines.filter((l) => /the update made \S+ non-finite \(learning rate \d\.\d\de\+3[89]\); undone, restored the state of step 0/.test(l))).toHaveLength(3);
    // the checkpoints hold the good weights, and a run resumed from one trains on (at a sane rate)
    const ck = resolveResume(out);
    for (const [, t] of ck.model) expect((t.data as Float32Array).every(Number.isFinite)).toBe(true);
    expect(new SftTrainer(tinyGpt2(5), task(32, 6), { config: { ...cfg, learningRate: 1e-3, maxSteps: 4 }, resume: ck }).train().steps).toBe(4);

    // with no snapshot (the default) each update is tried on copies first: the overflowing ones are never
    // applied, the weights stay as they were, and the checkpoints hold them
    const out0 = join(tmp.path, 'overflow0');
    const m0 = tinyGpt2(5);
    const lines0: string[] = [];
    const { nanGuardSnapshotSteps: _, ...noSnapshot } = cfg;
    const r0 = new SftTrainer(m0, task(32, 6), { config: { ...noSnapshot, outputDir: out0 }, progress: { ...silentProgress, log: (l: string) => lines0.push(l) } }).train();
    expect(r0.steps).toBe(3);
    expect(changedParams(m0.namedParameters(), before)).toEqual([]);
    expect(readMetrics(join(out0, 'metrics.jsonl')).map((x) => x.skipped)).toEqual([1, 1, 1]);
    expect(lines0.filter((l) => /the update would make \S+ non-finite \(learning rate \d\.\d\de\+3[89]\); not applied/.test(l))).toHaveLength(3);
    for (const [, t] of resolveResume(out0).model) expect((t.data as Float32Array).every(Number.isFinite)).toBe(true);
  });

  it('resuming from a checkpoint that holds non-finite weights says so (not "another model")', () => {
    const out = join(tmp.path, 'diverged');
    const model = tinyGpt2(5);
    const cfg = { outputDir: out, learningRate: 1e-3, perDeviceTrainBatchSize: 8, maxSteps: 1 };
    new SftTrainer(model, task(32, 6), { config: cfg }).train();
    const ck = resolveResume(out);
    (ck.model.get('h.0.mlp.c_fc.weight')!.data as Float32Array)[3] = Number.POSITIVE_INFINITY; // as an older version could save
    expect(() => new SftTrainer(tinyGpt2(5), task(32, 6), { config: { ...cfg, maxSteps: 2 }, resume: ck }).train()).toThrow(
      /resume: \S+checkpoint-1\/model\.safetensors: h\.0\.mlp\.c_fc\.weight holds non-finite values \(the run had diverged when it was saved\); resume from an earlier checkpoint$/,
    );
  });

  it('rejects a bad config with every problem and data with nothing to learn', () => {
    expect(() => new SftTrainer(tinyGpt2(), task(4, 1), { config: { learningRate: -1, perDeviceTrainBatchSize: 0 } })).toThrow(
      /learningRate: must be > 0[\s\S]*perDeviceTrainBatchSize: must be ≥ 1/,
    );
    expect(() => new SftTrainer(tinyGpt2(), [{ ids: [1, 2], lossMask: [0, 0] }], { config: { outputDir: join(tmp.path, 'unused') } })).toThrow(/no training example has a token to learn/);
  });

  it('what maxLength cuts is counted and said once before training, and in the checkpoint; all dropped is an error naming it', () => {
    // 7 tokens, the first to learn at position 4: maxLength 6 truncates, maxLength 4 leaves nothing to learn
    const ex = (a: number) => ({ ids: [1, a, a + 1, 2, a + 2, 3, 3], lossMask: [0, 0, 0, 0, 1, 1, 1] });
    const short = { ids: [1, 5, 2, 6], lossMask: [0, 0, 0, 1] };
    const noTarget = { ids: [1, 5, 2], lossMask: [0, 0, 0] };
    const logs: string[] = [];
    const progress = { ...silentProgress, log: (l: string) => void logs.push(l) };
    const out = join(tmp.path, 'lengths');
    const t = new SftTrainer(tinyGpt2(5), [ex(5), ex(8), short, noTarget], { config: { maxLength: 6, maxSteps: 1, perDeviceTrainBatchSize: 4, outputDir: out }, progress });
    expect(logs).toEqual(['warning: training data: of 4 examples, 2 truncated to maxLength 6; 1 dropped: no token to learn at all (lossMask)']);
    expect(t.lengthReport).toEqual({ examples: 4, maxLength: 6, truncated: 2, droppedByLength: 0, droppedNoTarget: 1, shortestExample: 3, earliestTarget: 3 });
    t.train();
    expect(resolveResume(out).state).toMatchObject({ extra: { data: { truncated: 2, droppedNoTarget: 1 } } });

    logs.length = 0;
    new SftTrainer(tinyGpt2(5), [ex(5), short], { config: { maxLength: 4, outputDir: join(tmp.path, 'unused') }, progress });
    expect(logs).toEqual(['warning: training data: of 2 examples, 1 dropped: no token to learn within maxLength 4']);
    expect(() => new SftTrainer(tinyGpt2(5), [ex(5), ex(8)], { config: { maxLength: 4, outputDir: join(tmp.path, 'unused') } })).toThrow(
      'SftTrainer: every one of 2 training examples is dropped by maxLength 4: none has a token to learn within it (the shortest example has 7 tokens, the earliest token to learn is at position 4); raise maxLength or shorten the prompts',
    );
    // nothing cut: nothing said
    logs.length = 0;
    new SftTrainer(tinyGpt2(5), [ex(5)], { config: { maxLength: 7, outputDir: join(tmp.path, 'unused') }, progress });
    expect(logs).toEqual([]);
  });

  it('packing fills rows of maxLength with whole examples, positions restarting, and still learns', () => {
    const rows = [
      { ids: [1, 5, 2, 6, 3], lossMask: [0, 0, 0, 1, 1] },
      { ids: [1, 7, 2, 8, 3], lossMask: [0, 0, 0, 1, 1] },
      { ids: [1, 9, 2, 10, 3], lossMask: [0, 0, 0, 1, 1] },
    ];
    const t = new SftTrainer(tinyGpt2(6), rows, { config: { packing: true, maxLength: 12, perDeviceTrainBatchSize: 8, numTrainEpochs: 1, outputDir: join(tmp.path, 'pack') } });
    const packed = (t as unknown as { rows: { ids: number[]; positions: number[]; target: boolean[] }[] }).rows;
    expect(packed.map((r) => r.ids.length)).toEqual([10, 5]); // 5 + 5 fit in 12, the third does not
    expect(packed[0].positions).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    const b = collateSft(packed);
    // the first token of the second example is never a target, its completion tokens are
    expect([...b.targets.subarray(0, 10)]).toEqual([-100, -100, 6, 3, -100, -100, -100, 8, 3, -100]);
    const model = tinyGpt2(6);
    const tr = new SftTrainer(model, task(48, 9), { evalData: task(16, 10), config: { packing: true, maxLength: 28, learningRate: 3e-3, perDeviceTrainBatchSize: 4, numTrainEpochs: 4, outputDir: join(tmp.path, 'pack2') } });
    const first = tr.evaluate();
    const { lastEval } = tr.train();
    expect(lastEval.loss).toBeLessThan(first.loss - 0.3);
  });

  it('trains a Llama (RoPE, RMSNorm, SwiGLU, grouped-query attention) as well', () => {
    const model = new Llama({ vocabSize: 12, hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 4, numKvHeads: 2, maxPositions: 32 }, { seed: 3 });
    const before = snapshotParams(model.namedParameters());
    const tr = new SftTrainer(model, task(32, 11), { evalData: task(16, 12), config: { learningRate: 3e-3, perDeviceTrainBatchSize: 8, numTrainEpochs: 3, outputDir: join(tmp.path, 'llama') } });
    const first = tr.evaluate();
    const { lastEval } = tr.train();
    expect(lastEval.loss).toBeLessThan(first.loss - 0.2);
    expect(changedParams(model.namedParameters(), before)).toEqual(model.namedParameters().map(([n]) => n));
  });
});
