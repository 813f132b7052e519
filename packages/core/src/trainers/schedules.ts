/**
 * Learning-rate schedules as multipliers of the base rate, the formulas of Hugging Face transformers'
 * `get_scheduler` (linear, cosine, constant, constant_with_warmup). `step` is the 0-based index of the
 * optimizer step about to be taken, so with warmup the first step runs at lr·0 exactly as in transformers
 * (LambdaLR evaluates the lambda at 0 for the first step).
 */
export type LrSchedulerType = 'linear' | 'cosine' | 'constant' | 'constant_with_warmup';
export const LR_SCHEDULER_TYPES: readonly LrSchedulerType[] = ['linear', 'cosine', 'constant', 'constant_with_warmup'];

export interface LrSchedule {
  type: LrSchedulerType;
  /** optimizer steps of linear warmup from 0 */
  warmupSteps: number;
  /** total optimizer steps of the run */
  totalSteps: number;
  /** cosine only: transformers' num_cycles (0.5, the default, decays once from 1 to 0) */
  numCycles?: number;
}

/** Warmup steps from a ratio of the total, as transformers: ceil(totalSteps · warmupRatio). */
export function warmupStepsFromRatio(totalSteps: number, warmupRatio: number): number {
  return Math.ceil(totalSteps * warmupRatio);
}

/** The multiplier of the base learning rate at 0-based optimizer step `step`. */
export function lrMultiplier(schedule: LrSchedule, step: number): number {
  const { type, warmupSteps, totalSteps, numCycles = 0.5 } = schedule;
  if (type === 'constant') return 1;
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  switch (type) {
    case 'constant_with_warmup':
      return 1;
    case 'linear':
      return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
    case 'cosine': {
      const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
    }
    default:
      throw new RangeError(`lrMultiplier: unknown schedule '${String(type)}' (one of ${LR_SCHEDULER_TYPES.join(', ')})`);
  }
}

/** Base learning rate times the multiplier. */
export function learningRateAt(baseLr: number, schedule: LrSchedule, step: number): number {
  return baseLr * lrMultiplier(schedule, step);
}
