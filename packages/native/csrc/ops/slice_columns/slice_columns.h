// sliceColumns: a band of columns of a row-major matrix, and its backward (core's splitLast, one piece).
//
//   sliceColumns(out, x, rows, width, offset, cols)            out (rows, cols) = x (rows, width)[:, offset:offset+cols]
//   sliceColumnsBackward(dx, dy, rows, width, offset, cols)    dx (rows, width)[:, offset:offset+cols] = dy (rows, cols)
//
// The backward writes (=) its band of dx and leaves the other columns untouched, so that the pieces of one
// split write their bands of the same dx one after another. offset + cols ≤ width (checked by the binding).
// Copies only: exact. Not in place (the binding rejects any overlap).
#pragma once
#include <cstdint>

namespace rlhf {

void slice_columns_f32_cpu(float* out, const float* x, int64_t rows, int64_t width, int64_t offset, int64_t cols);
void slice_columns_backward_f32_cpu(float* dx, const float* dy, int64_t rows, int64_t width, int64_t offset,
                                    int64_t cols);

}  // namespace rlhf
