/**
 * Deterministic train/validation split by a hash of the prompt: every record with the same prompt lands on
 * the same side, whatever the order of the file or the machine, so several completions or labelers of one
 * prompt never straddle the split (which would leak the validation prompts into training).
 */
import { unitHash, promptKey } from './hash';
import type { DataRecord } from './schemas';

export type Side = 'train' | 'val';

/** The side of a record: validation when the prompt's hash (with `seed`) falls below `valFraction`. */
export function splitSide(r: DataRecord, valFraction: number, seed = 0): Side {
  if (!(valFraction >= 0 && valFraction <= 1)) throw new RangeError(`the validation fraction must be in [0, 1], got ${valFraction}`);
  // A demonstration without a prompt is split by its text, its only identity.
  const key = r.kind === 'demonstration' && r.prompt === undefined ? `c:${JSON.stringify(r.completion)}` : promptKey(r.prompt);
  return unitHash(`${seed}\0${key}`) < valFraction ? 'val' : 'train';
}
