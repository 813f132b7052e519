// Binding helpers shared by the elementwise/norm/embedding/rope/permute/adamw bindings.
#pragma once
#include <initializer_list>
#include <string>

#include "common/args.h"

namespace rlhf {

// An elementwise output may be its input (in place: each element is read before it is written), or live
// apart from it; a partial overlap (a view shifted by a few elements) would read values already written,
// so it is a RangeError.
inline void same_or_disjoint(const Args& a, const float* out, int64_t out_len, const char* out_name,
                             const float* in, int64_t in_len, const char* in_name) {
  if (out == in) return;
  auto po = reinterpret_cast<uintptr_t>(out), pi = reinterpret_cast<uintptr_t>(in);
  size_t ob = size_t(out_len) * sizeof(float), ib = size_t(in_len) * sizeof(float);
  if (ob == 0 || ib == 0) return;
  if (po < pi + ib && pi < po + ob)
    a.range_error(std::string("'") + out_name + "' and '" + in_name +
                  "' must be the same array (in place) or not share memory");
}

// A float array as the overlap checks see it.
struct Span {
  const float* data;
  int64_t len;  // elements
  const char* name;
};

// Every pair of these arrays must be disjoint (outputs against each other and against the inputs they do
// not overwrite in place).
inline void all_disjoint(const Args& a, std::initializer_list<Span> spans) {
  for (auto i = spans.begin(); i != spans.end(); ++i)
    for (auto j = i + 1; j != spans.end(); ++j)
      a.no_overlap(i->data, size_t(i->len) * sizeof(float), i->name, j->data, size_t(j->len) * sizeof(float),
                   j->name);
}

// Outputs must not share memory with each other nor with any of these inputs (inputs may share memory with
// each other: reading twice is harmless).
inline void outputs_disjoint(const Args& a, std::initializer_list<Span> outputs, std::initializer_list<Span> inputs) {
  all_disjoint(a, outputs);
  for (const Span& o : outputs)
    for (const Span& i : inputs)
      a.no_overlap(o.data, size_t(o.len) * sizeof(float), o.name, i.data, size_t(i.len) * sizeof(float), i.name);
}

}  // namespace rlhf
