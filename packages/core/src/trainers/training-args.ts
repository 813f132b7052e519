import { DEVICES, type Device } from '../backend/device';
import { MIXED_PRECISION_MODES, type MixedPrecision } from '../tensor/autocast';
import type { ConfigProblem, ConfigSpec } from './config';
import { LORA_FIELD_SPEC, type LoraConfig } from './lora-config';
import { LR_SCHEDULER_TYPES, type LrSchedulerType } from './schedules';

/**
 * The fields every trainer shares (transformers' TrainingArguments, camelCase), grouped as in its docs.
 * Each algorithm's config extends this with its own group and overrides a few defaults.
 */
export interface TrainingArgs {
  // -- model and data
  /** directory of the starting model (config.json + model.safetensors + tokenizer), or null when given in code */
  modelPath: string | null;
  /** training data file (JSONL), or null when given in code */
  datasetPath: string | null;
  /** held-out data file, or null for none */
  evalDatasetPath: string | null;
  // -- run
  /**
   * where metrics.jsonl and the checkpoints go; no default (null), and a trainer refuses to start without one,
   * so that nothing lands in the current folder unasked (the CLI's --out defaults to runs/<stage>)
   */
  outputDir: string | null;
  /** a non-empty outputDir is refused unless resuming; true deletes the earlier run's metrics, checkpoints and final/ first */
  overwriteOutputDir: boolean;
  seed: number;
  /**
   * where the trained model, its gradients and the optimizer live and compute: 'cpu'; 'cuda' (rlhf_cuda.node
   * and an NVIDIA GPU); 'emulated' (host memory behind device handles, the CPU's kernels: for checking device code
   * without a GPU). The trainer moves the model there; a model already on another device is refused.
   */
  device: Device;
  // -- optimisation
  learningRate: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  maxGradNorm: number;
  /**
   * recompute each transformer block in the backward instead of keeping its activations (TRL's
   * gradient_checkpointing): the activations of all blocks but one are not kept, for one more forward of them
   */
  gradientCheckpointing: boolean;
  /**
   * 'bf16': each training step runs under bf16 autocast (tensor/autocast.ts; transformers' bf16=True): the
   * projections multiply bf16 activations by bf16 copies of the float32 master weights with float32 sums
   * (tensor cores on cuda), their gradients float32; attention of head width 64 or 128 on bf16 q, k, v with
   * float32 statistics; norms, the LM head's cross-entropy / log-probs, the loss and the optimizer stay float32.
   * 'no': float32 throughout.
   */
  mixedPrecision: MixedPrecision;
  lrSchedulerType: LrSchedulerType;
  warmupRatio: number;
  warmupSteps: number;
  // -- batching
  perDeviceTrainBatchSize: number;
  perDeviceEvalBatchSize: number;
  gradientAccumulationSteps: number;
  numTrainEpochs: number;
  maxSteps: number;
  // -- logging, evaluation, checkpoints
  loggingSteps: number;
  evalSteps: number;
  saveSteps: number;
  saveTotalLimit: number;
  nanGuardMaxConsecutive: number;
  nanGuardSnapshotSteps: number;
  // -- parameter-efficient fine-tuning
  /** LoRA adapters instead of full fine-tuning, or null */
  lora: LoraConfig | null;
}

