// Elementwise, norm, embedding, RoPE, permute ops and the fused AdamW (ops/elementwise, gelu, swiglu,
// layernorm, rmsnorm, embedding, rope, permute, adamw), at sizes far beyond the caches, against
// copyF32 over the same number of bytes, interleaved in the same race: the `copy` peer's ratio
// (copyMs / ourMs) is our fraction of copy bandwidth. numpy computes the same thing the plain way where it has
// a natural one-line form.
//
// Bytes counted = what each kernel must read plus what it must write, once each (4 bytes a float):
//   add/mul/accumulate 12·n, scale 8·n, mulBackward 20·n, sumSquares 4·n, addBias 8·n, addBiasBackward 4·n,
//   gelu/silu forward 8·n, backward 12·n, swiglu forward 12·n, backward 20·n,
//   layernorm/rmsnorm forward 8·R·C (x in, out; mean/rstd and weights are noise), backward 12·R·C (dy, x in;
//   dx out), embedding forward 8·N·D (rows gathered + written), backward 12·N·D (dy in, table rows read and
//   written), rope 8·n, permute 8·n, adamw 28·n (param, grad, m, v in; param, m, v out).
//
// RLHF_BENCH_CLOCK=cpu times ours and the copy peer in CPU time of this process (process.cpuUsage, all
// threads) instead of wall time, and skips numpy: on a shared, oversubscribed machine wall time mostly
// measures the scheduler, while CPU time still counts memory stalls, so the ratio to copy stays a bandwidth
// comparison. Use it with --threads 1 for the cleanest figure.
export default async function ops(h) {
  const nat = h.native;
  if (typeof nat.add !== 'function') {
    h.note('elementwise ops are not in this addon build: suite skipped');
    return;
  }
  const cpuClock = process.env.RLHF_BENCH_CLOCK === 'cpu';
  if (cpuClock) h.note('ops: RLHF_BENCH_CLOCK=cpu: ours and copy in process CPU time; numpy skipped');
  const timed = (fn) =>
    cpuClock
      ? {
          async sample(reps) {
            const c0 = process.cpuUsage();
            for (let i = 0; i < reps; i++) fn();
            const d = process.cpuUsage(c0);
            return (d.user + d.system) / 1000;
          },
        }
      : fn;
  const n = 1 << 24; // 16 Mi floats: 64 MiB per array
  const [R, C] = [8192, 768]; // norm rows x cols (GPT-2 small, 8 sequences of 1024)
  const rc = R * C;
  const a = h.randomF32(n, 1), b = h.randomF32(n, 2), c = h.randomF32(n, 3), d = new Float32Array(n), e = new Float32Array(n);
  // copyF32 moving `bytes`: bytes/8 floats from one buffer into another (one read + one write each).
  const maxCopy = (28 * n) / 8;
  const cs = h.randomF32(maxCopy, 9), cd = new Float32Array(maxCopy);
  const copyPeer = (bytes) => {
    const m = Math.round(bytes / 8);
    return () => nat.copyF32(cd, cs, m);
  };
  const np = (setup, stmt) => (h.numpy && !cpuClock ? h.numpy.timer(`import numpy as np\n${setup}`, stmt) : null);
  const npVec = `_o_a = np.random.rand(${n}).astype(np.float32) - 0.5\n_o_b = np.random.rand(${n}).astype(np.float32) - 0.5\n_o_o = np.empty_like(_o_a)`;
  const run = async (kernel, shape, bytes, ours, numpy) => {
    const peers = { copy: timed(copyPeer(bytes)) };
    if (numpy) peers.numpy = await numpy;
    await h.compare({ kernel, shape, bytes, ours: timed(ours), peers });
  };

  // ---- elementwise (16 Mi floats) ----
  await run('add', `${n}`, 12 * n, () => nat.add(d, a, b, n), np(npVec, 'np.add(_o_a, _o_b, out=_o_o)'));
  if (!h.quick) {
    await run('mul', `${n}`, 12 * n, () => nat.mul(d, a, b, n));
    await run('scale', `${n}`, 8 * n, () => nat.scale(d, a, 0.5, n));
    await run('accumulate', `${n}`, 12 * n, () => nat.accumulate(d, a, n), np(npVec, 'np.add(_o_o, _o_a, out=_o_o)'));
    await run('mulBackward', `${n}`, 20 * n, () => nat.mulBackward(d, e, c, a, b, n));
    await run('sumSquares', `${n}`, 4 * n, () => nat.sumSquares(a, n), np(npVec, 'np.dot(_o_a, _o_a)'));
    await run('addBias', `${R}x${C}`, 8 * rc, () => nat.addBias(d, a, b, R, C));
    await run('addBiasBackward', `${R}x${C}`, 4 * rc, () => nat.addBiasBackward(e, a, R, C));
  }
  await run('geluForward', `${n}`, 8 * n, () => nat.geluForward(d, a, n),
    np(npVec, '_o_o[:] = 0.5 * _o_a * (1 + np.tanh(0.7978845608 * (_o_a + 0.044715 * _o_a ** 3)))'));
  await run('geluBackward', `${n}`, 12 * n, () => nat.geluBackward(d, b, a, n));
  if (!h.quick) {
    await run('siluForward', `${n}`, 8 * n, () => nat.siluForward(d, a, n));
    await run('swigluForward', `${n}`, 12 * n, () => nat.swigluForward(d, a, b, n),
      np(npVec, '_o_o[:] = _o_a / (1 + np.exp(-_o_a)) * _o_b'));
    await run('swigluBackward', `${n}`, 20 * n, () => nat.swigluBackward(d, e, c, a, b, n));
  }

  // ---- norms (8192 x 768) ----
  const w = h.randomF32(C, 4), bias = h.randomF32(C, 5), mean = new Float32Array(R), rstd = new Float32Array(R);
  const dw = new Float32Array(C), db = new Float32Array(C);
  const npNorm = `_o_x = np.random.rand(${R}, ${C}).astype(np.float32)\n_o_w = np.random.rand(${C}).astype(np.float32)\n_o_bb = np.random.rand(${C}).astype(np.float32)`;
  nat.layernormForward(d, mean, rstd, a, w, bias, R, C, 1e-5);
  await run('layernormForward', `${R}x${C}`, 8 * rc, () => nat.layernormForward(d, mean, rstd, a, w, bias, R, C, 1e-5),
    np(npNorm, '_m = _o_x.mean(-1, keepdims=True)\n_v = ((_o_x - _m) ** 2).mean(-1, keepdims=True)\n_y = (_o_x - _m) / np.sqrt(_v + 1e-5) * _o_w + _o_bb'));
  await run('layernormBackward', `${R}x${C}`, 12 * rc, () => nat.layernormBackward(e, dw, db, b, a, w, mean, rstd, R, C));
  nat.rmsnormForward(d, rstd, a, w, R, C, 1e-5);
  await run('rmsnormForward', `${R}x${C}`, 8 * rc, () => nat.rmsnormForward(d, rstd, a, w, R, C, 1e-5),
    np(npNorm, '_y = _o_x / np.sqrt((_o_x * _o_x).mean(-1, keepdims=True) + 1e-5) * _o_w'));
  await run('rmsnormBackward', `${R}x${C}`, 12 * rc, () => nat.rmsnormBackward(e, dw, b, a, w, rstd, R, C));

  // ---- softmax over a generation step's logits: 16 sequences x GPT-2's 50257 tokens, temperature 0.7 ----
  {
    const [Rs, Vs] = [16, 50257];
    const lse = new Float32Array(Rs);
    await run('softmaxForward', `${Rs}x${Vs}`, 8 * Rs * Vs, () => nat.softmaxForward(d, lse, a, Rs, Vs, 1 / 0.7),
      np(`_o_l = (np.random.rand(${Rs}, ${Vs}).astype(np.float32) - 0.5) * 20\n_o_p = np.empty_like(_o_l)`,
        '_s = _o_l * np.float32(1 / 0.7)\n_s -= _s.max(-1, keepdims=True)\nnp.exp(_s, out=_o_p)\nnp.divide(_o_p, _o_p.sum(-1, keepdims=True), out=_o_p)'));
  }

  // ---- embedding (8192 tokens of 768 over a 50257-row table), rope and permute (B8 T1024 H12 D64) ----
  const [N, V, D] = [8192, 50257, 768];
  const table = new Float32Array(V * D).fill(0.25), dtable = new Float32Array(V * D);
  const ids = new Int32Array(N);
  for (let i = 0; i < N; i++) ids[i] = (i * 7919) % V;
  await run('embeddingForward', `${N}x${D} of ${V}`, 8 * N * D, () => nat.embeddingForward(d, ids, table, N, V, D),
    np(`_o_t = np.random.rand(${V}, ${D}).astype(np.float32)\n_o_i = (np.arange(${N}) * 7919 % ${V})\n_o_e = np.empty((${N}, ${D}), np.float32)`,
      'np.take(_o_t, _o_i, axis=0, out=_o_e)'));
  await run('embeddingBackward', `${N}x${D} of ${V}`, 12 * N * D, () => nat.embeddingBackward(dtable, a, ids, N, V, D));
  const [B, T, H, Dh] = [8, 1024, 12, 64];
  const nq = B * T * H * Dh;
  const pos = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) pos[i] = i % T;
  const invFreq = Float32Array.from({ length: Dh / 2 }, (_, i) => 10000 ** (-2 * i / Dh));
  await run('ropeForward', `${B}x${T}x${H}x${Dh}`, 8 * nq, () => nat.ropeForward(d, a, pos, invFreq, B, T, H, Dh, 1, false));
  await run('permute0213', `${B}x${T}x${H}x${Dh}`, 8 * nq, () => nat.permute0213(d, a, B, T, H, Dh),
    np(`_o_q = np.random.rand(${B}, ${T}, ${H}, ${Dh}).astype(np.float32)\n_o_p = np.empty((${B}, ${H}, ${T}, ${Dh}), np.float32)`,
      'np.copyto(_o_p, _o_q.transpose(0, 2, 1, 3))'));

  // ---- AdamW (16 Mi parameters) ----
  const m = new Float32Array(n), v = new Float32Array(n), p = h.randomF32(n, 6);
  let step = 0;
  await run('adamwStep', `${n}`, 28 * n, () => nat.adamwStep(p, b, m, v, n, 1e-4, 0.9, 0.999, 1e-8, 0.01, ++step),
    np(`${npVec}\n_o_m = np.zeros_like(_o_a)\n_o_v = np.zeros_like(_o_a)\n_o_p = _o_a.copy()`,
      'np.multiply(_o_m, 0.9, out=_o_m); np.add(_o_m, 0.1 * _o_b, out=_o_m)\n' +
        'np.multiply(_o_v, 0.999, out=_o_v); np.add(_o_v, 0.001 * _o_b * _o_b, out=_o_v)\n' +
        'np.multiply(_o_p, 1 - 1e-6, out=_o_p); np.subtract(_o_p, 1e-4 * (_o_m / (np.sqrt(_o_v) + 1e-8)), out=_o_p)'));
}
