/**
 * What every trainer shares (TRL's Trainer, reduced): AdamW over the trainable parameters with global-norm
 * clipping and a warmup + decay schedule, the NaN guard, metrics.jsonl, progress reporting, periodic
 * evaluation and atomic checkpoints with exact resume.
 *
 * A subclass supplies the training step (forward + backward of its micro-batches, accumulating gradients
 * into the parameters' .grad) and, optionally, an evaluation; `optimizerStep()` then applies one update.
 *
 * Exact resume: a checkpoint holds the whole model (so it loads as a model), the AdamW moments and step
 * count, and the subclass's state (PPO: the sampling RNG and the KL controller). With `lora` in the config the
 * trainer adds LoRA adapters to the model's trunk (the causal LM, under a value or reward head) and trains only them
 * and the heads; a checkpoint then holds only those, as a PEFT adapter folder over the run's starting model
 * (adapter_model.safetensors + adapter_config.json), and the adapters' dropout is reseeded from the seed and the
 * step, so a resumed run repeats it. Data order comes from the
 * seed and the epoch only, so a resumed run sees the batches the uninterrupted run would have seen and
 * reaches the same weights bit for bit (same thread count: threaded reductions fix their order per count).
 *
 * Graceful stop: `requestStop(reason)` asks a running trainer to stop at the next safe point (after the
 * optimizer step in progress; PPO: after the rollout in progress, see canStopAfter). It writes a checkpoint
 * there exactly like a periodic one, logs where it stopped and how to resume, and train() returns with
 * `interrupted: true` (no final evaluation, no onTrainEnd). train() is synchronous, so a stop can only be
 * requested from the trainer's own callbacks (the progress reporter) or before it starts; `trainAsync()`
 * runs the same loop but gives the event loop a turn after every step, so signal handlers and timers can
 * call requestStop (the CLI's Ctrl-C does).
 *
 * Waiting: a step may have to wait on a promise (an online trainer's async reward function). The work before
 * a step (`beforeStep`) and the evaluation (`evaluateSteps`) are coroutines that yield what they wait for:
 * trainAsync() awaits it, train() stops with an error that says to use trainAsync().
 *
 * Data parallelism (under mpirun: see ../distributed/): every rank holds the whole model and plans the same
 * steps; each global batch is cut into one contiguous share per rank (`shard`), each rank backpropagates its
 * share's loss weighted by the step's *global* count, and GradientSync sums the gradients over the ranks in
 * buckets, overlapping the backward (`backward(root, grad, { lastOfStep: true })` marks where that may start).
 * The weights are broadcast from rank 0 at the start, metrics are averaged over the ranks (weighted by
 * `metricWeight`), and only rank 0 logs, writes metrics.jsonl and checkpoints. A run resumes on any world size
 * that divides the checkpoint's global batch. With one rank none of this runs.
 */
import { join } from 'node:path';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { ensureWritableDir, writableDirProblem } from '../io/atomic-write';
import { ConfigError } from './config';
import type { StateDict } from '../io/dtypes';
import { kernelsFor } from '../backend/backends';
import { backendFor, deviceMemoryStats, resetDeviceMemoryPeak, type Device } from '../backend/device';
import { kernels } from '../backend/cpu';
import { averageMetrics, worldCollective, type Collective } from '../distributed/collective';
import { GradientSync, type GradientSyncOptions } from '../distributed/grad-sync';
import { checkDeviceAllReduceMode, deviceAllReduceFor } from '../distributed/device-all-reduce';
import { broadcastTrainingState, broadcastWeights, shardRange } from '../distributed/data-parallel';
import { AdamW, gradNorm as gradNormOf } from '../optim/adamw';
import type { CausalLM } from '../model/common';
import { addLora } from '../model/lora';
import { adapterConfigJson, loadPeftStateDict, moduleOfParam, peftStateDict, readAdapterConfig } from '../model/peft';
import { autocast, Bf16WeightCache } from '../tensor/autocast';
import type { Tensor } from '../tensor/tensor';
import { checkpointDirName, saveCheckpoint, type LoadedCheckpoint } from './checkpoint';
import { MetricsWriter, type MetricsRecord } from './metrics';
import { NanGuard, NonFiniteError } from './nan-guard';
import { silentProgress, type ProgressReporter } from './progress';
import { lrMultiplier, type LrSchedule } from './schedules';
import { AsyncRewardError, asyncMessage, runAsync, type Steps, type Wait } from './steps';
import { resolveWarmupSteps, type TrainingArgs } from './training-args';
import { isWritableTokenizer, tokenizerFiles } from '../tokenizers/load-tokenizer';
import type { Tokenizer } from '../tokenizers/types';

/**
 * What a trainer trains: named parameters (HF names), gradients, and state dicts for checkpoints; a causal LM
 * itself (gradientCheckpointing), or a pairing of one with a head (`model`: a policy with a value head, a
 * reward model).
 */
export interface Trainable {
  namedParameters(): Array<[string, Tensor]>;
  zeroGrad(): void;
  stateDict(): StateDict;
  loadStateDict(sd: StateDict, opts?: { strict?: boolean }): void;
  gradientCheckpointing?: boolean;
  model?: { gradientCheckpointing: boolean };
  /** moves every parameter to a device (TrainingArgs.device) */
  to?(device: Device): unknown;
}

/**
 * Puts the model on config.device (before the optimizer lays out its buffers there): what is on the cpu moves (a
 * model trained by an earlier stage may already be there, with a new head on the cpu). A parameter on another
 * device is refused rather than moved back silently, and so is a device whose backend cannot load (the reason
 * said). Data parallelism works on a device too: its gradients are all-reduced through the host (grad-sync.ts).
 */
