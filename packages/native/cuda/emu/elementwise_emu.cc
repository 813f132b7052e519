// Runs elementwise.cu's sum_squares_k (as sum_squares_many launches it: one launch per tensor into its own
// double) and the bf16 casts on the CPU through cuda_emu.h, and prints one JSON line per check.
//   sum of squares: against a long double sum; tolerance 1e-12 relative (double accumulation in another order).
//   f32 -> bf16: against the nearest bf16 found by distance in double (ties to the even mantissa), NaN kept NaN;
//   bf16 -> f32: exact.
#include "compare.h"
#include "cuda_emu.h"
#define RLHF_CUDA_EMU 1
#include "../elementwise.cu"

#include <cstdio>
#include <random>

namespace {

using rlhf_cuda_emu::Worst;

unsigned blocks_for(int64_t n) { return (unsigned)std::max<int64_t>(1, (n + rlhf_cuda::kThreads - 1) / rlhf_cuda::kThreads); }

std::string sum_squares_many_check(std::mt19937& rng) {
  // tensors of 1, 255, 257 and 5000 elements; the last also on 3 blocks (the grid-stride loop)
  const int64_t ns[] = {1, 255, 257, 5000, 5000};
  const unsigned grids[] = {0, 0, 0, 0, 3};
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  std::vector<std::vector<float>> xs;
  for (int64_t n : ns) {
    std::vector<float> x((size_t)n);
    for (auto& e : x) e = u(rng);
    xs.push_back(std::move(x));
  }
  std::vector<double> acc(std::size(ns), 0.0);  // sum_squares_many zeroes its accumulators first
  for (size_t t = 0; t < std::size(ns); t++)
    rlhf_cuda_emu::launch(dim3(grids[t] ? grids[t] : blocks_for(ns[t])), dim3(rlhf_cuda::kThreads), 0,
                          [&] { rlhf_cuda::sum_squares_k(&acc[t], xs[t].data(), ns[t]); });
  Worst w;
  for (size_t t = 0; t < std::size(ns); t++) {
    long double ref = 0;
    for (float e : xs[t]) ref += (long double)e * e;
    w.add(acc[t], (double)ref, 1e-12 * (double)ref, "tensor " + std::to_string(t));
  }
  return "{\"name\":\"sumSquaresMany\",\"worst\":{\"sum\":" + w.json() + "},\"where\":{\"sum\":" + w.json_where() + "}}";
}

// The bf16 nearest to f (ties to an even mantissa), found by distance: not the kernel's bit recipe.
uint16_t nearest_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
  const double dlo = std::abs((double)f - std::bit_cast<float>((uint32_t)lo << 16));
  // Above the largest bf16 the next step is 2^128 with the exponent unbounded: IEEE rounds there to infinity.
  const double vhi = (hi & 0x7fffu) == 0x7f80u ? std::copysign(std::ldexp(1.0, 128), (double)f)
                                                : (double)std::bit_cast<float>((uint32_t)hi << 16);
  const double dhi = std::abs((double)f - vhi);
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

std::string cast_check(std::mt19937& rng) {
  std::vector<float> x;
  std::uniform_real_distribution<float> u(-100.f, 100.f);
  for (int i = 0; i < 3000; i++) x.push_back(u(rng));
  for (uint32_t b : {0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x00000001u, 0x80008000u, 0x7f7fffffu, 0x7f800000u,
                     0xff800000u, 0x00000000u, 0x80000000u})
    x.push_back(std::bit_cast<float>(b));  // ties both ways, subnormals, the largest float, ±inf, ±0
  x.push_back(NAN);
  x.push_back(std::bit_cast<float>(0x7f800001u));  // a NaN whose payload is only in the low bits
  const int64_t n = (int64_t)x.size();
  std::vector<uint16_t> h(x.size(), 0xdead);
  std::vector<float> back(x.size(), -1.f);
  rlhf_cuda_emu::launch(dim3(blocks_for(n)), dim3(rlhf_cuda::kThreads), 0,
                        [&] { rlhf_cuda::cast_f32_to_bf16_k(h.data(), x.data(), n); });
  rlhf_cuda_emu::launch(dim3(2), dim3(rlhf_cuda::kThreads), 0, [&] { rlhf_cuda::cast_bf16_to_f32_k(back.data(), h.data(), n); });
  int wrong = 0, wrong_back = 0;
  std::string first;
  for (size_t i = 0; i < x.size(); i++) {
    const bool ok = std::isnan(x[i]) ? std::isnan(std::bit_cast<float>((uint32_t)h[i] << 16)) : h[i] == nearest_bf16(x[i]);
    if (!ok && wrong++ == 0) first = "x bits " + std::to_string(std::bit_cast<uint32_t>(x[i])) + " got " + std::to_string(h[i]);
    if (std::bit_cast<uint32_t>(back[i]) != ((uint32_t)h[i] << 16)) wrong_back++;
  }
  return "{\"name\":\"castBf16\",\"count\":" + std::to_string(n) + ",\"wrong\":" + std::to_string(wrong) +
         ",\"wrongBack\":" + std::to_string(wrong_back) + ",\"worst\":{},\"where\":{},\"first\":\"" + first + "\"}";
}

}  // namespace

int main() {
  std::mt19937 rng(20261208);
  std::printf("%s\n%s\n", sum_squares_many_check(rng).c_str(), cast_check(rng).c_str());
  return 0;
}
