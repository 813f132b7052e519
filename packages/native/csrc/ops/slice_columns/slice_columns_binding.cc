// sliceColumns(out, x, rows, width, offset, cols), sliceColumnsBackward(dx, dy, rows, width, offset, cols).
// Shapes: slice_columns.h.
#include <string>

#include "common/args.h"
#include "common/registry.h"
#include "ops/slice_columns/slice_columns.h"

namespace rlhf {

struct SliceSizes {
  int64_t rows, width, offset, cols, full, band;  // full = rows·width, band = rows·cols (elements)
};

static SliceSizes slice_sizes(const Args& a) {
  SliceSizes s;
  s.rows = a.size(2, "rows");
  s.width = a.size(3, "width");
  s.offset = a.size(4, "offset");
  s.cols = a.size(5, "cols");
  if (s.offset + s.cols > s.width)
    a.range_error("argument 4 'offset' + argument 5 'cols' (" + std::to_string(s.offset) + " + " +
                  std::to_string(s.cols) + ") exceed argument 3 'width' (" + std::to_string(s.width) + ")");
  s.full = a.mul(s.rows, s.width, "rows*width");
  s.band = a.mul(s.rows, s.cols, "rows*cols");
  return s;
}

static void SliceColumns(const Napi::CallbackInfo& info) {
  Args a(info, "sliceColumns");
  a.count(6);
  SliceSizes s = slice_sizes(a);
  float* out = a.f32(0, "out", s.band);
  const float* x = a.f32(1, "x", s.full);
  a.no_overlap(out, size_t(s.band) * 4, "out", x, size_t(s.full) * 4, "x");
  slice_columns_f32_cpu(out, x, s.rows, s.width, s.offset, s.cols);
}

static void SliceColumnsBackward(const Napi::CallbackInfo& info) {
  Args a(info, "sliceColumnsBackward");
  a.count(6);
  SliceSizes s = slice_sizes(a);
  float* dx = a.f32(0, "dx", s.full);
  const float* dy = a.f32(1, "dy", s.band);
  a.no_overlap(dx, size_t(s.full) * 4, "dx", dy, size_t(s.band) * 4, "dy");
  slice_columns_backward_f32_cpu(dx, dy, s.rows, s.width, s.offset, s.cols);
}

static void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("sliceColumns", Napi::Function::New(env, SliceColumns, "sliceColumns"));
  exports.Set("sliceColumnsBackward", Napi::Function::New(env, SliceColumnsBackward, "sliceColumnsBackward"));
}
RLHF_REGISTER_OP(slice_columns, Export);

}  // namespace rlhf