function placeOnDevice(label: string, model: Trainable, device: Device): void {
  const refuse = (message: string) => new ConfigError(`${label} config`, [{ field: 'device', message }]);
  const named = model.namedParameters();
  const elsewhere = named.find(([, t]) => t.device !== device && t.device !== 'cpu');
  if (elsewhere) {
    throw refuse(`${device}, but parameter ${elsewhere[0]} is on ${elsewhere[1].device}: set device to where the model is, or give the trainer the model on the cpu (it moves it)`);
  }
  if (named.every(([, t]) => t.device === device)) return;
  if (typeof model.to !== 'function') throw refuse(`${device}: this trainable has no to(device)`);
  try {
    backendFor(device);
  } catch (e) {
    throw refuse(`${device}: ${(e as Error).message}`);
  }
  model.to(device);
}

/** Turns activation checkpointing of the trained causal LM on or off (TrainingArgs.gradientCheckpointing). */
function setGradientCheckpointing(label: string, model: Trainable, on: boolean): void {
  if (typeof model.gradientCheckpointing === 'boolean') model.gradientCheckpointing = on;
  else if (model.model && typeof model.model.gradientCheckpointing === 'boolean') model.model.gradientCheckpointing = on;
  else if (on) throw new Error(`${label}: gradientCheckpointing is on, but the model trained is not a causal LM whose blocks can be checkpointed`);
}

/**
 * Scales gradients so their global norm (already computed, `norm`) is at most maxNorm, with transformers'
 * coefficient max / (norm + 1e-6) capped at 1. Returns the coefficient. The trainer computes the norm once
 * for the NaN guard and the metrics, so this takes it rather than recomputing it (optim's clipGradNorm does).
 */
export function scaleGradsToNorm(params: Array<[string, Tensor]>, norm: number, maxNorm: number): number {
  if (!(maxNorm > 0)) return 1;
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  if (coef < 1) {
    for (const [, p] of params) if (p.grad) kernelsFor(p.device).scale(p.grad.buf, p.grad.buf, coef, p.size);
  }
  return coef;
}

export interface TrainerOptions {
  progress?: ProgressReporter;
  /** a checkpoint to continue from (see resolveResume) */
  resume?: LoadedCheckpoint;
  /** the ranks to train with (default: worldCollective(), MPI under an MPI launcher, else this process alone) */
  world?: Collective;
  /** gradient buckets of data-parallel runs (bucket size, overlap with the backward) */
  gradientSync?: GradientSyncOptions;
  /**
   * The tokenizer the run's data were encoded with (its chat template included): written into every checkpoint
   * (tokenizerFiles), as transformers' Trainer saves its processing class, so that a checkpoint folder loads with it
   * (fromPretrained, `rlhf eval --model run/checkpoint-N`) and a resumed run can render chat as this one did.
   */
  tokenizer?: Tokenizer;
}

/** What train() returns. */
export interface TrainResult {
  /** optimizer steps completed (the step the run stopped at, when interrupted) */
  steps: number;
  /** metrics of the last evaluation */
  lastEval: Record<string, number>;
  /** the run stopped early on requestStop(); its state is in `checkpoint`, and onTrainEnd did not run */
  interrupted: boolean;
  /**
   * The newest checkpoint this call wrote (an interrupted run: the one to resume from; null when it stopped
   * before its first step, where nothing changed since the start)
   */
  checkpoint: string | null;
  /** the reason given to requestStop(), when interrupted */
  stopReason?: string;
}

/** What a run leaves in its outputDir (the CLI adds final/): deleted before a run with overwriteOutputDir. */
const RUN_ARTIFACT = /^(metrics\.jsonl|checkpoint-\d+|final|\.tmp-.*)$/;

/** Config fields a resumed run may change without training anything else (TrainerBase.reportChangedSettings). */
const SETTINGS_NOT_TRAINED: ReadonlySet<string> = new Set([
  'outputDir', 'overwriteOutputDir', 'loggingSteps', 'saveSteps', 'saveTotalLimit', 'evalSteps', 'evalDatasetPath',
  'perDeviceEvalBatchSize', 'nanGuardMaxConsecutive', 'nanGuardSnapshotSteps', 'device', 'gradientCheckpointing',
  'maxSteps', 'numTrainEpochs',
]);

/**
 * Checks a trainer's outputDir before anything runs and returns it: it is given (no default: nothing lands in
 * the current folder unasked), it can be created or written, and it is new or empty unless the run resumes
 * (from a checkpoint there or elsewhere) or overwriteOutputDir is set, so that a second run never appends to
 * another run's metrics.jsonl nor leaves its checkpoints beside the new ones (transformers'
 * overwrite_output_dir rule). Throws a ConfigError naming outputDir; `what` names the config in it.
 */
export function checkOutputDir(config: Pick<TrainingArgs, 'outputDir' | 'overwriteOutputDir'>, resuming: boolean, what = 'trainer config'): string {
  const dir = config.outputDir;
  const fail = (message: string): never => {
    throw new ConfigError(what, [{ field: 'outputDir', message }]);
  };
  if (typeof dir !== 'string' || dir === '') {
    return fail("is required to train: the folder for metrics.jsonl and the checkpoints (e.g. config: { outputDir: 'runs/sft' })");
  }
  const problem = writableDirProblem(dir);
  if (problem) fail(`${dir}: ${problem}`);
  if (resuming || config.overwriteOutputDir || !existsSync(dir)) return dir;
  if (!statSync(dir).isDirectory()) fail(`${dir} is a file, not a folder`);
  const entries = readdirSync(dir).sort();
  if (entries.length === 0) return dir;
  const shown = entries.slice(0, 4).join(', ') + (entries.length > 4 ? `, … (${entries.length} entries)` : '');
  return fail(
    `${dir} is not empty (${shown}): another run's output? Resume it (resume: resolveResume(dir); --resume), ` +
      'set overwriteOutputDir (--overwrite-output-dir true) to replace its metrics and checkpoints, or choose another folder',
  );
}

