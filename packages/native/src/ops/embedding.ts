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

/**
 * out(i,:) = table(ids[i],:) widened to float32, for a table kept in bf16 (its bits in a Uint16Array: a frozen
 * table, no backward). Exact: equal bit for bit to embeddingForward on the widened table (castBf16ToF32). An id
 * outside [0, vocab) is a RangeError that names its index.
 */
export function embeddingForwardBf16(
  out: Float32Array,
  ids: Int32Array,
  table: Uint16Array,
  n: number,
  vocab: number,
  dim: number,
): void {
  native().embeddingForwardBf16(out, ids, table, n, vocab, dim);
}
