// permute0213 on the CPU, in tiles of kTileB rows of b: a tile reads x[a, b0:b0+kTileB, :, :] (one contiguous
// stretch) and writes out[a, c, b0:b0+kTileB, :] for every c (C contiguous stretches). Walking whole output
// blocks (a, c) instead would read B rows C·D floats apart, a new page almost every row (TLB misses); the
// tiles keep both sides sequential. Tiles go to threads; each D-row moves with memcpy.
#include <algorithm>
#include <cstring>

#include "common/parallel.h"
#include "ops/permute/permute.h"

namespace rlhf {

static constexpr int64_t kTileB = 16;

void permute0213_cpu(float* out, const float* x, int64_t A, int64_t B, int64_t C, int64_t D) {
  if (A == 0 || B == 0 || C == 0 || D == 0) return;
  const int64_t tiles_per_a = (B + kTileB - 1) / kTileB, tiles = A * tiles_per_a;
  const int64_t tile_floats = std::min(B, kTileB) * C * D;
  parallel_for(tiles, std::max<int64_t>(1, (int64_t(1) << 15) / tile_floats), [&](int64_t s, int64_t e) {
    for (int64_t tile = s; tile < e; ++tile) {
      const int64_t a = tile / tiles_per_a, b0 = (tile % tiles_per_a) * kTileB, b1 = std::min(B, b0 + kTileB);
      for (int64_t c = 0; c < C; ++c) {
        float* o = out + ((a * C + c) * B) * D;    // out[a, c, 0, :]
        const float* src = x + (a * B * C + c) * D;  // x[a, 0, c, :]
        if (D >= 8) {
          for (int64_t b = b0; b < b1; ++b) std::memcpy(o + b * D, src + b * C * D, size_t(D) * sizeof(float));
        } else {  // short rows: a call per row would cost more than the copy
          for (int64_t b = b0; b < b1; ++b)
            for (int64_t d = 0; d < D; ++d) o[b * D + d] = src[b * C * D + d];
        }
      }
    }
  });
}

}  // namespace rlhf
