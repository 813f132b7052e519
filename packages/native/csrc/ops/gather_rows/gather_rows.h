// gatherRows: rows of a matrix picked by an index, and its backward (core's gatherRows).
//
//   gatherRows(out, x, index, m, n, cols)            out (m, cols) = x (n, cols)[index]       index (m) i32
//   gatherRowsBackward(dx, dy, index, m, n, cols)    dx (n, cols) = 0, then dx[index[i]] += dy[i] for i < m
//
// dx is written (an activation gradient): rows no index picks are zero, a row picked several times gets the
// sum of its dy rows, added in the order of i (deterministic: the same bits whatever the thread count, and
// the same as core's former TypeScript loop). Every index is in [0, n) (checked by the binding).
#pragma once
#include <cstdint>

namespace rlhf {

void gather_rows_f32_cpu(float* out, const float* x, const int32_t* index, int64_t m, int64_t n, int64_t cols);
void gather_rows_backward_f32_cpu(float* dx, const float* dy, const int32_t* index, int64_t m, int64_t n,
                                  int64_t cols);

}  // namespace rlhf