/** The causal LM a trainable is or wraps (a policy with a value head, a reward model's trunk): where adapters go. */
export function trunkOf(m: Trainable): CausalLM | null {
  const c = m as unknown as Partial<CausalLM> & { model?: Partial<CausalLM> };
  if (typeof c.linearNames === 'function') return m as unknown as CausalLM;
  return c.model && typeof c.model.linearNames === 'function' ? (c.model as CausalLM) : null;
}

export interface StepResult {
  /** the update was applied (false: skipped by the NaN guard) */
  applied: boolean;
  gradNorm: number;
  lr: number;
}

export abstract class TrainerBase<C extends TrainingArgs> {
  readonly params: Array<[string, Tensor]>;
  readonly optimizer: AdamW;
  readonly guard: NanGuard;
  protected progress: ProgressReporter;
  protected metrics: MetricsWriter | null = null;
  /** config.outputDir, checked (see checkOutputDir) */
  readonly outputDir: string;
  /** optimizer steps completed (counting skipped ones) */
  step = 0;
  /** the step to continue from, when resuming */
  protected readonly resumeFrom: LoadedCheckpoint | undefined;
  /** written into each checkpoint (TrainerOptions.tokenizer) */
  private readonly checkpointTokenizer: Tokenizer | undefined;
  /** metrics of the last evaluation */
  lastEval: Record<string, number> = {};
  /** a pending requestStop(), with its reason */
  private stopRequest: { reason?: string } | null = null;
  /** an optimizer step is running (trainStep + update): a stop requested now lands after it */
  private inStep = false;
  /** the ranks of this run (size 1: a single process) */
  readonly world: Collective;
  /** this rank's share of the current step, set by trainStep (examples or tokens): the weight of its metrics */
  protected metricWeight = 1;
  /**
   * Wall-clock seconds of this trainer's steps so far, split into rollouts (the phases a trainer runs through
   * rolloutTimed: generation, scoring, log-probs of a fresh batch) and updates (the rest of each step: forwards,
   * backwards, the optimizer). Evaluations are in neither.
   */
  readonly timing = { rolloutS: 0, updateS: 0 };
  private readonly syncOptions: GradientSyncOptions;
  /** during a data-parallel step: the gradient buckets */
  protected gradSync: GradientSync | null = null;
  private globalBatchMemo: number | null = null;

  /** mixedPrecision 'bf16': the bf16 copies of the weights for the step in progress (emptied after each update) */
  protected readonly weightCopies = new Bf16WeightCache();

  /** the causal LM trained (or under the head trained), where LoRA adapters go; null for other trainables */
  readonly trunk: CausalLM | null;

  protected constructor(
    readonly config: C,
    readonly model: Trainable,
    options: TrainerOptions = {},
  ) {
    this.trunk = trunkOf(model);
    if (config.lora) {
      if (!this.trunk) throw new Error(`${this.label()}: lora is set but the model is not a causal LM (nor one under a head)`);
      if (this.trunk.lora) {
        throw new Error(
          `${this.label()}: lora is set but the model already has LoRA adapters: merge them first (fromPretrained(dir, { mergeAdapter: true })), ` +
            'or set lora to null to go on training the ones it has',
        );
      }
      const { baseDtype, ...spec } = config.lora;
      addLora(this.trunk, spec, { seed: config.seed });
      if (baseDtype === 'bf16') this.trunk.keepFrozenInBf16();
    }
    this.world = options.world ?? worldCollective();
    placeOnDevice(this.label(), model, config.device);
    this.params = model.namedParameters().filter(([, p]) => p.requiresGrad);
    if (this.params.length === 0) throw new Error(`${this.label()}: the model has no trainable parameter`);
    this.syncOptions = options.gradientSync ?? {};
    checkDeviceAllReduceMode(this.syncOptions.deviceAllReduce);
    // every rank starts from rank 0's weights (before a subclass copies the policy into a frozen reference)
    broadcastWeights(this.world, model.namedParameters());
    setGradientCheckpointing(this.label(), model, config.gradientCheckpointing);
    this.optimizer = new AdamW(this.params, {
      beta1: config.adamBeta1,
      beta2: config.adamBeta2,
      eps: config.adamEpsilon,
      weightDecay: config.weightDecay,
    });
    this.guard = new NanGuard({ maxConsecutive: config.nanGuardMaxConsecutive, snapshotEvery: config.nanGuardSnapshotSteps });
    // one logger: rank 0
    this.progress = this.world.rank === 0 ? (options.progress ?? silentProgress) : silentProgress;
    this.resumeFrom = options.resume;
    // a tokenizer of the user's own implementation cannot be written: the checkpoints go without it, said once
    this.checkpointTokenizer = options.tokenizer && isWritableTokenizer(options.tokenizer) ? options.tokenizer : undefined;
    if (options.tokenizer && !this.checkpointTokenizer) {
      this.progress.log(`${this.label()}: the tokenizer (${options.tokenizer.constructor.name}) is not one loadTokenizer builds; checkpoints are written without it`);
    }
    // rank 0 owns the output folder (it may already be writing there when another rank gets here): the other
    // ranks check the field only
    this.outputDir = checkOutputDir(config, this.resumeFrom !== undefined || !this.isMainRank, `${this.label()} config`);
  }

