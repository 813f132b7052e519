/**
 * Masked statistics over per-token arrays, the helpers PPO uses for advantages and rewards
 * (TRL `masked_mean` / `masked_var` / `masked_whiten`, same formulas).
 *
 * `values` and `mask` have the same length (usually B·T, flattened row-major); a mask entry is a weight,
 * in practice 0 (padding, prompt) or 1 (a response token). Sums run in float64 so a long batch does not
 * lose precision before the float32 result.
 */

export type NumericArray = ArrayLike<number>;

/**
 * Sums a statistic's partial sums over the ranks of a data-parallel run, in place (an all-reduce); the statistics
 * below then cover the global batch, each rank holding some of its rows. Omitted: this process's rows only.
 */
export type SumReducer = (partialSums: Float64Array) => void;

function checkSameLength(values: NumericArray, mask: NumericArray, fn: string): void {
  if (values.length !== mask.length) {
    throw new RangeError(`${fn}: values has length ${values.length} but mask has length ${mask.length}`);
  }
}

function maskSum(mask: NumericArray): number {
  let s = 0;
  for (let i = 0; i < mask.length; i++) s += mask[i];
  return s;
}

/** Σ v·m / Σ m. Throws when the mask sums to 0: an empty batch is a caller bug, not a number. */
export function maskedMean(values: NumericArray, mask: NumericArray, reduce?: SumReducer): number {
  checkSameLength(values, mask, 'maskedMean');
  let num = 0;
  let den = 0;
  for (let i = 0; i < values.length; i++) {
    const m = mask[i];
    if (m !== 0) {
      num += values[i] * m;
      den += m;
    }
  }
  if (reduce) [num, den] = sumOver(reduce, num, den);
  if (den === 0) throw new RangeError('maskedMean: mask selects no element');
  return num / den;
}

/**
 * Masked variance. With `unbiased` (the default, as TRL) the biased estimate is multiplied by the Bessel
 * factor Σm / (Σm − 1), which needs Σm > 1.
 */
export function maskedVar(values: NumericArray, mask: NumericArray, unbiased = true, reduce?: SumReducer): number {
  checkSameLength(values, mask, 'maskedVar');
  const mean = maskedMean(values, mask, reduce);
  let num = 0;
  let den = 0;
  for (let i = 0; i < values.length; i++) {
    const m = mask[i];
    if (m !== 0) {
      const d = values[i] - mean;
      num += d * d * m;
      den += m;
    }
  }
  if (reduce) [num, den] = sumOver(reduce, num, den);
  let variance = num / den;
  if (unbiased) {
    if (den <= 1) throw new RangeError(`maskedVar: the unbiased variance needs a mask sum above 1, got ${den}`);
    variance *= den / (den - 1);
  }
  return variance;
}

/**
 * (v − mean) / sqrt(var + 1e-8) over the masked elements; with `shiftMean = false` the mean is added back
 * (TRL does this for rewards: scale them, keep their level). Masked-out positions are written as 0 so no
 * stale value leaks into a later sum. Returns a new Float32Array of values.length.
 */
export function maskedWhiten(
  values: NumericArray,
  mask: NumericArray,
  options: { shiftMean?: boolean; unbiased?: boolean; eps?: number; reduce?: SumReducer } = {},
): Float32Array {
  const { shiftMean = true, unbiased = true, eps = 1e-8, reduce } = options;
  const mean = maskedMean(values, mask, reduce);
  const variance = maskedVar(values, mask, unbiased, reduce);
  const rstd = 1 / Math.sqrt(variance + eps);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    if (mask[i] === 0) continue;
    const w = (values[i] - mean) * rstd;
    out[i] = shiftMean ? w : w + mean;
  }
  return out;
}

/** The partial sums `xs`, reduced over the ranks. */
export function sumOver(reduce: SumReducer, ...xs: number[]): number[] {
  const buf = Float64Array.from(xs);
  reduce(buf);
  return Array.from(buf);
}

/** Number of non-zero mask entries and their sum (token counts for logging and loss scaling). */
export function maskCount(mask: NumericArray): number {
  return maskSum(mask);
}
