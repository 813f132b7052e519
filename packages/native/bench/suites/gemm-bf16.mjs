// gemmBf16 (B a bf16 weight (out, in), y = x·Wᵀ) against float32 gemm on the same shapes, interleaved:
// `ours` is gemmBf16 at the level in force (avx512bf16 where the CPU has it: vdpbf16ps on the packed path);
// peers: `f32` (gemm with the float32 weight) and, where AVX512_BF16 exists, `bf16-widen` (gemmBf16 with the
// level lowered to avx512: B widened while packed or loaded, the path of every other CPU).
// Shapes: Qwen2.5-0.5B's projections (d = 896, MLP 4864) over 1024 tokens, and generation (m = 1, 4).
// flops = 2 m n k.
export default async function gemmBf16(h) {
  const top = h.native.info().simdBf16 ? 'avx512bf16' : h.native.info().simd;
  const shapes = [
    [1024, 896, 896], // q / o projection
    [1024, 4864, 896], // MLP gate / up
    [1024, 896, 4864], // MLP down
    [1, 4864, 896], // generation, one row
    [4, 4864, 896], // generation, four rows
  ];
  for (const [m, n, k] of h.quick ? shapes.slice(1, 4) : shapes) {
    const A = h.randomF32(m * k, 1);
    const W = h.randomF32(n * k, 2);
    const Wh = new Uint16Array(n * k);
    h.native.castF32ToBf16(Wh, W, n * k);
    const C = new Float32Array(m * n);
    const peers = {
      f32: () => h.native.gemm(C, A, W, m, n, k, false, true, 1, 0),
    };
    if (top === 'avx512bf16') {
      peers['bf16-widen'] = () => {
        h.native.setSimdLevel('avx512');
        h.native.gemmBf16(C, A, Wh, m, n, k, true, 1, 0);
        h.native.setSimdLevel(top);
      };
    }
    await h.compare({
      kernel: 'gemmBf16',
      shape: `${m}x${n}x${k} tB (${top})`,
      flops: 2 * m * n * k,
      ours: () => h.native.gemmBf16(C, A, Wh, m, n, k, true, 1, 0),
      peers,
    });
  }
}
