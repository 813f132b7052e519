// Runs softmax.cu's forward and backward kernels on the CPU through cuda_emu.h against a float64 softmax
// (API.md's contract, restated in softmax.cu's header) and prints one JSON line per shape: the worst
// |kernel − reference| / tolerance per output (<= 1 passes) and the checks of the special rows and of in-place
// calls. Tolerances: float32 exp and a sum over cols in float32 (at most (cols / 256 + 13)·2^-24 relative, the
// order of the block reduction), and the rounding of scale·x: 1e-5 relative to y (resp. to the sums of |terms|).
#include "compare.h"
#include "cuda_emu.h"
#define RLHF_CUDA_EMU 1
#include "../softmax.cu"

#include <cstdio>
#include <random>

namespace {

using rlhf_cuda_emu::Worst;
struct Case {
  const char* name;
  int rows, cols;
  float scale;
  bool specials;  // rows 0..3: all −inf; a +inf; a NaN; −inf entries among finite ones
};

void forward(float* y, float* lse, const float* x, int rows, int cols, float scale) {
  rlhf_cuda_emu::launch(dim3(rlhf_cuda::grid_of(rows)), dim3(rlhf_cuda::kThreads), 0,
                        [&] { rlhf_cuda::softmax_forward_k(y, lse, x, rows, cols, scale); });
}
void backward(float* dx, const float* dy, const float* y, int rows, int cols, float scale) {
  rlhf_cuda_emu::launch(dim3(rlhf_cuda::grid_of(rows)), dim3(rlhf_cuda::kThreads), 0,
                        [&] { rlhf_cuda::softmax_backward_k(dx, dy, y, rows, cols, scale); });
}

std::string run_case(const Case& c, std::mt19937& rng) {
  const int R = c.rows, C = c.cols;
  std::uniform_real_distribution<float> ux(-4.f, 4.f), ud(-1.f, 1.f);
  std::vector<float> x((size_t)R * C), dy((size_t)R * C);
  for (auto& e : x) e = ux(rng);
  for (auto& e : dy) e = ud(rng);
  if (c.specials) {
    for (int j = 0; j < C; j++) x[j] = -INFINITY;
    x[(size_t)1 * C + C / 2] = INFINITY;
    x[(size_t)2 * C + C / 3] = NAN;
    for (int j = 0; j < C; j += 3) x[(size_t)3 * C + j] = -INFINITY;
  }
  std::vector<float> y(x.size(), -7.f), lse(R, -7.f), dx(x.size(), -7.f);
  forward(y.data(), lse.data(), x.data(), R, C, c.scale);
  backward(dx.data(), dy.data(), y.data(), R, C, c.scale);
  // in place: y = x, dx = dy, bit for bit as out of place
  std::vector<float> xin = x, dyin = dy, lse2(R);
  forward(xin.data(), lse2.data(), xin.data(), R, C, c.scale);
  backward(dyin.data(), dyin.data(), y.data(), R, C, c.scale);
  const bool in_place = std::memcmp(xin.data(), y.data(), y.size() * 4) == 0 &&
                        std::memcmp(dyin.data(), dx.data(), dx.size() * 4) == 0;

  Worst wy, wl, wdx;
  bool specials_ok = true;
  for (int r = 0; r < R; r++) {
    const float* xr = &x[(size_t)r * C];
    double mx = -INFINITY;
    bool nan = false;
    for (int j = 0; j < C; j++) nan |= std::isnan(xr[j]), mx = std::isnan(xr[j]) ? mx : std::max(mx, (double)c.scale * xr[j]);
    if (nan || std::isinf(mx)) {  // no distribution: y NaN; lse the maximum (±inf), NaN for a NaN entry
      bool ok = nan ? std::isnan(lse[r]) : lse[r] == mx;
      for (int j = 0; j < C; j++) ok = ok && std::isnan(y[(size_t)r * C + j]);
      specials_ok = specials_ok && ok;
      continue;
    }
    double s = 0;
    for (int j = 0; j < C; j++) s += std::exp((double)c.scale * xr[j] - mx);
    const double L = mx + std::log(s);
    wl.add(lse[r], L, 1e-5 * (1 + std::abs(L)), "lse row " + std::to_string(r));
    double dot = 0, dot_abs = 0;
    for (int j = 0; j < C; j++) {
      const double ref = std::exp((double)c.scale * xr[j] - L);
      wy.add(y[(size_t)r * C + j], ref, 1e-5 * ref + 1e-30, "y " + std::to_string(r) + "," + std::to_string(j));
      dot += (double)dy[(size_t)r * C + j] * y[(size_t)r * C + j];  // the backward's input is the kernel's y
      dot_abs += std::abs((double)dy[(size_t)r * C + j] * y[(size_t)r * C + j]);
    }
    for (int j = 0; j < C; j++) {
      const double yy = y[(size_t)r * C + j], g = dy[(size_t)r * C + j];
      const double ref = c.scale * yy * (g - dot);
      wdx.add(dx[(size_t)r * C + j], ref, std::abs(c.scale) * yy * 1e-5 * (std::abs(g) + dot_abs) + 1e-30,
              "dx " + std::to_string(r) + "," + std::to_string(j));
    }
  }
  char head[200];
  std::snprintf(head, sizeof head, "{\"name\":\"%s\",\"rows\":%d,\"cols\":%d,\"scale\":%g,\"specialsOk\":%s,\"inPlaceOk\":%s,",
                c.name, R, C, c.scale, specials_ok ? "true" : "false", in_place ? "true" : "false");
  return std::string(head) + "\"worst\":{\"y\":" + wy.json() + ",\"lse\":" + wl.json() + ",\"dx\":" + wdx.json() +
         "},\"where\":{\"y\":" + wy.json_where() + ",\"lse\":" + wl.json_where() + ",\"dx\":" + wdx.json_where() + "}}";
}

}  // namespace

int main() {
  const Case cases[] = {
      {"cols1", 3, 1, 1.f, false},
      {"cols7", 4, 7, 0.5f, false},
      {"cols300-specials", 6, 300, 1.f, true},
      {"cols1000", 2, 1000, 2.f, false},
  };
  std::mt19937 rng(20261208);
  for (const Case& c : cases) std::printf("%s\n", run_case(c, rng).c_str());
  return 0;
}
