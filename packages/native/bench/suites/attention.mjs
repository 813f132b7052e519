// Fused causal attention (attentionForward / attentionBackward) against onnxruntime-node's opset-23
// `Attention` op (is_causal = 1) and numpy (scores materialised, BLAS matmuls), interleaved in the same run.
//
// FLOPs count the causal half only (the visible (query, key) pairs, P = B*H*T*(T+1)/2):
//   forward  4*D per pair (Q K^T and P V: two multiply-adds per pair per channel)
//   backward 10*D per pair (five products per tile: S recomputed, dV, dP, dK, dQ)
// The softmax's exp and the online rescaling are not counted. The forward+backward row is compared with our
// own GEMM (`gemm`, when this build has it) or numpy's sgemm at a comparable size, measured in the same run,
// and always with the FMA-peak yardstick (pctPeak).
const pairs = (B, H, T) => B * H * (T * (T + 1)) / 2;

export default async function attention(h) {
  const n = h.native;
  if (typeof n.attentionForward !== 'function') {
    h.note('attentionForward is not in this addon build: suite skipped');
    return;
  }

  // ---- forward, B=4 H=8 T=256 D=64 (the shape), and a longer sequence ----
  const fwdShapes = h.quick ? [[4, 8, 256, 64]] : [[4, 8, 256, 64], [1, 8, 1024, 64], [4, 8, 256, 128]];
  for (const [B, H, T, D] of fwdShapes) {
    const len = B * H * T * D;
    const q = h.randomF32(len, 1), k = h.randomF32(len, 2), v = h.randomF32(len, 3);
    const out = new Float32Array(len), lse = new Float32Array(B * H * T);
    const scale = 1 / Math.sqrt(D);
    const peers = {};
    if (h.ort) {
      const { onnxModel, node, valueInfo, DataType } = h.onnx;
      const dims = [B, H, T, D];
      const bytes = onnxModel({
        opset: 23,
        inputs: ['Q', 'K', 'V'].map((x) => valueInfo(x, DataType.FLOAT, dims)),
        outputs: [valueInfo('Y', DataType.FLOAT, dims)],
        nodes: [node('Attention', ['Q', 'K', 'V'], ['Y'], { is_causal: 1, scale: { float: scale } })],
      });
      try {
        const session = await h.ort.session(bytes);
        const feeds = { Q: h.ort.tensor(q, dims), K: h.ort.tensor(k, dims), V: h.ort.tensor(v, dims) };
        // check that the peer computes the same thing before timing it
        const y = (await session.run(feeds)).Y.data;
        n.attentionForward(out, lse, q, k, v, null, B, H, H, T, T, T, D, scale);
        let err = 0;
        for (let i = 0; i < len; i++) err = Math.max(err, Math.abs(y[i] - out[i]));
        if (err > 1e-4) h.note(`onnxruntime Attention differs from ours by ${err} at B${B} H${H} T${T} D${D}`);
        peers.ort = () => session.run(feeds);
      } catch (e) {
        h.note(`onnxruntime Attention (opset 23) unavailable: ${e.message ?? e}`);
      }
    }
    if (h.numpy) {
      peers.numpy = await h.numpy.timer(
        `import numpy as np\n` +
          `_at_r = np.random.default_rng(1)\n` +
          `_at_q, _at_k, _at_v = (_at_r.standard_normal((${B}, ${H}, ${T}, ${D}), dtype=np.float32) for _ in range(3))\n` +
          `_at_m = np.triu(np.full((${T}, ${T}), -np.inf, dtype=np.float32), 1)`,
        `_s = _at_q @ _at_k.transpose(0, 1, 3, 2)\n` +
          `_s *= np.float32(${scale})\n_s += _at_m\n_s -= _s.max(-1, keepdims=True)\nnp.exp(_s, out=_s)\n` +
          `_s /= _s.sum(-1, keepdims=True)\n_o = _s @ _at_v`,
      );
    }
    await h.compare({
      kernel: 'attentionForward',
      shape: `B${B} H${H} T${T} D${D} causal`,
      flops: 4 * D * pairs(B, H, T),
      ours: () => n.attentionForward(out, lse, q, k, v, null, B, H, H, T, T, T, D, scale),
      peers,
    });
  }

  // ---- generation: one new token against a KV cache (Tq = 1), grouped-query heads ----
  {
    const B = 4, H = 8, Hkv = 2, Tk = 512, cap = 1024, D = 64;
    const q = h.randomF32(B * H * D, 4), k = h.randomF32(B * Hkv * cap * D, 5), v = h.randomF32(B * Hkv * cap * D, 6);
    const out = new Float32Array(B * H * D), lse = new Float32Array(B * H);
    await h.compare({
      kernel: 'attentionForward',
      shape: `decode B${B} H${H} Hkv${Hkv} Tq1 Tk${Tk} D${D}`,
      bytes: 4 * 2 * B * Hkv * Tk * D, // the K and V rows read (each once per kv head when cached well)
      ours: () => n.attentionForward(out, lse, q, k, v, null, B, H, Hkv, 1, Tk, cap, D, 1 / Math.sqrt(D)),
    });
  }

  // ---- forward + backward at T = 1024, D = 64, against a GEMM measured in the same run ----
  {
    const B = 1, H = 8, T = 1024, D = 64;
    const len = B * H * T * D;
    const q = h.randomF32(len, 7), k = h.randomF32(len, 8), v = h.randomF32(len, 9), dout = h.randomF32(len, 10);
    const out = new Float32Array(len), lse = new Float32Array(B * H * T);
    const dq = new Float32Array(len), dk = new Float32Array(len), dv = new Float32Array(len);
    const scale = 1 / Math.sqrt(D);
    const peers = {};
    // The GEMM yardstick: 1024^3, about the work of this forward+backward (14*D*pairs = 4.7 GFLOP vs 2.1).
    const m = 1024;
    const ga = h.randomF32(m * m, 11), gb = h.randomF32(m * m, 12), gc = new Float32Array(m * m);
    if (typeof n.gemm === 'function') peers.gemm = () => n.gemm(gc, ga, gb, m, m, m, false, false, 1, 0);
    else h.note('gemm is not in this addon build: the forward+backward row is compared with numpy sgemm only');
    if (h.numpy)
      peers['numpy-sgemm'] = await h.numpy.timer(
        `import numpy as np\n_at_ga = np.random.rand(${m}, ${m}).astype(np.float32)\n_at_gb = np.random.rand(${m}, ${m}).astype(np.float32)\n_at_gc = np.empty((${m}, ${m}), np.float32)`,
        'np.matmul(_at_ga, _at_gb, out=_at_gc)',
      );
    const rows = await h.compare({
      kernel: 'attentionForward+Backward',
      shape: `B${B} H${H} T${T} D${D} causal`,
      flops: 14 * D * pairs(B, H, T),
      ours: () => {
        n.attentionForward(out, lse, q, k, v, null, B, H, H, T, T, T, D, scale);
        n.attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, null, B, H, H, T, T, T, D, scale);
      },
      peers,
    });
    // The GEMMs' own GFLOP/s in this run (peerMs is their time per 1024^3 call): ours as a fraction of theirs.
    for (const r of rows) {
      if (!r.peer || !r.peerMs) continue;
      const gemmGflops = (2 * m * m * m) / r.peerMs / 1e6;
      h.note(`fwd+bwd T${T}: ${r.gflops?.toFixed(1)} GFLOP/s = ${((100 * r.gflops) / gemmGflops).toFixed(0)}% of ` +
        `${r.peer} ${m}^3 at ${gemmGflops.toFixed(1)} GFLOP/s in the same run`);
    }
    if (h.peakGflops) h.note(`fwd+bwd T${T}: ${((100 * rows[0].gflops) / h.peakGflops).toFixed(0)}% of the FMA peak`);
  }
}
