/**
 * Gradient-accumulation bookkeeping: which micro-batches form each optimizer step, and the weight each
 * micro-batch's loss gets so that the accumulated gradient is the gradient of the mean over the whole step.
 *
 * Weighting by count (tokens for SFT, pairs for the reward model) and not by 1/gradientAccumulationSteps
 * matters when micro-batches differ in size: the last, short micro-batch of an epoch, or SFT micro-batches
 * with different numbers of completion tokens. Each micro-batch loss is then a *sum* scaled by
 * 1 / (count of the whole step).
 */
export interface AccumulationStep {
  /** indices of the micro-batches of this optimizer step, in order */
  microBatches: number[];
  /** (microBatches.length) weights: count_i / Σ counts (they sum to 1) */
  weights: number[];
  /** Σ counts over the step */
  total: number;
}

/**
 * Groups micro-batches 0..counts.length−1 into optimizer steps of `gradientAccumulationSteps`; the last
 * step of the list takes the remainder (as transformers does at the end of an epoch). Micro-batches with
 * count 0 are allowed but a step whose counts sum to 0 gets equal weights (so nothing divides by 0).
 */
export function planAccumulation(counts: number[], gradientAccumulationSteps: number): AccumulationStep[] {
  if (!Number.isInteger(gradientAccumulationSteps) || gradientAccumulationSteps < 1) {
    throw new RangeError(`planAccumulation: gradientAccumulationSteps must be an integer ≥ 1, got ${gradientAccumulationSteps}`);
  }
  const steps: AccumulationStep[] = [];
  for (let start = 0; start < counts.length; start += gradientAccumulationSteps) {
    const microBatches: number[] = [];
    for (let i = start; i < Math.min(counts.length, start + gradientAccumulationSteps); i++) microBatches.push(i);
    const total = microBatches.reduce((s, i) => s + counts[i], 0);
    const weights = microBatches.map((i) => (total > 0 ? counts[i] / total : 1 / microBatches.length));
    steps.push({ microBatches, weights, total });
  }
  return steps;
}

/** Optimizer steps per epoch and in all, as transformers counts them. */
export function countSteps(
  numExamples: number,
  batchSize: number,
  gradientAccumulationSteps: number,
  numEpochs: number,
): { microBatchesPerEpoch: number; stepsPerEpoch: number; totalSteps: number } {
  const microBatchesPerEpoch = Math.ceil(numExamples / batchSize);
  const stepsPerEpoch = Math.ceil(microBatchesPerEpoch / gradientAccumulationSteps);
  return { microBatchesPerEpoch, stepsPerEpoch, totalSteps: stepsPerEpoch * numEpochs };
}

/** Splits 0..n−1 (already shuffled or not) into consecutive batches of `batchSize`; the last may be short. */
export function batchIndices(order: number[], batchSize: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) out.push(order.slice(i, i + batchSize));
  return out;
}

/** The micro-batches and optimizer steps of a whole run. */
export interface RunPlan {
  /** example indices of every micro-batch of the run, epochs one after another */
  microBatches: number[][];
  /** the optimizer steps, each naming its micro-batches (indices into microBatches) and their weights */
  steps: AccumulationStep[];
  /** epoch of each step */
  epochOfStep: number[];
}

/**
 * Plans a run over n examples: each epoch draws a permutation from one generator seeded with `seed` (so a
 * resumed run can replay the plan exactly), cuts it into micro-batches of batchSize, and groups those into
 * optimizer steps of gradientAccumulationSteps weighted by `count` (tokens, pairs, examples). maxSteps > 0
 * truncates the plan, or extends it by more epochs when the data runs out first.
 */
export function planRun(
  n: number,
  opts: { seed: number; batchSize: number; gradientAccumulationSteps: number; numEpochs: number; maxSteps: number },
  count: (indices: number[]) => number = (idx) => idx.length,
  permute: (seed: number) => (n: number) => number[],
): RunPlan {
  if (n <= 0) throw new RangeError('planRun: no example to plan');
  const perm = permute(opts.seed);
  const plan: RunPlan = { microBatches: [], steps: [], epochOfStep: [] };
  const wanted = opts.maxSteps > 0 ? opts.maxSteps : Infinity;
  for (let epoch = 0; epoch < opts.numEpochs || (plan.steps.length < wanted && Number.isFinite(wanted)); epoch++) {
    const mbs = batchIndices(perm(n), opts.batchSize);
    const offset = plan.microBatches.length;
    plan.microBatches.push(...mbs);
    for (const st of planAccumulation(mbs.map(count), opts.gradientAccumulationSteps)) {
      plan.steps.push({ ...st, microBatches: st.microBatches.map((i) => i + offset) });
      plan.epochOfStep.push(epoch);
    }
    if (plan.steps.length >= wanted) break;
  }
  if (Number.isFinite(wanted)) {
    plan.steps.length = Math.min(plan.steps.length, wanted);
    plan.epochOfStep.length = plan.steps.length;
  }
  return plan;
}