  /** Whether this process logs, writes metrics.jsonl and checkpoints (rank 0, or the only process). */
  get isMainRank(): boolean {
    return this.world.rank === 0;
  }

  /**
   * Rows this rank takes of each global batch (SFT, reward model, DPO: a micro-batch; PPO: a rollout batch):
   * perRankBatch() on every rank. A resumed run on another world size keeps the checkpoint's global batch,
   * divided among the ranks it has now.
   */
  protected perRankBatch(): number {
    return this.config.perDeviceTrainBatchSize;
  }

  /** Rows of one global batch: perRankBatch() × world size, or the resumed run's when its world size differed. */
  get globalBatch(): number {
    if (this.globalBatchMemo === null) {
      const mine = this.perRankBatch() * this.world.size;
      const saved = (this.resumeFrom?.state as { dataParallel?: { worldSize?: unknown; globalBatch?: unknown } } | undefined)?.dataParallel;
      let g = mine;
      if (saved && saved.worldSize !== this.world.size && typeof saved.globalBatch === 'number' && saved.globalBatch !== mine) {
        if (!Number.isSafeInteger(saved.globalBatch) || saved.globalBatch < 1 || saved.globalBatch % this.world.size !== 0) {
          throw new Error(
            `resume: ${this.resumeFrom!.path} was trained with a global batch of ${String(saved.globalBatch)} rows on ${String(saved.worldSize)} ranks, ` +
              `which ${this.world.size} ranks cannot share evenly: resume on a world size that divides ${String(saved.globalBatch)}`,
          );
        }
        g = saved.globalBatch;
        this.progress.log(`resume: the checkpoint's run had ${String(saved.worldSize)} ranks and a global batch of ${g}; on ${this.world.size} ranks each takes ${g / this.world.size} rows`);
      }
      this.globalBatchMemo = g;
    }
    return this.globalBatchMemo;
  }

  /** This rank's contiguous share of a global batch (`indices`, at most globalBatch long; the last may be short). */
  protected shard<T>(indices: T[]): T[] {
    if (this.world.size === 1) return indices;
    const [from, to] = shardRange(indices.length, this.globalBatch, this.world.rank, this.world.size);
    return indices.slice(from, to);
  }

  /**
   * Backpropagates from root (a scalar, or with `grad` its gradient). `lastOfStep`: no other backward follows in
   * this optimizer step on this rank, so in a data-parallel run each bucket of gradients starts its all-reduce as
   * soon as its backward is done. Calling root.backward() directly is correct too, without that overlap.
   */
  protected backward(root: Tensor, grad?: Float32Array, opts: { lastOfStep?: boolean } = {}): void {
    if (opts.lastOfStep) this.gradSync?.arm();
    root.backward(grad);
  }

  /** Name for logs: 'sft', 'rm', 'ppo', 'dpo'. */
  protected abstract label(): string;
  /** Total optimizer steps of the run. */
  abstract totalSteps(): number;
  /** Runs the micro-batches of optimizer step `step` (0-based), leaving gradients in .grad; returns its metrics. */
  protected abstract trainStep(step: number): Record<string, number>;

  /** Runs a rollout (generation and what scores it, waits included) and counts its time in timing.rolloutS. */
  protected *rolloutTimed<T>(steps: Steps<T>): Steps<T> {
    const t0 = performance.now();
    try {
      return yield* steps;
    } finally {
      this.timing.rolloutS += (performance.now() - t0) / 1e3;
    }
  }
  /** Held-out metrics (no grad); {} when there is no evaluation set. */
  evaluate(): Record<string, number> {
    return {};
  }
  /**
   * The evaluation the loop runs, as a coroutine that may wait (an async reward function): evaluate() by
   * default. A trainer whose evaluation may wait overrides this (and makes evaluate() run it synchronously).
   */
  protected *evaluateSteps(): Steps<Record<string, number>> {
    return this.evaluate();
  }
  /** evaluate(), awaiting whatever it waits for (async reward functions). */
  async evaluateAsync(): Promise<Record<string, number>> {
    return runAsync(this.evaluateSteps());
  }
  /**
   * Work before optimizer step `step` that may wait on promises (an online trainer's rollout, whose reward
   * functions may be async): a coroutine yielding each promise. Runs inside the step (a stop requested while it
   * waits lands after the step).
   */
  // eslint-disable-next-line require-yield
  protected *beforeStep(_step: number): Steps<void> {}
  /** Subclass state for the checkpoint (JSON). */
  protected extraState(): Record<string, unknown> {
    return {};
  }
  /** Restores what extraState() saved. */
  protected loadExtraState(_state: Record<string, unknown>): void {}
  /** Files written into each checkpoint beside the weights (config.json, ...). */
  protected checkpointFiles(): Record<string, string | Uint8Array> {
    return {};
  }
  /** After an applied update (PPO updates its KL controller per rollout elsewhere). */
  protected afterUpdate(_step: number): void {}
  /** After the last step, before the final evaluation and checkpoint (the reward model normalises here). */
  protected onTrainEnd(): void {}
  /** Whether to checkpoint after `step` steps (the last step always is); PPO only at rollout boundaries. */
  protected shouldSave(step: number): boolean {
    return this.config.saveSteps > 0 && step % this.config.saveSteps === 0;
  }

  /**
   * Whether a requested stop may land after `step` completed steps: a checkpoint there must resume exactly.
   * Every step by default; PPO only between rollouts (a rollout batch is never half used).
   */
  protected canStopAfter(_step: number): boolean {
    return true;
  }

