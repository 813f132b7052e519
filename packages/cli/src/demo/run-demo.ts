/**
 * The built-in demo: the whole RLHF recipe, end to end, on the synthetic customer-support task of task.ts,
 * with nothing downloaded. Stages:
 *
 *   0. base       a byte-level BPE tokenizer and a small GPT-2 pretrained on a generated "web" corpus
 *   1. sft        contractor demonstrations (data/demos.jsonl), supervised fine-tuning
 *   2. rm         K completions per prompt sampled from the SFT model, ranked by the hidden gold labeler with
 *                 noise (data/comparisons.jsonl), reward model with the K-wise loss, held-out accuracy
 *   3. ppo        PPO of the SFT policy against the reward model, KL penalty to the SFT reference; along the
 *                 way, reward-model score and gold score on held-out prompts (the over-optimisation curve)
 *   3b. grpo      (with --grpo) GRPO of the same SFT policy against the same reward model (G samples per prompt,
 *                 group-relative advantages, k3 KL to the SFT reference in the loss), with the same curve
 *   4. eval       base, SFT, PPO (and GRPO) sampled on held-out prompts: gold win rates, mean scores, KL, samples
 *
 * With `lora` (`rlhf demo --lora`) stages 1-3 train LoRA adapters (PEFT's format) instead of whole weights, each on
 * the previous stage's model with its adapter merged (as `rlhf rm|ppo` load an adapter folder as a starting model):
 * models/sft, models/rm (its score head in modules_to_save) and models/ppo are adapter folders, and PPO's reference
 * is the SFT model as the base under the policy's adapters, not a copy.
 *
 * Every data file is in @rlhf/data's `rlhf` format and read back through @rlhf/data (as a user's file would
 * be), every config is written to configs/ so that `rlhf sft|rm|ppo --config` reruns a stage, and each model
 * lands in models/<stage> with its tokenizer.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Device,
  CausalLMWithValueHead,
  GPT2,
  GrpoTrainer,
  PpoTrainer,
  RewardModel,
  RewardTrainer,
  SftTrainer,
  generate,
  grpoConfig,
  noGrad,
  ppoConfig,
  responseLogprobs,
  rewardConfig,
  rewardModelScores,
  saveModelDir,
  saveTokenizer,
  saveTrainedModel,
  sftConfig,
  toPrompts,
  toRankedExamples,
  toSftExamples,
  trainByteLevelBpe,
  type CausalLM,
  type GrpoConfig,
  type LoraConfig,
  type PpoConfig,
  type ProgressReporter,
  type ResponseBatch,
  type RewardConfig,
  type RewardFunction,
  type ScoreNormalization,
  type SftConfig,
  type Steps,
  type Tensor,
  type Tokenizer,
} from '@rlhf/core';
import { readAll, type DataRecord } from '@rlhf/data';
import { meanEstimate, outcomesFromRewards, winRate, type Estimate, type WinRate } from '@rlhf/eval';
import { goldScore, rankWithNoise } from './gold-labeler';
import { FULL_SIZES, QUICK_SIZES, type DemoSizes } from './sizes';
import { CONTRACTOR_STYLE, WEB_STYLE, makeRng, pick, sampleReply, splitPromptSpace, type Prompt, type Rng } from './task';

export interface DemoOptions {
  out: string;
  seed: number;
  quick: boolean;
  /** also GRPO from the same SFT policy against the same reward model, reported beside PPO */
  grpo?: boolean;
  /** a fresh progress display per phase (the CLI's bar or lines) */
  progress: () => ProgressReporter;
  /** one line of results (stdout in the CLI) */
  print: (line: string) => void;
  /** override sizes (tests) */
  sizes?: Partial<DemoSizes>;
  /** stages 1-3 train LoRA adapters (sizes.loraR, loraAlpha, the lora*Lr learning rates) instead of whole weights */
  lora?: boolean;
  /** where every stage trains (each trainer's config.device; default 'cpu') */
  device?: Device;
}

export interface StageTime {
  stage: string;
  wallS: number;
  cpuS: number;
  /**
   * wall seconds of the stage's rollouts (sampling replies and scoring them: PPO's batches, the evaluation) and of
   * its training updates (forwards, backwards, optimizer steps); the rest of wallS is evaluation and saving
   */
  rolloutS: number;
  updateS: number;
}

export interface ModelEval {
  gold: Estimate;
  rm: Estimate;
  /** share of replies that follow each rule of the guide */
  rightRemedy: number;
  namesProduct: number;
  meanWords: number;
}

export interface CurvePoint {
  step: number;
  kl: number;
  rm: number;
  gold: number;
}

/** GRPO's figures (with --grpo), as PPO's in DemoSummary. */
export interface GrpoFigures {
  eval: ModelEval;
  kl: Estimate;
  winOverSft: WinRate;
  winOverPpo: WinRate;
  curve: CurvePoint[];
}

export interface DemoSummary {
  seed: number;
  quick: boolean;
  /** the adapters stages 1-3 trained (rlhf demo --lora), null for full fine-tuning */
  lora: LoraConfig | null;
  /** parameters each stage trained (adapters, and the reward model's score / PPO's value head) */
  trainable: { sft: number; rm: number; ppo: number };
  sizes: DemoSizes;
  params: number;
  tokenizerVocab: number;
  pretrainLoss: number;
  sftEvalLoss: number;
  /** the noisy labels' agreement with the gold order on the held-out comparisons: a ceiling for the RM */
  labelerAgreement: number;
  rmAccuracy: number;
  rmAccuracyPairs: number;
  /** per held-out prompt: pairs ranked right (ties half) and ordered pairs, for an interval over prompts */
  rmAccuracyByPrompt: { correct: number[]; pairs: number[] };
  evalPrompts: number;
  base: ModelEval;
  sft: ModelEval;
  ppo: ModelEval;
  ppoKl: Estimate;
  winPpoOverSft: WinRate;
  winSftOverBase: WinRate;
  /** PPO against the pretrained base: the yardstick that full fine-tuning and LoRA runs share (their SFT models differ) */
  winPpoOverBase: WinRate;
  curve: CurvePoint[];
  /** with --grpo */
  grpo?: GrpoFigures;
  samples: Array<{ prompt: string; base: string; sft: string; ppo: string; goldBase: number; goldSft: number; goldPpo: number; grpo?: string; goldGrpo?: number }>;
  times: StageTime[];
}

