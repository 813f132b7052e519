// sgemm against numpy/OpenBLAS, onnxruntime-node (MatMul) and tfjs-wasm (tf.matMul), interleaved.
// Shapes: square n = 256..2048; a transformer block's projections (2048 tokens, d = 384: qkv 384 -> 1152,
// MLP 384 -> 1536 -> 384) forward and the two backward products (dX = dY W, dW += dY^T X), with the HF
// weight layout W (out, in) as our callers use it (API.md); and batch-1 generation (m = 1) against the same W.
// Batched: attention's two products for B = 4, H = 8, T = 256, D = 64 (scores = Q K^T per head, out = P V),
// the peers given the same batch of matrices in their own batched matmul (B already laid out (k, n) for them).
// flops = 2 m n k (times batch).

const label = (m, n, k, tA, tB) => `${m}x${n}x${k}${tA ? ' tA' : ''}${tB ? ' tB' : ''}`;

export default async function gemm(h) {
  const shapes = [];
  const squares = h.quick ? [256, 1024] : [256, 512, 1024, 2048];
  for (const s of squares) shapes.push({ m: s, n: s, k: s, tA: false, tB: false, tfjs: s <= 1024 || !h.quick });
  // (m, n, k, transA, transB): forward y = x W^T, dx = dy W, dW = dy^T x
  const proj = [
    [2048, 1152, 384, false, true], // qkv forward
    [2048, 384, 1152, false, false], // qkv backward dx
    [1152, 384, 2048, true, false], // qkv backward dW
    [2048, 1536, 384, false, true], // MLP up forward
    [2048, 384, 1536, false, true], // MLP down forward
  ];
  // tfjs-wasm takes seconds per call on these (single-threaded, slow transposes): raced on the first only.
  (h.quick ? proj.slice(0, 3) : proj).forEach(([m, n, k, tA, tB], i) => shapes.push({ m, n, k, tA, tB, tfjs: i === 0 }));
  // Generation: one token through a projection and an LM head (W stored (out, in): transB).
  shapes.push({ m: 1, n: 1152, k: 384, tA: false, tB: true, tfjs: true });
  shapes.push({ m: 1, n: 32000, k: 384, tA: false, tB: true, tfjs: !h.quick });
  shapes.push({ m: 4, n: 4096, k: 1024, tA: false, tB: true, tfjs: !h.quick });

  for (const { m, n, k, tA, tB, tfjs } of shapes) {
    const A = h.randomF32(m * k, 1);
    const B = h.randomF32(k * n, 2);
    const C = new Float32Array(m * n);
    const ours = () => h.native.gemm(C, A, B, m, n, k, tA, tB, 1, 0);
    const peers = {};
    const aDims = tA ? [k, m] : [m, k];
    const bDims = tB ? [n, k] : [k, n];
    if (h.numpy) {
      const a = `_ga = np.random.rand(${aDims}).astype(np.float32)${tA ? '.T' : ''}`;
      const b = `_gb = np.random.rand(${bDims}).astype(np.float32)${tB ? '.T' : ''}`;
      // np.matmul with out= on transposed views: OpenBLAS sgemm with its transpose flags, no copies.
      peers.numpy = await h.numpy.timer(`import numpy as np\n${a}\n${b}\n_gc = np.empty((${m}, ${n}), np.float32)`,
        'np.matmul(_ga, _gb, out=_gc)');
    }
    if (h.ort) {
      const { onnxModel, node, valueInfo, DataType } = h.onnx;
      // Gemm carries the transposes as attributes (MatMul would need explicit Transpose nodes).
      const bytes = onnxModel({
        opset: 17,
        inputs: [valueInfo('A', DataType.FLOAT, aDims), valueInfo('B', DataType.FLOAT, bDims)],
        outputs: [valueInfo('C', DataType.FLOAT, [m, n])],
        nodes: [tA || tB ? node('Gemm', ['A', 'B'], ['C'], { transA: tA ? 1 : 0, transB: tB ? 1 : 0 })
          : node('MatMul', ['A', 'B'], ['C'])],
      });
      const session = await h.ort.session(bytes);
      const feeds = { A: h.ort.tensor(A, aDims), B: h.ort.tensor(B, bDims) };
      peers.ort = () => session.run(feeds);
    }
    let tfTensors = null;
    if (h.tf && tfjs) {
      const tf = h.tf;
      tfTensors = [tf.tensor(A, aDims), tf.tensor(B, bDims)];
      const [a, b] = tfTensors;
      peers.tfjs = () => { tf.matMul(a, b, tA, tB).dispose(); };
    }
    await h.compare({ kernel: 'sgemm', shape: label(m, n, k, tA, tB), flops: 2 * m * n * k, ours, peers });
    if (tfTensors) for (const t of tfTensors) t.dispose();
  }

  // Batched (attention heads): (batch, m, n, k, transB)
  const batched = [
    [32, 256, 256, 64, true], // scores = Q K^T
    [32, 256, 64, 256, false], // out = P V
  ];
  for (const [batch, m, n, k, tB] of batched) {
    const A = h.randomF32(batch * m * k, 3);
    const B = h.randomF32(batch * k * n, 4);
    const C = new Float32Array(batch * m * n);
    const ours = () => h.native.gemmBatched(C, A, B, batch, m, n, k, m * k, k * n, m * n, false, tB, 1, 0);
    const peers = {};
    if (h.numpy) {
      peers.numpy = await h.numpy.timer(
        `import numpy as np\n_ba = np.random.rand(${batch}, ${m}, ${k}).astype(np.float32)\n` +
          `_bb = np.random.rand(${batch}, ${k}, ${n}).astype(np.float32)\n_bc = np.empty((${batch}, ${m}, ${n}), np.float32)`,
        'np.matmul(_ba, _bb, out=_bc)');
    }
    if (h.ort) {
      const { onnxModel, node, valueInfo, DataType } = h.onnx;
      const bytes = onnxModel({
        opset: 17,
        inputs: [valueInfo('A', DataType.FLOAT, [batch, m, k]), valueInfo('B', DataType.FLOAT, [batch, k, n])],
        outputs: [valueInfo('C', DataType.FLOAT, [batch, m, n])],
        nodes: [node('MatMul', ['A', 'B'], ['C'])],
      });
      const session = await h.ort.session(bytes);
      const feeds = { A: h.ort.tensor(A, [batch, m, k]), B: h.ort.tensor(B, [batch, k, n]) };
      peers.ort = () => session.run(feeds);
    }
    let tfTensors = null;
    if (h.tf) {
      const tf = h.tf;
      tfTensors = [tf.tensor(A, [batch, m, k]), tf.tensor(B, tB ? [batch, n, k] : [batch, k, n])];
      const [a, b] = tfTensors;
      peers.tfjs = () => { tf.matMul(a, b, false, tB).dispose(); };
    }
    await h.compare({ kernel: 'sgemmBatched', shape: `${batch}x(${label(m, n, k, false, tB)})`, flops: 2 * batch * m * n * k, ours, peers });
    if (tfTensors) for (const t of tfTensors) t.dispose();
  }
}