  /**
   * Asks the run to stop at the next safe point: the optimizer step in progress finishes (PPO: the rollout
   * in progress, all its minibatch updates), a checkpoint is written there like a periodic one, and train()
   * returns `interrupted: true`. Returns the step the run will stop after (the total when that is the end
   * of the run anyway, which then finishes normally). A second call keeps the first reason.
   */
  requestStop(reason?: string): number {
    if (!this.stopRequest) this.stopRequest = reason === undefined ? {} : { reason };
    return this.stopStep()!;
  }

  /** Data-parallel: a stop requested on one rank becomes every rank's (one tiny all-reduce per step). */
  private agreeOnStop(): void {
    const flag = new Float64Array([this.stopRequest ? 1 : 0]);
    this.world.allReduce(flag, 'sum');
    if (flag[0] > 0 && !this.stopRequest) this.stopRequest = { reason: 'another rank was asked to stop' };
  }

  /** Whether requestStop() was called. */
  get stopRequested(): boolean {
    return this.stopRequest !== null;
  }

  /** The step a requested stop lands after (the total at most); null when no stop was requested. */
  stopStep(): number | null {
    if (!this.stopRequest) return null;
    const total = this.totalSteps();
    let s = this.inStep ? this.step + 1 : this.step;
    while (s < total && !this.canStopAfter(s)) s++;
    return Math.min(s, total);
  }

  schedule(): LrSchedule {
    const total = this.totalSteps();
    return { type: this.config.lrSchedulerType, warmupSteps: resolveWarmupSteps(this.config, total), totalSteps: total };
  }

  /** Learning rate of 0-based step `step`. */
  lrAt(step: number): number {
    return this.config.learningRate * lrMultiplier(this.schedule(), step);
  }

  /**
   * One update from the accumulated gradients: NaN guard on the loss and gradient norm, clipping, AdamW at
   * the scheduled rate, gradients zeroed.
   */
  protected optimizerStep(step: number, loss: number): StepResult {
    const gradNorm = gradNormOf(this.params);
    const lr = this.lrAt(step);
    if (!this.guard.check(step + 1, { loss, gradNorm })) {
      this.zeroGrad();
      this.progress.log(`step ${step + 1}: non-finite loss or gradient; skipped, ${this.guard.keepsSnapshot ? `restored the state of step ${this.guard.snapshotStep}` : 'nothing restored (no snapshot kept)'}`);
      return { applied: false, gradNorm, lr };
    }
    scaleGradsToNorm(this.params, gradNorm, this.config.maxGradNorm);
    if (!this.guard.keepsSnapshot) {
      // No copy of the state to go back to (nanGuardSnapshotSteps 0, the default: 12 bytes a parameter saved):
      // the update is tried on copies first and applied only when every weight and moment stays finite, so a
      // bad update (a huge learning rate, a gradient whose square overflows) never reaches the state.
      const spoilt = this.optimizer.stepIfFinite(lr);
      this.zeroGrad();
      if (spoilt) {
        const what = `the update would make ${spoilt} non-finite (learning rate ${lr.toPrecision(3)})`;
        this.guard.reject(step + 1, what);
        this.progress.log(`step ${step + 1}: ${what}; not applied`);
        return { applied: false, gradNorm, lr };
      }
      this.guard.applied(step + 1);
      return { applied: true, gradNorm, lr };
    }
    this.optimizer.step(lr);
    this.zeroGrad();
    // A finite loss and gradient can still give an update that overflows float32 (a huge learning rate):
    // the weights are checked before they can become the snapshot of the last good state.
    const overflowed = this.nonFiniteState();
    if (overflowed) {
      const what = `the update made ${overflowed} non-finite (learning rate ${lr.toPrecision(3)})`;
      this.guard.reject(step + 1, what);
      this.progress.log(`step ${step + 1}: ${what}; undone, ${this.guard.keepsSnapshot ? `restored the state of step ${this.guard.snapshotStep}` : 'nothing restored (no snapshot kept)'}`);
      return { applied: false, gradNorm, lr };
    }
    this.guard.applied(step + 1);
    return { applied: true, gradNorm, lr };
  }

  /**
   * The first parameter (or optimizer moment) holding a NaN or an infinity, by name; null when every value
   * is finite. One native pass over the state: a sum of squares accumulated in float64 is finite exactly
   * when every float32 value is (a finite float32 squared stays far below the float64 range).
   */
  protected nonFiniteState(): string | null {
    for (const [name, p] of this.params) if (!Number.isFinite(kernelsFor(p.device).sumSquares(p.buf, p.size))) return name;
    const moments = this.optimizer.nonFiniteMoments();
    return moments && `the optimizer's ${moments} moments`;
  }

  /** The optimizer's zeroGrad (the same parameters): drops the gradients rather than filling them with zeros. */
  protected zeroGrad(): void {
    this.optimizer.zeroGrad();
  }

