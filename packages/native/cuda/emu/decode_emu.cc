// Runs decode.cu's decode_softmax_k on the CPU through cuda_emu.h against a float64 computation of its contract
// (decode.cu's header: mx the largest x, argmax the first position holding it, e = exp(scale·(x − mx)),
// lse = scale·mx + log Σ e, probs = e / Σ e when asked; rows of stride ld) and prints one JSON line per shape.
// Tolerances: 1e-5 relative (float32 exp and a float32 sum over cols in the block reduction's order); argmax
// exact; probs beyond cols (ld > cols) untouched.
#include "compare.h"
#include "cuda_emu.h"
#define RLHF_CUDA_EMU 1
#include "../decode.cu"

#include <cstdio>
#include <random>

namespace {

using rlhf_cuda_emu::Worst;
struct Case {
  const char* name;
  int rows, cols, ld;
  float scale;
  bool probs;
  unsigned grid;  // 0: the launcher's (one block per row); else fewer blocks than rows (the grid-stride loop)
};

std::string run_case(const Case& c, std::mt19937& rng) {
  const int R = c.rows, C = c.cols, ld = c.ld;
  std::uniform_real_distribution<float> ux(-4.f, 4.f);
  std::uniform_int_distribution<int> col(0, C - 1);
  std::vector<float> x((size_t)R * ld, NAN);  // NaN between rows: never read
  for (int r = 0; r < R; r++) {
    for (int j = 0; j < C; j++) x[(size_t)r * ld + j] = ux(rng) < -3.f ? -INFINITY : ux(rng);
    if (C > 1) {  // the maximum twice: argmax is the first
      const int a = col(rng), b = col(rng);
      x[(size_t)r * ld + a] = x[(size_t)r * ld + b] = 4.5f;
    }
    x[(size_t)r * ld] = r == 0 ? 3.f : x[(size_t)r * ld];  // row 0: finite first entry whatever the draw
  }
  const float sentinel = -7.f;
  std::vector<float> probs(c.probs ? x.size() : 0, sentinel), lse(R, sentinel);
  std::vector<int32_t> argmax(R, -1);
  const unsigned grid = c.grid ? c.grid : (unsigned)R;
  rlhf_cuda_emu::launch(dim3(grid), dim3(rlhf_cuda::kThreads), 0, [&] {
    rlhf_cuda::decode_softmax_k(c.probs ? probs.data() : nullptr, lse.data(), argmax.data(), x.data(), R, C, ld,
                                c.scale);
  });
  Worst wp, wl;
  bool argmax_ok = true, untouched = true;
  for (int r = 0; r < R; r++) {
    const float* xr = &x[(size_t)r * ld];
    double mx = -INFINITY;
    int first = 0;
    for (int j = 0; j < C; j++)
      if (xr[j] > mx) mx = xr[j], first = j;
    argmax_ok = argmax_ok && argmax[r] == first;
    double s = 0;
    for (int j = 0; j < C; j++) s += std::exp((double)c.scale * (xr[j] - mx));
    const double L = c.scale * mx + std::log(s);
    wl.add(lse[r], L, 1e-5 * (1 + std::abs(L)), "lse row " + std::to_string(r));
    if (!c.probs) continue;
    for (int j = 0; j < C; j++) {
      const double ref = std::exp((double)c.scale * (xr[j] - mx)) / s;
      wp.add(probs[(size_t)r * ld + j], ref, 1e-5 * ref + 1e-30, "p " + std::to_string(r) + "," + std::to_string(j));
    }
    for (int j = C; j < ld && r * ld + j < (int)probs.size(); j++) untouched = untouched && probs[(size_t)r * ld + j] == sentinel;
  }
  char head[220];
  std::snprintf(head, sizeof head,
                "{\"name\":\"%s\",\"rows\":%d,\"cols\":%d,\"ld\":%d,\"scale\":%g,\"probs\":%s,\"grid\":%u,\"argmaxOk\":%s,"
                "\"untouchedBeyondCols\":%s,",
                c.name, R, C, ld, c.scale, c.probs ? "true" : "false", grid, argmax_ok ? "true" : "false",
                untouched ? "true" : "false");
  return std::string(head) + "\"worst\":{\"probs\":" + wp.json() + ",\"lse\":" + wl.json() + "},\"where\":{\"probs\":" +
         wp.json_where() + ",\"lse\":" + wl.json_where() + "}}";
}

}  // namespace

int main() {
  const Case cases[] = {
      {"cols1", 3, 1, 4, 1.f, true, 0},
      {"cols7-ld9", 4, 7, 9, 0.7f, true, 0},
      {"cols300-noprobs", 3, 300, 303, 1.f, false, 0},
      {"cols1000-grid2", 5, 1000, 1000, 1.3f, true, 2},
  };
  std::mt19937 rng(20261208);
  for (const Case& c : cases) std::printf("%s\n", run_case(c, rng).c_str());
  return 0;
}
