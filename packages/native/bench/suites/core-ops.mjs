// The kernels that replaced core's TypeScript loops (sub, sumForward/Backward, logSigmoidForward/Backward,
// sliceColumns/Backward = splitLast, gatherRows/Backward, fill), each against the loop core ran before (peer
// `ts-loop`, the same arithmetic in plain TypeScript/JavaScript) in the same race; ratio = loopMs / oursMs
// (> 1: the kernel is faster). Two regimes: large arrays (4 Mi floats, or matrices of that order), where the
// kernels should run near copy bandwidth (the % copy column), and loss-sized ones (64 elements), where a
// native call's fixed cost shows: what a tiny op pays for leaving JavaScript.
//
// Bytes counted (4 a float): sub 12·n, sumForward 4·n, sumBackward 4·n, logSigmoid forward 8·n, backward
// 12·n, sliceColumns / backward 8·rows·cols, gatherRows 8·m·cols, gatherRowsBackward 4·n·cols + 12·m·cols
// (dx zeroed, dy read, picked rows of dx read and written), fill 4·n.
export default async function coreOps(h) {
  const nat = h.native;
  if (typeof nat.sumForward !== 'function') {
    h.note('the core-ops kernels are not in this addon build: suite skipped');
    return;
  }
  const run = (kernel, shape, bytes, ours, loop) => h.compare({ kernel, shape, bytes, ours, peers: { 'ts-loop': loop } });

  for (const n of h.quick ? [1 << 22] : [1 << 22, 64]) {
    const a = h.randomF32(n, 1), b = h.randomF32(n, 2), d = new Float32Array(n), one = new Float32Array(1);
    const x40 = a.map((v) => 40 * v);
    await run('sub', `${n}`, 12 * n, () => nat.sub(d, a, b, n), () => {
      for (let i = 0; i < n; i++) d[i] = a[i] - b[i];
    });
    await run('sumForward', `${n}`, 4 * n, () => nat.sumForward(one, a, n), () => {
      let s = 0;
      for (let i = 0; i < n; i++) s += a[i];
      one[0] = s;
    });
    if (h.quick) continue;
    await run('sumBackward', `${n}`, 4 * n, () => nat.sumBackward(d, b, n), () => d.fill(b[0]));
    await run('logSigmoidForward', `${n}`, 8 * n, () => nat.logSigmoidForward(d, x40, n), () => {
      for (let i = 0; i < n; i++) {
        const v = x40[i];
        d[i] = v >= 0 ? -Math.log1p(Math.exp(-v)) : v - Math.log1p(Math.exp(v));
      }
    });
    await run('logSigmoidBackward', `${n}`, 12 * n, () => nat.logSigmoidBackward(d, b, x40, n), () => {
      for (let i = 0; i < n; i++) d[i] = b[i] / (1 + Math.exp(x40[i]));
    });
    await run('fill', `${n}`, 4 * n, () => nat.fill(d, 0.5, n), () => d.fill(0.5));
  }

  // splitLast's piece: the middle third of a (rows, 3·cols) q|k|v projection.
  for (const [rows, cols] of h.quick ? [[4096, 768]] : [[4096, 768], [8, 64]]) {
    const width = 3 * cols, offset = cols;
    const x = h.randomF32(rows * width, 3), out = new Float32Array(rows * cols), dx = new Float32Array(rows * width);
    await run('sliceColumns', `${rows}x${width}[${offset}:+${cols}]`, 8 * rows * cols, () => nat.sliceColumns(out, x, rows, width, offset, cols), () => {
      for (let r = 0; r < rows; r++) out.set(x.subarray(r * width + offset, r * width + offset + cols), r * cols);
    });
    if (h.quick) continue;
    await run('sliceColumnsBackward', `${rows}x${width}[${offset}:+${cols}]`, 8 * rows * cols, () => nat.sliceColumnsBackward(dx, out, rows, width, offset, cols), () => {
      for (let r = 0; r < rows; r++) dx.set(out.subarray(r * cols, r * cols + cols), r * width + offset);
    });
  }

  // gatherRows: m rows picked (with repeats) from n.
  for (const [m, n, cols] of h.quick ? [[4096, 8192, 768]] : [[4096, 8192, 768], [8, 512, 64]]) {
    const x = h.randomF32(n * cols, 4), out = new Float32Array(m * cols), dx = new Float32Array(n * cols);
    const index = Int32Array.from(h.randomF32(m, 5), (v) => Math.floor((v + 1) * 0.5 * n) % n);
    await run('gatherRows', `${m} of ${n}x${cols}`, 8 * m * cols, () => nat.gatherRows(out, x, index, m, n, cols), () => {
      for (let i = 0; i < m; i++) {
        const r = index[i];
        if (!(r >= 0 && r < n)) throw new RangeError(`rows[${i}] = ${r} is outside [0, ${n})`);
        out.set(x.subarray(r * cols, r * cols + cols), i * cols);
      }
    });
    if (h.quick) continue;
    await run('gatherRowsBackward', `${m} of ${n}x${cols}`, 4 * n * cols + 12 * m * cols, () => nat.gatherRowsBackward(dx, out, index, m, n, cols), () => {
      dx.fill(0);
      for (let i = 0; i < m; i++) for (let c = 0; c < cols; c++) dx[index[i] * cols + c] += out[i * cols + c];
    });
  }
}