  /** Restores weights, moments, step and subclass state from a checkpoint. */
  protected restore(c: LoadedCheckpoint): void {
    for (const s of c.skipped ?? []) this.progress.log(`resume: skipped ${s.path}, which does not load: ${s.error}`);
    // everything is checked before the model or the optimizer is touched
    if (!c.optimizer) throw new Error(`resume: ${c.path} has no optimizer state (optimizer.safetensors)`);
    const st = c.state as { optimizerSteps?: unknown; extra?: Record<string, unknown>; label?: string };
    if (st.label !== undefined && st.label !== this.label()) {
      throw new Error(`resume: ${c.path} is a '${st.label}' checkpoint, not '${this.label()}'`);
    }
    const t = st.optimizerSteps ?? c.step;
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) {
      throw new Error(`resume: ${c.path}: trainer-state.json: state.optimizerSteps ${JSON.stringify(t)} is not a non-negative integer`);
    }
    // a checkpoint of a run that had diverged: say so, not "another model"
    const k = kernels();
    for (const [file, sd] of [[c.modelFile, c.model], ['optimizer.safetensors', c.optimizer]] as const) {
      for (const [name, t] of sd) {
        if (t.data instanceof Float32Array && !Number.isFinite(k.sumSquares(t.data, t.data.length))) {
          throw new Error(`resume: ${join(c.path, file)}: ${name} holds non-finite values (the run had diverged when it was saved); resume from an earlier checkpoint`);
        }
      }
    }
    const what = (file: string, e: unknown) =>
      new Error(`resume: ${join(c.path, file)} does not fit this run's model (a checkpoint of another model?): ${(e as Error).message}`, { cause: e });
    const adapters = this.trunk?.lora ? this.trunk : null;
    if (adapters && c.modelFile !== 'adapter_model.safetensors') {
      throw new Error(`resume: ${c.path} holds a whole model (${c.modelFile}) but this run trains LoRA adapters (lora is set): resume with the settings of the run that wrote it`);
    }
    if (!adapters && c.modelFile === 'adapter_model.safetensors') {
      throw new Error(`resume: ${c.path} holds LoRA adapters only but this run trains the whole model: set lora as the run that wrote it did`);
    }
    if (adapters) this.checkAdapterSettings(c.path, adapters);
    try {
      this.optimizer.checkStateDict(c.optimizer);
    } catch (e) {
      throw what('optimizer.safetensors', e);
    }
    // Nothing left to train (checked once the checkpoint is known to fit this run, before any weight moves):
    // refused, as going on would only write final/ again from the same weights, perhaps under another config.
    const total = this.totalSteps();
    if (c.step >= total) {
      const m = this.config.maxSteps;
      const bound = m > 0 && m <= total;
      const limit = bound ? `maxSteps ${m}` : `all the data gives over its epochs${m > 0 ? `, under maxSteps ${m}` : ''}`;
      const how = bound ? `raise maxSteps (--max-steps) above ${c.step}` : 'give more epochs or data';
      throw new Error(
        `resume: ${c.path} is at step ${c.step} and this run has ${total} steps (${limit}): nothing left to train. ` +
          `To train on, ${how}; the checkpoint itself loads as a model`,
      );
    }
    try {
      if (adapters) loadPeftStateDict(adapters, this.params, c.model, join(c.path, c.modelFile));
      else this.model.loadStateDict(c.model);
    } catch (e) {
      throw what(c.modelFile, e);
    }
    this.optimizer.loadStateDict(c.optimizer, t);
    const savedTotal = (c.state as { totalSteps?: number }).totalSteps;
    if (savedTotal !== undefined && savedTotal !== this.totalSteps()) {
      // allowed (to extend a run), but the schedule and data plan differ from the saved run's
      this.progress.log(`resume: the checkpoint's run had ${savedTotal} steps, this one has ${this.totalSteps()}: not an exact continuation`);
    }
    this.reportChangedSettings(c);
    this.step = c.step;
    this.loadExtraState(st.extra ?? {});
  }

  /**
   * A resumed run may change its settings (a lower learning rate, ...), but then it is not the continuation of the
   * run that wrote the checkpoint: say which fields differ from the checkpoint's config (trainer-state.json), by
   * name and value, as for a changed step count. Fields that change nothing trained are not compared: where
   * output and logs go, how often, evaluation, the NaN guard's bookkeeping, the device (its rounding only),
   * gradient checkpointing (the same gradients); the step count (maxSteps / numTrainEpochs) is reported above.
   */
  private reportChangedSettings(c: LoadedCheckpoint): void {
    const saved = (c.state as { config?: unknown }).config;
    if (saved === null || typeof saved !== 'object' || Array.isArray(saved)) return; // a checkpoint without it (older format)
    const before = saved as Record<string, unknown>;
    const now = this.config as unknown as Record<string, unknown>;
    const differ: string[] = [];
    for (const field of new Set([...Object.keys(now), ...Object.keys(before)])) {
      if (SETTINGS_NOT_TRAINED.has(field)) continue;
      const [a, b] = [JSON.stringify(now[field]), JSON.stringify(before[field])];
      if (a !== b) differ.push(`${field} ${a ?? 'unset'} (checkpoint: ${b ?? 'unset'})`);
    }
    if (differ.length) {
      this.progress.log(`resume: this run's settings differ from those of the run that wrote ${c.path}: ${differ.join(', ')}: not an exact continuation`);
    }
  }

  /** A LoRA checkpoint's adapter_config.json must describe this run's adapters (r, alpha, scaling, patterns). */
  private checkAdapterSettings(path: string, trunk: CausalLM): void {
    const file = readAdapterConfig(path);
    const saved = file.spec;
    const mine = trunk.lora!.spec;
    const differ: string[] = [];
    if (saved.r !== mine.r) differ.push(`r ${saved.r} (this run: ${mine.r})`);
    if (saved.alpha !== mine.alpha) differ.push(`lora_alpha ${saved.alpha} (this run: ${mine.alpha})`);
    if ((saved.useRslora ?? false) !== mine.useRslora) differ.push(`use_rslora ${saved.useRslora} (this run: ${mine.useRslora})`);
    if ((saved.dropout ?? 0) !== mine.dropout) differ.push(`lora_dropout ${saved.dropout} (this run: ${mine.dropout})`);
    if (JSON.stringify(saved.rankPattern ?? {}) !== JSON.stringify(mine.rankPattern)) differ.push('rank_pattern');
    if (JSON.stringify(saved.alphaPattern ?? {}) !== JSON.stringify(mine.alphaPattern)) differ.push('alpha_pattern');
    // modules_to_save: the model's own (the heads' are this run's trainer's to check by loading them)
    const own = new Set(mine.modulesToSave ?? []);
    const heads = new Set(this.params.filter(([, t]) => !trunk.namedParameters().some(([, u]) => u === t)).map(([n]) => moduleOfParam(n)));
    const savedOwn = (file.modulesToSave ?? []).filter((m) => !heads.has(m));
    if (savedOwn.length !== own.size || savedOwn.some((m) => !own.has(m))) differ.push(`modules_to_save ${JSON.stringify(savedOwn)} (this run: ${JSON.stringify([...own])})`);
    if (differ.length) throw new Error(`resume: ${join(path, 'adapter_config.json')} has ${differ.join(', ')}: the run that wrote it trained other adapters`);
  }

  /** What a checkpoint holds of the model: the whole model, or (training LoRA) the adapters and heads as a PEFT folder. */
  private checkpointModel(): { model: StateDict; modelFile: 'model.safetensors' | 'adapter_model.safetensors'; files: Record<string, string | Uint8Array> } {
    const files = this.checkpointFiles();
    const trunk = this.trunk?.lora ? this.trunk : null;
    if (!trunk) return { model: this.model.stateDict(), modelFile: 'model.safetensors', files };
    // a PEFT adapter folder over the starting model: no config.json of a whole model in it
    const { 'config.json': _whole, ...rest } = files;
    // the heads (score, v_head) as modules to save; the trunk's own modules trained whole come from the adapters' spec
    const trunkParams = new Set(trunk.namedParameters().map(([, t]) => t));
    const modules = [...new Set(this.params.filter(([, t]) => !trunkParams.has(t)).map(([n]) => moduleOfParam(n)))];
    const config = adapterConfigJson(trunk, {
      baseModelNameOrPath: this.config.modelPath,
      taskType: modules.includes('score') ? 'SEQ_CLS' : 'CAUSAL_LM',
      modulesToSave: modules.length ? modules : null,
    });
    return { model: peftStateDict(trunk, this.params), modelFile: 'adapter_model.safetensors', files: { ...rest, 'adapter_config.json': `${JSON.stringify(config, null, 2)}\n` } };
  }

  saveCheckpoint(): string {
    // a checkpoint must never hold a diverged state (resuming from it could not work)
    const bad = this.nonFiniteState();
    if (bad) {
      throw new NonFiniteError(`step ${this.step}: ${bad} holds non-finite values; no checkpoint written (lower the learning rate, or resume from an earlier checkpoint)`);
    }
    // one checkpoint writer: the other ranks hold the same state (after the same updates)
    if (!this.isMainRank) return join(this.outputDir, checkpointDirName(this.step));
    const { model, modelFile, files: modelFiles } = this.checkpointModel();
    const files = { ...modelFiles, ...(this.checkpointTokenizer ? tokenizerFiles(this.checkpointTokenizer) : {}) };
    const path = saveCheckpoint(
      this.outputDir,
      {
        step: this.step,
        model,
        modelFile,
        optimizer: this.optimizer.stateDict(),
        state: {
          label: this.label(),
          optimizerSteps: this.optimizer.t,
          totalSteps: this.totalSteps(),
          nanSkipped: this.guard.skipped,
          lastEval: this.lastEval,
          config: this.config,
          dataParallel: { worldSize: this.world.size, globalBatch: this.globalBatch },
          extra: this.extraState(),
        },
        files,
      },
      { keep: this.config.saveTotalLimit },
    );
    this.progress.log(`checkpoint ${path}`);
    return path;
  }

  protected log(record: MetricsRecord): void {
    this.metrics?.write(record);
  }

  /**
   * The loop: resume if asked, then for each remaining step run it, update, log every loggingSteps,
   * evaluate every evalSteps and at the end, checkpoint every saveSteps and at the end. Stops early, with a
   * checkpoint, when requestStop() was called (see there).
   */
  train(): TrainResult {
    const run = this.run();
    let r = run.next();
    while (!r.done) {
      if (r.value) {
        // something must be awaited (an async reward function): end the run through its finally blocks
        r.value.promise.catch(() => {});
        run.throw(new AsyncRewardError(`${this.label()}: ${asyncMessage(r.value.what)}`));
      }
      r = run.next();
    }
    return r.value;
  }

  /**
   * train(), giving the event loop a turn (setImmediate) after every step, so that signal handlers, timers
   * and I/O callbacks run during training and can call requestStop(), and awaiting what a step waits for
   * (async reward functions). The same steps and results as train().
   */
  async trainAsync(): Promise<TrainResult> {
    const run = this.run();
    let r = run.next();
    while (!r.done) {
      if (r.value) {
        let value: unknown;
        try {
          value = await r.value.promise;
        } catch (e) {
          r = run.throw(e);
          continue;
        }
        r = run.next(value);
      } else {
        await new Promise<void>((resolve) => setImmediate(resolve));
        r = run.next();
      }
    }
    return r.value;
  }

  /**
   * The training loop; yields null after every step (trainAsync gives the event loop a turn there) and a Wait
   * where a step or an evaluation waits on a promise (its value is sent back in).
   */
  private *run(): Generator<Wait | null, TrainResult, unknown> {
    const c = this.config;
    const dp = this.world.size > 1;
    const out = this.outputDir;
    // the output folder is rank 0's: the other ranks never write there
    if (this.isMainRank) {
      // again at the start: another run may have written there since this trainer was built
      checkOutputDir(c, this.resumeFrom !== undefined, `${this.label()} config`);
      if (!this.resumeFrom && c.overwriteOutputDir && existsSync(out)) {
        for (const name of readdirSync(out)) {
          if (RUN_ARTIFACT.test(name)) rmSync(join(out, name), { recursive: true, force: true });
        }
      }
      ensureWritableDir(out, `${this.label()} outputDir ${out}`);
    }
    if (this.resumeFrom) this.restore(this.resumeFrom);
    if (dp) {
      // the same weights, moments and step on every rank (each read the checkpoint; rank 0's copy wins)
      broadcastTrainingState(this.world, this.model, this.optimizer, this.step, { moments: !!this.resumeFrom });
      // on a device: the gradients summed there (NCCL on cuda) where it can, else through the host bucket by bucket
      const reduce = deviceAllReduceFor(this.optimizer.device, this.world, checkDeviceAllReduceMode(this.syncOptions.deviceAllReduce));
      this.gradSync = new GradientSync(this.world, this.params, this.syncOptions, reduce && { reduce, flat: this.optimizer.flatGradients() });
    }
    this.metrics = this.isMainRank ? new MetricsWriter(join(out, 'metrics.jsonl'), this.resumeFrom ? { resumeFromStep: this.step } : {}) : null;
    // on a device the snapshot is kept there (copy kernels; nothing comes to the host)
    this.guard.register(this.guard.keepsSnapshot ? [...this.params.map(([, p]) => p.buf), ...this.optimizer.momentBuffers()] : [], this.step, this.optimizer.device);
    const total = this.totalSteps();
    const startStep = this.step;
    let saved: { step: number; path: string } | null = null;
    let interrupted = false;
    this.progress.start(this.label(), total, this.step);
    try {
      while (this.step < total) {
        // a stop requested on any rank stops every rank after the same step
        if (dp) this.agreeOnStop();
        if (this.stopRequest && this.canStopAfter(this.step)) {
          interrupted = true;
          break;
        }
        const s = this.step;
        this.inStep = true;
        let m: Record<string, number>;
        let r: StepResult;
        const stepStart = performance.now(), rolloutBefore = this.timing.rolloutS;
        resetDeviceMemoryPeak(this.optimizer.device);
        try {
          this.metricWeight = 1;
          this.trunk?.lora?.seedDropout(c.seed, s);
          yield* this.beforeStep(s);
          this.gradSync?.begin();
          try {
            // mixedPrecision 'bf16': the step's forwards and backwards under bf16 autocast, each weight rounded
            // once per step (the cache is emptied after the update below)
            m = autocast(c.mixedPrecision, () => this.trainStep(s), this.weightCopies);
            this.gradSync?.finish();
          } catch (e) {
            this.gradSync?.abandon();
            throw e;
          }
          // the NaN guard and the log see the mean over the ranks: every rank takes the same decision
          if (dp) m = averageMetrics(this.world, m, this.metricWeight);
          r = this.optimizerStep(s, m.loss ?? 0);
        } finally {
          this.weightCopies.invalidate(); // the update wrote the weights (and a device frees the copies now)
          this.inStep = false;
          this.timing.updateS += (performance.now() - stepStart) / 1e3 - (this.timing.rolloutS - rolloutBefore);
        }
        this.step = s + 1;
        if (r.applied) this.afterUpdate(s);
        const record: Record<string, number> = { ...m, lr: r.lr, gradNorm: r.gradNorm, ...(r.applied ? {} : { skipped: 1 }) };
        // on a device: the most its allocator held during this step (MiB)
        if (this.optimizer.device !== 'cpu') record.deviceMemoryPeakMiB = deviceMemoryStats(this.optimizer.device).peak / 2 ** 20;
        if (this.step % c.loggingSteps === 0 || this.step === total) this.log({ step: this.step, ...record });
        this.progress.update(this.step, record);
        const last = this.step === total;
        if (last) this.onTrainEnd();
        if ((c.evalSteps > 0 && this.step % c.evalSteps === 0) || last) {
          const e = yield* this.evaluateSteps();
          if (Object.keys(e).length) {
            this.lastEval = e;
            const prefixed = Object.fromEntries(Object.entries(e).map(([k, v]) => [`eval/${k}`, v]));
            this.log({ step: this.step, ...prefixed });
            this.progress.log(`eval ${Object.entries(e).map(([k, v]) => `${k}=${v.toPrecision(4)}`).join(' ')}`);
          }
        }
        if (this.shouldSave(this.step) || last) {
          this.metrics?.sync();
          saved = { step: this.step, path: this.saveCheckpoint() };
        }
        if (!last) yield null;
      }
      if (interrupted) {
        const why = this.stopRequest?.reason ? ` (${this.stopRequest.reason})` : '';
        if (this.step === startStep) {
          // nothing ran in this call: the state is the one the run started from
          this.progress.log(`stopped before step ${this.step + 1} of ${total}${why}; nothing to save, the run can start again as it did`);
        } else {
          if (saved?.step !== this.step) {
            this.metrics?.sync();
            saved = { step: this.step, path: this.saveCheckpoint() };
          }
          this.progress.log(`stopped after step ${this.step} of ${total}${why}; resume from ${saved.path}`);
        }
      }
      // every rank returns once rank 0's last checkpoint is complete
      if (dp) this.world.barrier();
    } finally {
      this.progress.stop();
      this.metrics?.close();
      this.metrics = null;
    }
    return {
      steps: this.step,
      lastEval: this.lastEval,
      interrupted,
      checkpoint: saved?.path ?? null,
      ...(interrupted && this.stopRequest?.reason !== undefined ? { stopReason: this.stopRequest.reason } : {}),
    };
  }
}