export const TRAINING_ARGS_SPEC: ConfigSpec<TrainingArgs> = {
  modelPath: { group: 'model and data', type: 'string', nullable: true, default: null, doc: 'directory of the starting model (config.json, model.safetensors, tokenizer)' },
  datasetPath: { group: 'model and data', type: 'string', nullable: true, default: null, doc: 'training data (JSONL)' },
  evalDatasetPath: { group: 'model and data', type: 'string', nullable: true, default: null, doc: 'held-out data (JSONL); null: no evaluation' },
  outputDir: { group: 'run', type: 'string', nullable: true, default: null, doc: 'the folder for metrics.jsonl and the checkpoints, required to train (no default: nothing is written to the current folder unasked); new or empty unless resuming or overwriteOutputDir' },
  overwriteOutputDir: { group: 'run', type: 'boolean', default: false, doc: "train into a non-empty outputDir: the earlier run's metrics.jsonl, checkpoint-* and final/ are deleted first (other files are kept)" },
  seed: { group: 'run', type: 'integer', min: 0, max: 0xffffffff, default: 42, doc: 'seed of every random choice (data order, sampling): same seed, same weights; at most 2^32 - 1 (the generator keeps 32 bits: larger seeds would repeat smaller ones)' },
  device: { group: 'run', type: 'enum', values: DEVICES, default: 'cpu', doc: "where the model, its gradients and the optimizer live and compute: cpu; cuda (needs rlhf_cuda.node and an NVIDIA GPU); emulated (a test device: host memory behind device handles, the CPU's kernels). The trainer moves the model there" },
  learningRate: { group: 'optimisation', type: 'number', gt: 0, default: 5e-5, doc: 'peak AdamW learning rate' },
  weightDecay: { group: 'optimisation', type: 'number', min: 0, default: 0, doc: 'decoupled AdamW weight decay' },
  adamBeta1: { group: 'optimisation', type: 'number', min: 0, lt: 1, default: 0.9, doc: 'AdamW β1' },
  adamBeta2: { group: 'optimisation', type: 'number', min: 0, lt: 1, default: 0.999, doc: 'AdamW β2' },
  adamEpsilon: { group: 'optimisation', type: 'number', gt: 0, default: 1e-8, doc: 'AdamW ε' },
  maxGradNorm: { group: 'optimisation', type: 'number', min: 0, default: 1, doc: 'clip the global gradient norm to this; 0 turns clipping off' },
  gradientCheckpointing: { group: 'optimisation', type: 'boolean', default: false, doc: "recompute each block in the backward instead of keeping its activations: the activations' memory of all blocks but one, for about a third more compute" },
  mixedPrecision: { group: 'optimisation', type: 'enum', values: MIXED_PRECISION_MODES, default: 'no', doc: "'bf16': the projections of each training step in bf16 with float32 sums and float32 master weights and gradients, attention (head width 64 or 128) on bf16 q, k, v with float32 statistics (norms and the loss in float32; the bf16 weight copies made once per step); evaluation stays float32. 'no': float32 throughout" },
  lrSchedulerType: { group: 'optimisation', type: 'enum', values: LR_SCHEDULER_TYPES, default: 'linear', doc: 'decay after warmup' },
  warmupRatio: { group: 'optimisation', type: 'number', min: 0, lt: 1, default: 0, doc: 'fraction of the optimizer steps spent warming up from 0 (not with warmupSteps > 0, nor with the constant schedule)' },
  warmupSteps: { group: 'optimisation', type: 'integer', min: 0, default: 0, doc: "optimizer steps of linear warmup (instead of warmupRatio; not with the constant schedule: use 'constant_with_warmup')" },
  perDeviceTrainBatchSize: { group: 'batching', type: 'integer', min: 1, default: 8, doc: 'examples per micro-batch (one forward/backward)' },
  perDeviceEvalBatchSize: { group: 'batching', type: 'integer', min: 1, default: 8, doc: 'examples per evaluation forward' },
  gradientAccumulationSteps: { group: 'batching', type: 'integer', min: 1, default: 1, doc: 'micro-batches whose gradients are summed before one optimizer step' },
  numTrainEpochs: { group: 'batching', type: 'integer', min: 1, default: 3, doc: 'passes over the training data' },
  maxSteps: { group: 'batching', type: 'integer', min: -1, default: -1, doc: 'stop after this many optimizer steps, running more epochs when the data runs out first (PPO: not past an explicit totalEpisodes); -1: run numTrainEpochs' },
  loggingSteps: { group: 'logging and checkpoints', type: 'integer', min: 1, default: 1, doc: 'write a metrics.jsonl line every this many optimizer steps' },
  evalSteps: { group: 'logging and checkpoints', type: 'integer', min: 0, default: 0, doc: 'evaluate every this many steps; 0: only at the end' },
  saveSteps: { group: 'logging and checkpoints', type: 'integer', min: 0, default: 0, doc: 'write a checkpoint every this many steps; 0: only at the end' },
  saveTotalLimit: { group: 'logging and checkpoints', type: 'integer', min: 1, default: 2, doc: 'checkpoints kept; older ones are deleted after a newer one is complete' },
  nanGuardMaxConsecutive: { group: 'logging and checkpoints', type: 'integer', min: 1, default: 5, doc: 'stop after this many non-finite steps in a row (each is skipped and the last good state restored)' },
  nanGuardSnapshotSteps: { group: 'logging and checkpoints', type: 'integer', min: 0, default: 0, doc: 'copy weights and moments in memory as the last good state every this many steps (3x the weights in memory), restored after a bad step; 0: keep no copy, and try each update on copies first, applying it only when every weight and moment stays finite (a bad step is skipped all the same)' },
  lora: LORA_FIELD_SPEC,
};

/**
 * What a trainer takes as its config in code: any fields (the rest default), `lora` with any of its fields (the rest
 * default: `lora: { r: 16 }`).
 */
export type ConfigInput<C extends TrainingArgs> = Partial<Omit<C, 'lora'>> & { lora?: Partial<LoraConfig> | null };

/** Cross-field rules shared by all trainers. */
export function trainingArgsRules<T extends TrainingArgs>(c: T, ok: (f: keyof T & string) => boolean): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (ok('maxSteps') && c.maxSteps === 0) out.push({ field: 'maxSteps', message: 'must be -1 (use numTrainEpochs) or ≥ 1, got 0' });
  if (ok('adamBeta1') && ok('adamBeta2') && c.adamBeta1 > c.adamBeta2) {
    out.push({ field: 'adamBeta1', message: `is above adamBeta2 (${c.adamBeta1} > ${c.adamBeta2}); swapped by mistake?` });
  }
  // warmup settings a run would accept and ignore: a ratio beside a step count (the count wins, as transformers),
  // and either with the 'constant' schedule (no warmup, as transformers' get_constant_schedule)
  if (ok('warmupSteps') && ok('warmupRatio') && c.warmupSteps > 0 && c.warmupRatio > 0) {
    out.push({ field: 'warmupRatio', message: `is ignored when warmupSteps is set (${c.warmupSteps}), got ${c.warmupRatio}: give one of them` });
  }
  if (ok('lrSchedulerType') && c.lrSchedulerType === 'constant') {
    for (const f of ['warmupSteps', 'warmupRatio'] as const) {
      if (ok(f) && c[f] > 0) out.push({ field: f, message: `is ignored by lrSchedulerType 'constant' (no warmup), got ${c[f]}: use 'constant_with_warmup'` });
    }
  }
  return out;
}

/** Warmup steps in force for a run of `totalSteps` optimizer steps (transformers' rule). */
export function resolveWarmupSteps(c: Pick<TrainingArgs, 'warmupSteps' | 'warmupRatio'>, totalSteps: number): number {
  return c.warmupSteps > 0 ? c.warmupSteps : Math.ceil(totalSteps * c.warmupRatio);
}
