import { native } from '../loader';

/**
 * out(i,:) = table(ids[i],:): out (n, dim), table (vocab, dim), ids (n) int32. An id outside [0, vocab)
 * is a RangeError that names its index.
 */
export function embeddingForward(
  out: Float32Array,
  ids: Int32Array,
  table: Float32Array,
  n: number,
  vocab: number,
  dim: number,
): void {
  native().embeddingForward(out, ids, table, n, vocab, dim);
}

/** dtable(ids[i],:) += dy(i,:); repeated ids accumulate (dtable is a parameter gradient). */
export function embeddingBackward(
  dtable: Float32Array,
  dy: Float32Array,
  ids: Int32Array,
  n: number,
  vocab: number,
  dim: number,
): void {
  native().embeddingBackward(dtable, dy, ids, n, vocab, dim);
}
