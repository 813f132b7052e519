import { bf16ValueRef } from './copy';
import type { RefArray } from './elementwise';

function checkId(ids: Int32Array, i: number, vocab: number): number {
  const id = ids[i];
  if (id < 0 || id >= vocab) throw new RangeError(`ids[${i}] = ${id} is outside [0, vocab = ${vocab})`);
  return id;
}

export function embeddingForwardRef(out: RefArray, ids: Int32Array, table: RefArray, n: number, vocab: number, dim: number): void {
  for (let i = 0; i < n; i++) {
    const id = checkId(ids, i, vocab);
    for (let c = 0; c < dim; c++) out[i * dim + c] = table[id * dim + c];
  }
}

export function embeddingBackwardRef(dtable: RefArray, dy: RefArray, ids: Int32Array, n: number, vocab: number, dim: number): void {
  for (let i = 0; i < n; i++) {
    const id = checkId(ids, i, vocab);
    for (let c = 0; c < dim; c++) dtable[id * dim + c] += dy[i * dim + c];
  }
}

/** embeddingForward on a bf16 table (its bits): each value widened exactly. */
export function embeddingForwardBf16Ref(out: RefArray, ids: Int32Array, table: Uint16Array, n: number, vocab: number, dim: number): void {
  for (let i = 0; i < n; i++) {
    const id = checkId(ids, i, vocab);
    for (let c = 0; c < dim; c++) out[i * dim + c] = bf16ValueRef(table[id * dim + c]);
  }
}
