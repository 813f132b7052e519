// The harnesses' comparison: the worst |got − ref| / tolerance over a set of elements, and where it was.
// An infinite reference must be matched exactly; a NaN or infinite result against a finite reference is infinitely
// wrong. Printed as a JSON number (1e308 standing for infinity).
#pragma once

#include <cmath>
#include <limits>
#include <string>

namespace rlhf_cuda_emu {

struct Worst {
  double ratio = 0;
  std::string where;
  void add(double got, double ref, double tol, const std::string& at) {
    double r;
    if (std::isinf(ref) || std::isinf(got)) r = (got == ref) ? 0 : std::numeric_limits<double>::infinity();
    else r = std::isfinite(got) ? std::abs(got - ref) / tol : std::numeric_limits<double>::infinity();
    if (!(r <= ratio)) ratio = r, where = at + " got " + std::to_string(got) + " ref " + std::to_string(ref);
  }
  std::string json() const { return std::isfinite(ratio) ? std::to_string(ratio) : std::string("1e308"); }
  std::string json_where() const {
    std::string s;
    for (char ch : where) s += ch == '"' ? '\'' : ch;
    return "\"" + s + "\"";
  }
};

}  // namespace rlhf_cuda_emu
