// Memory bandwidth of copyF32 at sizes from L2-resident to DRAM-resident, against numpy's copy (np.copyto)
// and tfjs-wasm (no direct peer for a bare copy in onnxruntime; Identity is elided by the graph optimiser).
export default async function copy(h) {
  const sizes = h.quick ? [1 << 16, 1 << 24] : [1 << 16, 1 << 20, 1 << 24];
  for (const n of sizes) {
    const src = h.randomF32(n, 3);
    const dst = new Float32Array(n);
    const peers = {};
    if (h.numpy) peers.numpy = await h.numpy.timer(`import numpy as np\n_s = np.random.rand(${n}).astype(np.float32)\n_d = np.empty_like(_s)`, 'np.copyto(_d, _s)');
    await h.compare({ kernel: 'copyF32', shape: `${n}`, bytes: 8 * n, ours: () => h.native.copyF32(dst, src, n), peers });
  }
}