const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** A seeded stream per purpose, so that changing one stage's size does not reshuffle the others. */
export function streamRng(seed: number, purpose: number): Rng {
  return makeRng((Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(purpose + 1, 0x85ebca6b)) >>> 0);
}

export function writeJsonl(path: string, records: object[]): void {
  writeFileSync(path, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Reads a data file back through @rlhf/data, as `rlhf sft|rm|ppo` would. */
export async function readRecords(path: string): Promise<DataRecord[]> {
  const { records } = await readAll(path);
  return records;
}

/** Completion text as stored in records: a leading space, so that BPE tokenizes it as it follows "Agent:". */
const asCompletion = (reply: string) => ` ${reply}`;

/** Samples one reply per prompt id list, in chunks; returns the new tokens (stop token included when reached). */
export function sampleReplies(model: CausalLM, prompts: number[][], sizes: DemoSizes, eos: number, seed: number, progress?: ProgressReporter): number[][] {
  const out: number[][] = [];
  const chunk = 128;
  for (let i = 0; i < prompts.length; i += chunk) {
    const g = noGrad(() =>
      generate(model, prompts.slice(i, i + chunk), {
        maxNewTokens: sizes.responseLength,
        temperature: sizes.temperature,
        stopTokens: [eos],
        seed: seed + i,
        padId: 0,
      }),
    );
    out.push(...g.tokens);
    progress?.update(Math.min(prompts.length, i + chunk), {});
  }
  return out;
}

function decodeReply(tokenizer: Tokenizer, tokens: readonly number[]): string {
  const eos = tokenizer.eosId;
  const body = eos !== undefined && tokens[tokens.length - 1] === eos ? tokens.slice(0, -1) : tokens;
  return tokenizer.decode(body, { skipSpecialTokens: true }).trim();
}

/** Reward-model scores (normalised) of (prompt, response) token lists, as PPO scores them (rewardModelScores). */
function rmScores(rm: RewardModel, norm: ScoreNormalization, prompts: number[][], responses: number[][]): number[] {
  return rewardModelScores({ model: rm, normalization: norm }, prompts, responses, 32);
}

function modelEval(prompts: Prompt[], replies: string[], rm: number[]): ModelEval {
  const gold = prompts.map((p, i) => goldScore(p, replies[i]));
  return {
    gold: meanEstimate(gold),
    rm: meanEstimate(rm),
    rightRemedy: mean(prompts.map((p, i) => (p.issue.remedy.some((r) => replies[i].includes(r)) ? 1 : 0))),
    namesProduct: mean(prompts.map((p, i) => (replies[i].includes(p.product) ? 1 : 0))),
    meanWords: mean(replies.map((r) => r.split(/\s+/).filter(Boolean).length)),
  };
}

/**
 * PPO that also judges its held-out samples by the gold labeler at every evaluation: the reward model's
 * score and the gold score side by side, against the KL to the reference (the over-optimisation curve).
 */
export class DemoPpoTrainer extends PpoTrainer {
  readonly curve: CurvePoint[] = [];
  constructor(
    policy: CausalLMWithValueHead,
    prompts: number[][],
    reward: { model: RewardModel; normalization: ScoreNormalization },
    private readonly curvePrompts: Prompt[],
    private readonly curveIds: number[][],
    private readonly tokenizer: Tokenizer,
    options: ConstructorParameters<typeof PpoTrainer>[3],
  ) {
    super(policy, prompts, reward, options);
  }

  override evaluate(): Record<string, number> {
    const ro = this.makeRollout(this.curveIds, this.config.seed);
    const gold = this.curvePrompts.map((p, b) => {
      const toks = Array.from(ro.sequences.subarray(b * ro.width + ro.promptWidth, b * ro.width + ro.promptWidth + ro.lengths[b]));
      return goldScore(p, decodeReply(this.tokenizer, toks));
    });
    const point = { step: this.step, kl: ro.metrics['objective/kl'], rm: ro.metrics['objective/score'], gold: mean(gold) };
    this.curve.push(point);
    return { score: point.rm, gold: point.gold, kl: point.kl, responseLength: ro.metrics.responseLength };
  }
}

/** Per reply of a batch: Σ_t log π(y_t) − log π_ref(y_t) over its sampled tokens (the KL estimate PPO reports). */
function replyKl(policy: CausalLM, ref: CausalLM, batch: ResponseBatch, temperature: number): number[] {
  const pol = responseLogprobs(policy, batch, temperature, 32).logp;
  const refLogp = responseLogprobs(ref, batch, temperature, 32).logp;
  return Array.from({ length: batch.R }, (_, b) => {
    let s = 0;
    for (let j = 0; j < batch.lengths[b]; j++) s += pol[b * batch.Tn + j] - refLogp[b * batch.Tn + j];
    return s;
  });
}

/** −1 for a reply cut at the length limit (no stop token), as PPO's missingEosPenalty 1: GRPO sees PPO's reward. */
export const missingEos: RewardFunction = ({ stopped }) => stopped.map((s) => (s ? 0 : -1));

/** The module `rlhf grpo --config configs/grpo.json` loads for missingEos. */
const MISSING_EOS_MODULE = `// -1 for a reply cut at the length limit (no stop token), as PPO's missingEosPenalty 1
export function missingEos({ stopped }) {
  return stopped.map((s) => (s ? 0 : -1));
}
`;

/** GRPO with PPO's over-optimisation curve: reward-model and gold scores of held-out samples against the KL to SFT. */
export class DemoGrpoTrainer extends GrpoTrainer {
  readonly curve: CurvePoint[] = [];
  constructor(
    policy: CausalLM,
    prompts: number[][],
    reward: { model: RewardModel; normalization: ScoreNormalization },
    private readonly reference: CausalLM,
    private readonly curvePrompts: Prompt[],
    private readonly curveIds: number[][],
    private readonly textOf: Tokenizer,
    options: ConstructorParameters<typeof GrpoTrainer>[3],
  ) {
    super(policy, prompts, [{ model: reward.model, normalization: reward.normalization, name: 'rewardModel' }, { fn: missingEos, name: 'missingEos' }], options);
  }

  /** One sampled reply per prompt (seed `seed`), its reward-model score and its KL to the SFT reference. */
  sampleScored(ids: number[][], seed: number): { tokens: number[][]; rm: number[]; kl: number[] } {
    const { batch, scores } = this.completeAndScore(ids, { seed });
    const rmAt = this.rewards.findIndex((r) => r.name === 'rewardModel');
    return { tokens: batch.responses, rm: Array.from(scores.perFunction[rmAt]), kl: replyKl(this.policy, this.reference, batch, this.config.temperature) };
  }

  override evaluate(): Record<string, number> {
    const { tokens, rm, kl } = this.sampleScored(this.curveIds, this.config.seed);
    const gold = this.curvePrompts.map((p, b) => goldScore(p, decodeReply(this.textOf, tokens[b])));
    const point = { step: this.step, kl: mean(kl), rm: mean(rm), gold: mean(gold) };
    this.curve.push(point);
    return { score: point.rm, gold: point.gold, kl: point.kl };
  }
}

/** What every stage reads: the seed, the sizes, the output folder, the held-out prompts and the stage clock. */
export interface DemoRun {
  seed: number;
  quick: boolean;
  sizes: DemoSizes;
  /** the adapters of stages 1-3, or null: full fine-tuning */
  lora: LoraConfig | null;
  /** where the stages train */
  device: Device;
  print: (line: string) => void;
  progress: () => ProgressReporter;
  /** a path inside the output folder */
  path: (...xs: string[]) => string;
  /** final evaluation, reward-model accuracy and PPO-curve prompts: never in any training data */
  evalPrompts: Prompt[];
  rmEvalPrompts: Prompt[];
  curvePrompts: Prompt[];
  /** n training prompts (with repeats) from the rest of the prompt space */
  drawTrain: (rng: Rng, n: number) => Prompt[];
  times: StageTime[];
  /** the running stage's trainer clock (TrainerBase.timing), set by the stage: splits its time into rollouts and updates */
  stageTiming: { rolloutS: number; updateS: number } | null;
}

/** The file that marks a folder as the demo's output: a later run may clear its stage folders. */
const DEMO_MARKER = '.rlhf-demo';
const STAGE_FOLDERS = ['data', 'configs', 'models', 'runs', 'tokenizer'];

/**
 * The stage folders are cleared only in a folder that is new or empty, or that a demo wrote before (its marker,
 * or configs/base.json of a demo older than the marker): anything else is the user's, and is refused untouched.
 */
function checkDemoOutput(out: string): void {
  if (!existsSync(out)) return;
  const entries = readdirSync(out).sort();
  if (entries.length === 0 || entries.includes(DEMO_MARKER) || existsSync(join(out, 'configs', 'base.json'))) return;
  const shown = entries.slice(0, 6).join(', ') + (entries.length > 6 ? `, ... (${entries.length} entries)` : '');
  throw new Error(
    `rlhf demo: the output folder ${out} holds files the demo did not write (${shown}); the demo clears ${STAGE_FOLDERS.join('/, ')}/ ` +
      'in its output folder: give --out a new or empty folder, or one an earlier demo wrote',
  );
}

/** Clears the output folder's stage subfolders and splits the prompt space for a seed. */
export function startRun(opts: DemoOptions): DemoRun {
  // GRPO's stage trains every weight against a copied reference: with --lora it would not be the LoRA recipe
  if (opts.lora && opts.grpo) throw new Error('rlhf demo: --lora with --grpo is not supported (the GRPO stage fine-tunes every weight); run them apart');
  const sizes: DemoSizes = { ...(opts.quick ? QUICK_SIZES : FULL_SIZES), ...opts.sizes };
  const { seed, out } = opts;
  checkDemoOutput(out);
  for (const d of STAGE_FOLDERS) rmSync(join(out, d), { recursive: true, force: true });
  for (const d of STAGE_FOLDERS) mkdirSync(join(out, d), { recursive: true });
  writeFileSync(join(out, DEMO_MARKER), 'written by rlhf demo: a demo run here clears data/, configs/, models/, runs/ and tokenizer/\n');
  // held-out prompts: final evaluation, reward-model accuracy, the PPO curve; training draws from the rest
  const split = splitPromptSpace(streamRng(seed, 0), sizes.evalPrompts + sizes.rmEvalPrompts);
  const evalPrompts = split.held.slice(0, sizes.evalPrompts);
  return {
    seed, quick: opts.quick, sizes, device: opts.device ?? 'cpu', print: opts.print, progress: opts.progress,
    lora: opts.lora ? { r: sizes.loraR, alpha: sizes.loraAlpha, dropout: 0, targetModules: 'all-linear', useRslora: false, modulesToSave: sizes.loraModulesToSave.length ? [...sizes.loraModulesToSave] : null, baseDtype: 'f32' } : null,
    path: (...xs) => join(out, ...xs),
    evalPrompts,
    rmEvalPrompts: split.held.slice(sizes.evalPrompts),
    curvePrompts: evalPrompts.slice(0, sizes.curvePrompts),
    drawTrain: (rng, n) => Array.from({ length: n }, () => pick(rng, split.train)),
    times: [],
    stageTiming: null,
  };
}

/**
 * Runs f as one stage: its wall and CPU time join run.times, split into rollouts and updates by the trainer clock
 * the stage leaves in run.stageTiming (allRollout: the whole stage samples and scores, as the evaluation does).
 */
export async function timed<T>(run: DemoRun, stage: string, f: () => T | Promise<T>, allRollout = false): Promise<T> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  run.stageTiming = null;
  const r = await f();
  const c = process.cpuUsage(c0);
  const wallS = (performance.now() - t0) / 1000;
  const clock = run.stageTiming as { rolloutS: number; updateS: number } | null; // set by f
  const split = allRollout ? { rolloutS: wallS, updateS: 0 } : { rolloutS: clock?.rolloutS ?? 0, updateS: clock?.updateS ?? 0 };
  run.times.push({ stage, wallS, cpuS: (c.user + c.system) / 1e6, ...split });
  return r;
}

export function lastStageTime(run: DemoRun): string {
  const t = run.times[run.times.length - 1];
  return `${t.wallS.toFixed(0)} s wall, ${t.cpuS.toFixed(0)} s CPU`;
}

/** An RL stage's wall time split by its trainer clock: rollouts (sampling, scoring) and updates. */
function lastStageSplit(run: DemoRun): string {
  const t = run.times[run.times.length - 1];
  return `rollouts ${t.rolloutS.toFixed(0)} s, updates ${t.updateS.toFixed(0)} s`;
}

/** Writes a stage's config (as `rlhf <stage> --config` reads it) to configs/<stage>.json. */
export function writeConfig(run: DemoRun, stage: string, config: object): void {
  writeJson(run.path('configs', `${stage}.json`), config);
}

/** A stage's learning rate and its `lora` field: the adapters' rate with LoRA, the whole model's without. */
function training(run: DemoRun, fullLr: number, loraLr: number): { learningRate: number; lora: LoraConfig | null } {
  return run.lora ? { learningRate: loraLr, lora: run.lora } : { learningRate: fullLr, lora: null };
}

/** What a stage trained: the scalars its trainer updates, and all of the model's (adapters included). */
interface Trained {
  trained: number;
  total: number;
}
const trainedOf = (trainer: { params: Array<[string, Tensor]> }, model: { namedParameters(): Array<[string, Tensor]> }): Trained => ({
  trained: sizeOf(trainer.params),
  total: sizeOf(model.namedParameters()),
});

/** "; LoRA r 16 on all-linear (+ wte whole): N of M parameters trained" for a stage's line (nothing without LoRA). */
function loraNote(run: DemoRun, t: Trained): string {
  if (!run.lora) return '';
  const whole = run.lora.modulesToSave ? ` (+ ${run.lora.modulesToSave.join(', ')} whole)` : '';
  return `; LoRA r ${run.lora.r} on ${run.lora.targetModules}${whole}: ${t.trained} of ${t.total} parameters trained`;
}

/** A prompt and its completion, as a demonstration record holds them. */
export interface TextPair {
  prompt: string;
  completion: string;
}

/**
 * Stage 0: a BPE tokenizer and a GPT-2 pretrained on a generated web corpus (models/init, models/base): the
 * support task's, or `web` (another task's).
 */
export async function pretrainBase(run: DemoRun, web?: TextPair[]): Promise<{ tokenizer: Tokenizer; base: GPT2; pretrainLoss: number }> {
  const { sizes, seed } = run;
  const p = run.path;
  const tokDir = p('tokenizer');
  const r = await timed(run, 'base', async () => {
    const rng = streamRng(seed, 1);
    const docs = web ?? run.drawTrain(rng, sizes.webDocs).map((pr) => ({ prompt: pr.text, completion: asCompletion(sampleReply(rng, pr, WEB_STYLE)) }));
    writeJsonl(p('data', 'web.jsonl'), docs.map((d) => ({ kind: 'demonstration', ...d })));
    const tokenizer = trainByteLevelBpe(docs.map((x) => x.prompt + x.completion), { vocabSize: sizes.vocabSize });
    saveTokenizer(tokDir, tokenizer);
    const base = new GPT2({ vocabSize: tokenizer.vocabSize, nPositions: sizes.nPositions, nEmbd: sizes.nEmbd, nLayer: sizes.nLayer, nHead: sizes.nHead }, { seed });
    saveModelDir(p('models', 'init'), base.hfConfig(), base.stateDict(), { tokenizerFrom: tokDir });
    // pretraining is SFT with the loss on every token (completionOnlyLoss off): `rlhf sft` reruns it
    const config: Partial<SftConfig> = {
      modelPath: 'models/init', datasetPath: 'data/web.jsonl', outputDir: 'runs/base', seed,
      learningRate: sizes.pretrainLr, warmupSteps: 10, lrSchedulerType: 'cosine', numTrainEpochs: sizes.pretrainEpochs,
      perDeviceTrainBatchSize: 32, maxLength: sizes.nPositions, completionOnlyLoss: false, loggingSteps: 10, weightDecay: 0.01,
    };
    writeConfig(run, 'base', sftConfig(config));
    const train = toSftExamples(tokenizer, await readRecords(p('data', 'web.jsonl')));
    const trainer = new SftTrainer(base, train, { config: { ...config, device: run.device, outputDir: p('runs', 'base') }, progress: run.progress() });
    run.stageTiming = trainer.timing;
    trainer.train();
    saveModelDir(p('models', 'base'), base.hfConfig(), base.stateDict(), { tokenizerFrom: tokDir });
    return { tokenizer: tokenizer as Tokenizer, base, pretrainLoss: lastMetric(p('runs', 'base'), 'loss') };
  });
  run.print(`0 base   BPE vocabulary ${r.tokenizer.vocabSize}, GPT-2 ${r.base.config.nLayer} layers x ${r.base.config.nEmbd}, ${paramCount(r.base)} parameters; pretraining loss ${r.pretrainLoss.toFixed(3)} (${lastStageTime(run)})`);
  return r;
}

/** Stage 1: contractor demonstrations (data/demos.jsonl; the support task's, or `demos`) and supervised fine-tuning (models/sft). */
export async function finetuneSft(run: DemoRun, tokenizer: Tokenizer, base: GPT2, demos?: { train: TextPair[]; eval: TextPair[] }): Promise<{ sft: GPT2; sftEvalLoss: number; trained: Trained }> {
  const { sizes, seed } = run;
  const p = run.path;
  const r = await timed(run, 'sft', async () => {
    const sft = base.clone() as GPT2;
    const rng = streamRng(seed, 2);
    const contractor = (pr: Prompt) => ({ prompt: pr.text, completion: asCompletion(sampleReply(rng, pr, CONTRACTOR_STYLE)) });
    const trainPairs = demos?.train ?? run.drawTrain(rng, sizes.demos).map(contractor);
    const heldPairs = demos?.eval ?? run.rmEvalPrompts.map(contractor);
    writeJsonl(p('data', 'demos.jsonl'), trainPairs.map((d) => ({ kind: 'demonstration', ...d })));
    writeJsonl(p('data', 'demos-eval.jsonl'), heldPairs.map((d) => ({ kind: 'demonstration', ...d })));
    const config: Partial<SftConfig> = {
      modelPath: 'models/base', datasetPath: 'data/demos.jsonl', evalDatasetPath: 'data/demos-eval.jsonl', outputDir: 'runs/sft', seed,
      ...training(run, sizes.sftLr, sizes.loraSftLr), warmupSteps: 5, numTrainEpochs: sizes.sftEpochs, perDeviceTrainBatchSize: 32, maxLength: sizes.nPositions,
      loggingSteps: 10,
    };
    writeConfig(run, 'sft', sftConfig(config));
    const train = toSftExamples(tokenizer, await readRecords(p('data', 'demos.jsonl')));
    const evalData = toSftExamples(tokenizer, await readRecords(p('data', 'demos-eval.jsonl')));
    const trainer = new SftTrainer(sft, train, { config: { ...config, device: run.device, outputDir: p('runs', 'sft') }, evalData, progress: run.progress() });
    run.stageTiming = trainer.timing;
    const sftEvalLoss = trainer.train().lastEval.loss ?? NaN;
    // with LoRA: the adapter folder over models/base, and the SFT model with its adapter merged for the next stages
    saveTrainedModel(p('models', 'sft'), sft, { baseModelPath: p('models', 'base'), tokenizerFrom: p('tokenizer') });
    const trained = trainedOf(trainer, sft);
    if (sft.lora) sft.mergeLora();
    return { sft, sftEvalLoss, trained };
  });
  run.print(`1 sft    ${sizes.demos} demonstrations; held-out completion loss ${r.sftEvalLoss.toFixed(3)}${loraNote(run, r.trained)} (${lastStageTime(run)})`);
  return r;
}

/** What stage 2 gives: the reward model with its normalisation, and its held-out figures. */
export interface RewardStage {
  rm: RewardModel;
  normalization: ScoreNormalization;
  trained: Trained;
  rmAccuracy: number;
  rmAccuracyPairs: number;
  rmAccuracyByPrompt: DemoSummary['rmAccuracyByPrompt'];
  labelerAgreement: number;
}

/**
 * Stage 2: K SFT samples per prompt ranked by the gold labeler with noise (data/comparisons*.jsonl), the
 * reward model with the K-wise loss (models/rm), its held-out accuracy.
 */
export async function trainRewardModel(run: DemoRun, tokenizer: Tokenizer, sft: GPT2): Promise<RewardStage> {
  const { sizes, seed } = run;
  const p = run.path;
  const eos = tokenizer.eosId!;
  const r = await timed(run, 'rm', async () => {
    const rm = new RewardModel(sft.clone());
    const rng = streamRng(seed, 3);
    const comparisons = (prompts: Prompt[], file: string, progressLabel: string) => {
      const ids = prompts.map((pr) => tokenizer.encode(pr.text, { addBos: true }));
      const rows = ids.flatMap((x) => Array.from({ length: sizes.k }, () => x));
      const pg = run.progress();
      pg.start(progressLabel, rows.length, 0);
      const replies = sampleReplies(sft, rows, sizes, eos, seed * 1000 + 17 + (file.includes('eval') ? 500000 : 0), pg).map((t) => decodeReply(tokenizer, t));
      pg.stop();
      let agree = 0;
      let pairs = 0;
      const records = prompts.map((pr, i) => {
        const completions = replies.slice(i * sizes.k, (i + 1) * sizes.k);
        const ranks = rankWithNoise(pr, completions, rng, sizes.labelerNoise);
        const gold = completions.map((c) => goldScore(pr, c));
        for (let a = 0; a < completions.length; a++)
          for (let b = a + 1; b < completions.length; b++) {
            if (ranks[a] === ranks[b]) continue;
            pairs++;
            if (gold[a] > gold[b] === ranks[a] < ranks[b] && gold[a] !== gold[b]) agree++;
          }
        // tiers best first: completions sharing a rank form one tier (a tie)
        const tiers = [...new Set(ranks)].sort((x, y) => x - y).map((rank) => ranks.flatMap((x, j) => (x === rank ? [j] : [])));
        return { kind: 'comparison', prompt: pr.text, completions: completions.map(asCompletion), ranking: tiers, labeler: `gold-labeler-${i % 5}` };
      });
      writeJsonl(p('data', file), records);
      return pairs ? agree / pairs : NaN;
    };
    comparisons(run.drawTrain(rng, sizes.rmPrompts), 'comparisons.jsonl', 'sample K');
    const labelerAgreement = comparisons(run.rmEvalPrompts, 'comparisons-eval.jsonl', 'sample K (held out)');
    const config: Partial<RewardConfig> = {
      modelPath: 'models/sft', datasetPath: 'data/comparisons.jsonl', evalDatasetPath: 'data/comparisons-eval.jsonl', outputDir: 'runs/rm', seed,
      ...training(run, sizes.rmLr, sizes.loraRmLr), warmupSteps: 5, numTrainEpochs: sizes.rmEpochs, perDeviceTrainBatchSize: 16, maxLength: sizes.nPositions,
      lossType: 'kwise', loggingSteps: 10,
    };
    writeConfig(run, 'rm', rewardConfig(config));
    const train = toRankedExamples(tokenizer, await readRecords(p('data', 'comparisons.jsonl')));
    const evalData = toRankedExamples(tokenizer, await readRecords(p('data', 'comparisons-eval.jsonl')));
    const trainer = new RewardTrainer(rm, train, { config: { ...config, device: run.device, outputDir: p('runs', 'rm') }, evalData, progress: run.progress() });
    run.stageTiming = trainer.timing;
    const { lastEval } = trainer.train();
    const byPrompt = trainer.evaluateByPrompt();
    const normalization = trainer.normalization;
    // a reward model folder, or with LoRA an adapter folder over models/sft with the score head in modules_to_save
    saveTrainedModel(p('models', 'rm'), rm.model, {
      head: rm.head,
      baseModelPath: p('models', 'sft'),
      tokenizerFrom: p('tokenizer'),
      files: { 'reward-normalization.json': `${JSON.stringify(normalization, null, 2)}\n` },
    });
    return {
      rm, normalization, labelerAgreement, trained: trainedOf(trainer, rm),
      rmAccuracy: lastEval.accuracy ?? NaN,
      rmAccuracyPairs: lastEval.pairs ?? 0,
      rmAccuracyByPrompt: { correct: Array.from(byPrompt.correct), pairs: Array.from(byPrompt.pairs) },
    };
  });
  run.print(
    `2 rm     ${sizes.rmPrompts} prompts x K=${sizes.k} ranked; held-out pairwise accuracy ${pct(r.rmAccuracy)} over ${r.rmAccuracyPairs} pairs ` +
      `(the noisy labels agree with the gold order on ${pct(r.labelerAgreement)})${loraNote(run, r.trained)} (${lastStageTime(run)})`,
  );
  return r;
}

/**
 * Stage 3: PPO of the SFT policy against the reward model, with the gold/proxy curve on held-out prompts (models/ppo).
 * `configOverrides` change the recipe's PPO settings (a variant of the recipe; configs/ppo.json records them).
 */
export async function optimisePpo(
  run: DemoRun,
  tokenizer: Tokenizer,
  sft: GPT2,
  reward: { model: RewardModel; normalization: ScoreNormalization },
  configOverrides: Partial<PpoConfig> = {},
): Promise<DemoPpoTrainer> {
  const { sizes, seed } = run;
  const p = run.path;
  const trainer = await timed(run, 'ppo', async () => {
    const policyLm = sft.clone() as GPT2;
    const rng = streamRng(seed, 4);
    writeJsonl(p('data', 'prompts.jsonl'), run.drawTrain(rng, Math.max(sizes.ppoEpisodes, 256)).map((pr) => ({ kind: 'prompt', prompt: pr.text })));
    writeJsonl(p('data', 'prompts-eval.jsonl'), run.curvePrompts.map((pr) => ({ kind: 'prompt', prompt: pr.text })));
    const config: Partial<PpoConfig> = {
      modelPath: 'models/sft', rewardModelPath: 'models/rm', datasetPath: 'data/prompts.jsonl', evalDatasetPath: 'data/prompts-eval.jsonl',
      outputDir: 'runs/ppo', seed, ...training(run, sizes.ppoLr, sizes.loraPpoLr), totalEpisodes: sizes.ppoEpisodes, responseLength: sizes.responseLength,
      temperature: sizes.temperature, klCoef: sizes.klCoef, perDeviceTrainBatchSize: sizes.ppoBatch / 2, numMiniBatches: 2, ppoEpochs: 2,
      perDeviceEvalBatchSize: 32, missingEosPenalty: 1, evalSteps: sizes.ppoEvalEvery, loggingSteps: 1, lrSchedulerType: 'constant',
      ...configOverrides,
    };
    writeConfig(run, 'ppo', ppoConfig(config));
    const prompts = toPrompts(tokenizer, await readRecords(p('data', 'prompts.jsonl')));
    const curveIds = toPrompts(tokenizer, await readRecords(p('data', 'prompts-eval.jsonl')));
    const t = new DemoPpoTrainer(new CausalLMWithValueHead(policyLm), prompts, reward, run.curvePrompts, curveIds, tokenizer, {
      config: { ...config, device: run.device, outputDir: p('runs', 'ppo') },
      // with LoRA the reference is the SFT model as the base under the policy's adapters (no copy)
      refModel: run.lora ? undefined : sft.clone().freeze(),
      eosTokenId: tokenizer.eosId!,
      progress: run.progress(),
    });
    run.stageTiming = t.timing;
    t.evaluate(); // step 0: the SFT policy itself
    t.train();
    saveTrainedModel(p('models', 'ppo'), policyLm, { baseModelPath: p('models', 'sft'), tokenizerFrom: p('tokenizer') });
    return t;
  });
  const c0 = trainer.curve[0];
  const cN = trainer.curve[trainer.curve.length - 1];
  run.print(
    `3 ppo    ${sizes.ppoEpisodes} episodes; on held-out prompts: reward-model score ${c0.rm.toFixed(2)} -> ${cN.rm.toFixed(2)}, ` +
      `gold score ${c0.gold.toFixed(2)} -> ${cN.gold.toFixed(2)}, KL to SFT ${cN.kl.toFixed(2)} nats${loraNote(run, trainedOf(trainer, trainer.policy))} (${lastStageTime(run)}; ${lastStageSplit(run)})`,
  );
  return trainer;
}

/**
 * Stage 3b (--grpo): GRPO of the SFT policy against the same reward model as PPO (plus PPO's missing-EOS penalty
 * as a reward function), k3 KL to the SFT reference in the loss (models/grpo). grpoEpisodes sampled replies (1024
 * in the full run, a third of PPO's: past about 1000 GRPO over-optimises the reward model; with --quick as many as
 * PPO's), G per prompt; each generation of 64 replies (8 prompts) is used in 4 micro-batches
 * of 16, twice (numIterations 2): the same gradient rows per reply as PPO's 2 epochs, with no value head.
 */
export async function optimiseGrpo(run: DemoRun, tokenizer: Tokenizer, sft: GPT2, reward: { model: RewardModel; normalization: ScoreNormalization }): Promise<DemoGrpoTrainer> {
  const { sizes, seed } = run;
  const p = run.path;
  const trainer = await timed(run, 'grpo', async () => {
    const policyLm = sft.clone() as GPT2;
    const rng = streamRng(seed, 5);
    // one pass over grpoEpisodes / G prompts gives grpoEpisodes replies
    writeJsonl(p('data', 'prompts-grpo.jsonl'), run.drawTrain(rng, Math.ceil(sizes.grpoEpisodes / sizes.grpoGenerations)).map((pr) => ({ kind: 'prompt', prompt: pr.text })));
    writeFileSync(p('configs', 'missing-eos.mjs'), MISSING_EOS_MODULE);
    const config: Partial<GrpoConfig> = {
      modelPath: 'models/sft', datasetPath: 'data/prompts-grpo.jsonl', evalDatasetPath: 'data/prompts-eval.jsonl', outputDir: 'runs/grpo', seed,
      learningRate: sizes.grpoLr, numGenerations: sizes.grpoGenerations, maxCompletionLength: sizes.responseLength, temperature: sizes.temperature,
      beta: sizes.grpoBeta, perDeviceTrainBatchSize: 16, stepsPerGeneration: 4, numIterations: 2, numTrainEpochs: 1,
      perDeviceEvalBatchSize: 32, evalSteps: sizes.grpoEvalEvery, loggingSteps: 1, lrSchedulerType: 'constant',
    };
    // paths in rewardFuncs are relative to the config file (configs/)
    writeConfig(run, 'grpo', { ...grpoConfig(config), rewardFuncs: [{ rewardModel: '../models/rm' }, { module: 'missing-eos.mjs', export: 'missingEos' }] });
    const prompts = toPrompts(tokenizer, await readRecords(p('data', 'prompts-grpo.jsonl')));
    const curveIds = toPrompts(tokenizer, await readRecords(p('data', 'prompts-eval.jsonl')));
    const reference = sft.clone().freeze();
    const t = new DemoGrpoTrainer(policyLm, prompts, reward, reference, run.curvePrompts, curveIds, tokenizer, {
      config: { ...config, device: run.device, outputDir: p('runs', 'grpo') },
      refModel: reference,
      eosTokenId: tokenizer.eosId!,
      tokenizer,
      progress: run.progress(),
    });
    run.stageTiming = t.timing;
    t.evaluate(); // step 0: the SFT policy itself
    t.train();
    saveModelDir(p('models', 'grpo'), policyLm.hfConfig(), policyLm.stateDict(), { tokenizerFrom: p('tokenizer') });
    return t;
  });
  const c0 = trainer.curve[0];
  const cN = trainer.curve[trainer.curve.length - 1];
  run.print(
    `3 grpo   ${sizes.grpoEpisodes} episodes (G=${sizes.grpoGenerations}); on held-out prompts: reward-model score ${c0.rm.toFixed(2)} -> ${cN.rm.toFixed(2)}, ` +
      `gold score ${c0.gold.toFixed(2)} -> ${cN.gold.toFixed(2)}, KL to SFT ${cN.kl.toFixed(2)} nats (${lastStageTime(run)}; ${lastStageSplit(run)})`,
  );
  return trainer;
}

/** What stage 4 gives. */
export type EvalStage = Pick<DemoSummary, 'base' | 'sft' | 'ppo' | 'ppoKl' | 'winPpoOverSft' | 'winSftOverBase' | 'winPpoOverBase' | 'samples'> & {
  grpo?: Omit<GrpoFigures, 'curve'>;
};

/** Stage 4: base, SFT, PPO (and GRPO) sampled on the held-out prompts (same sampling seed), judged by gold (samples.jsonl). */
export async function evaluateModels(
  run: DemoRun,
  tokenizer: Tokenizer,
  models: { base: CausalLM; sft: CausalLM; ppo: DemoPpoTrainer; grpo?: DemoGrpoTrainer },
  reward: { model: RewardModel; normalization: ScoreNormalization },
): Promise<EvalStage> {
  const { sizes, seed, evalPrompts } = run;
  const eos = tokenizer.eosId!;
  const evalIds = evalPrompts.map((pr) => tokenizer.encode(pr.text, { addBos: true }));
  const evalSeed = seed * 1000 + 99;
  const result = await timed(run, 'eval', () => {
    const pg = run.progress();
    pg.start('eval', 2 * evalIds.length, 0);
    const baseTok = sampleReplies(models.base, evalIds, sizes, eos, evalSeed);
    pg.update(evalIds.length, {});
    const sftTok = sampleReplies(models.sft, evalIds, sizes, eos, evalSeed);
    pg.update(2 * evalIds.length, {});
    pg.stop();
    // PPO's replies come from a rollout: it also gives each reply's KL to the reference, token by token
    const ro = models.ppo.makeRollout(evalIds, evalSeed);
    const ppoTok = evalPrompts.map((_, b) => Array.from(ro.sequences.subarray(b * ro.width + ro.promptWidth, b * ro.width + ro.promptWidth + ro.lengths[b])));
    const kl = evalPrompts.map((_, b) => {
      let s = 0;
      for (let j = 0; j < ro.lengths[b]; j++) s += ro.oldLogp[b * ro.Tn + j] - ro.refLogp[b * ro.Tn + j];
      return s;
    });
    const text = (t: number[][]) => t.map((x) => decodeReply(tokenizer, x));
    const [baseText, sftText, ppoText] = [text(baseTok), text(sftTok), text(ppoTok)];
    const gold = (r: string[]) => evalPrompts.map((pr, i) => goldScore(pr, r[i]));
    const [gBase, gSft, gPpo] = [gold(baseText), gold(sftText), gold(ppoText)];
    const { model: rm, normalization } = reward;
    let grpo: EvalStage['grpo'];
    let grpoText: string[] = [];
    let gGrpo: number[] = [];
    if (models.grpo) {
      const g = models.grpo.sampleScored(evalIds, evalSeed);
      grpoText = text(g.tokens);
      gGrpo = gold(grpoText);
      grpo = {
        eval: modelEval(evalPrompts, grpoText, rmScores(rm, normalization, evalIds, g.tokens)),
        kl: meanEstimate(g.kl),
        winOverSft: winRate(outcomesFromRewards(gGrpo, gSft)),
        winOverPpo: winRate(outcomesFromRewards(gGrpo, gPpo)),
      };
    }
    return {
      base: modelEval(evalPrompts, baseText, rmScores(rm, normalization, evalIds, baseTok)),
      sft: modelEval(evalPrompts, sftText, rmScores(rm, normalization, evalIds, sftTok)),
      ppo: modelEval(evalPrompts, ppoText, rmScores(rm, normalization, evalIds, ppoTok)),
      ppoKl: meanEstimate(kl),
      winPpoOverSft: winRate(outcomesFromRewards(gPpo, gSft)),
      winSftOverBase: winRate(outcomesFromRewards(gSft, gBase)),
      winPpoOverBase: winRate(outcomesFromRewards(gPpo, gBase)),
      ...(grpo ? { grpo } : {}),
      samples: evalPrompts.map((pr, i) => ({
        prompt: pr.text, base: baseText[i], sft: sftText[i], ppo: ppoText[i], goldBase: gBase[i], goldSft: gSft[i], goldPpo: gPpo[i],
        ...(grpo ? { grpo: grpoText[i], goldGrpo: gGrpo[i] } : {}),
      })),
    };
  }, true); // the evaluation samples and scores replies: all of it counts as rollouts
  run.print(
    `4 eval   ${evalPrompts.length} held-out prompts; gold win rate PPO over SFT ${pct(result.winPpoOverSft.value)} ` +
      `(${result.winPpoOverSft.wins} wins, ${result.winPpoOverSft.ties} ties, ${result.winPpoOverSft.losses} losses), SFT over base ${pct(result.winSftOverBase.value)}; ` +
      `KL(PPO || SFT) ${result.ppoKl.value.toFixed(2)} nats (${lastStageTime(run)})`,
  );
  if (result.grpo) {
    const w = result.grpo.winOverSft;
    run.print(
      `         gold win rate GRPO over SFT ${pct(w.value)} (${w.wins} wins, ${w.ties} ties, ${w.losses} losses), GRPO over PPO ${pct(result.grpo.winOverPpo.value)}; ` +
        `KL(GRPO || SFT) ${result.grpo.kl.value.toFixed(2)} nats`,
    );
  }
  writeJsonl(run.path('samples.jsonl'), result.samples);
  return result;
}

/** Runs the five stages; writes everything under opts.out; returns the figures. */
export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const run = startRun(opts);
  const { tokenizer, base, pretrainLoss } = await pretrainBase(run);
  const { sft, sftEvalLoss, trained: sftTrained } = await finetuneSft(run, tokenizer, base);
  const rmStage = await trainRewardModel(run, tokenizer, sft);
  const { rm, normalization, trained: rmTrained, ...rmFigures } = rmStage;
  const reward = { model: rm, normalization };
  const trainer = await optimisePpo(run, tokenizer, sft, reward);
  const grpoTrainer = opts.grpo ? await optimiseGrpo(run, tokenizer, sft, reward) : undefined;
  const { grpo, ...result } = await evaluateModels(run, tokenizer, { base, sft, ppo: trainer, grpo: grpoTrainer }, reward);
  return {
    seed: run.seed, quick: run.quick, lora: run.lora, sizes: run.sizes, params: paramCount(base), tokenizerVocab: tokenizer.vocabSize, pretrainLoss, sftEvalLoss,
    trainable: { sft: sftTrained.trained, rm: rmTrained.trained, ppo: trainedOf(trainer, trainer.policy).trained },
    ...rmFigures, evalPrompts: run.evalPrompts.length, ...result, curve: trainer.curve,
    ...(grpo && grpoTrainer ? { grpo: { ...grpo, curve: grpoTrainer.curve } } : {}),
    times: run.times,
  };
}

function sizeOf(params: Array<[string, Tensor]>): number {
  return params.reduce((a, [, t]) => a + t.size, 0);
}

function paramCount(m: GPT2): number {
  return sizeOf(m.namedParameters());
}

/** The last logged value of a metric in a run's metrics.jsonl. */
function lastMetric(runDir: string, key: string): number {
  const lines = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').reverse();
  for (const l of lines) {
    const m = JSON.parse(l) as Record<string, number>;
    if (typeof m[key] === 'number') return m[key];
  }
  return NaN;
}

export const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
