// Fused losses (ops/cross_entropy, ops/ppo) against numpy and against copyF32 over the same bytes,
// interleaved in the same run.
//
// Bytes counted: cross-entropy forward+backward reads the logits once and writes the gradient once (8·N·V);
// the forward and the token log-probs read the logits once (4·N·V). The `copyF32` peer copies the same number
// of bytes (N·V floats for a forward+backward, N·V/2 for a read-only pass), so its ratio is the fraction of
// copy bandwidth reached. numpy computes the same thing the plain way: log-softmax (max, exp, sum, log), gather
// of the target, and for the backward softmax − onehot scaled by 1/N.
// PPO (when this build has it) reads 4 arrays of n floats and writes 1 (policy), likewise for the value loss;
// the GRPO family's policy-gradient loss against the TypeScript loop it replaced.
export default async function losses(h) {
  const n = h.native;
  if (typeof n.crossEntropyForwardBackward !== 'function') {
    h.note('crossEntropyForwardBackward is not in this addon build: suite skipped');
    return;
  }
  const shapes = h.quick ? [[1024, 32000]] : [[4096, 32000], [1024, 50257], [8192, 1000]];
  for (const [N, V] of shapes) {
    const NV = N * V;
    const logits = h.randomF32(NV, 11);
    for (let i = 0; i < NV; i++) logits[i] *= 4;
    const dlogits = new Float32Array(NV);
    const targets = new Int32Array(N);
    for (let r = 0; r < N; r++) targets[r] = (r * 7919) % V;
    const losses = new Float32Array(N), lse = new Float32Array(N), ent = new Float32Array(N);
    const copySrc = logits, copyDst = dlogits;

    const np = (stmt) =>
      h.numpy.timer(
        `import numpy as np\n` +
          `_ce_r = np.random.default_rng(5)\n` +
          `_ce_x = (_ce_r.standard_normal((${N}, ${V}), dtype=np.float32) * 4)\n` +
          `_ce_t = (np.arange(${N}) * 7919 % ${V}).astype(np.int64)\n_ce_i = np.arange(${N})`,
        stmt,
      );
    const npForward =
      `_m = _ce_x.max(-1, keepdims=True)\n_lp = _ce_x - _m\n` +
      `_lp -= np.log(np.exp(_lp).sum(-1, keepdims=True))\n` +
      `_loss = -np.take_along_axis(_lp, _ce_t[:, None], 1).mean()`;

    // forward + backward (the training step's loss)
    const peersFB = { copyF32: () => n.copyF32(copyDst, copySrc, NV) };
    if (h.numpy) peersFB.numpy = await np(`${npForward}\n_g = np.exp(_lp)\n_g[_ce_i, _ce_t] -= 1\n_g *= np.float32(1 / ${N})`);
    await h.compare({
      kernel: 'crossEntropyForwardBackward', shape: `${N}x${V}`, bytes: 8 * NV,
      ours: () => n.crossEntropyForwardBackward(losses, dlogits, logits, targets, N, V, -100, 1),
      peers: peersFB,
    });

    // forward only, and token log-probs with entropy (PPO / DPO / reward scoring): one read of the logits
    const peersF = { copyF32: () => n.copyF32(copyDst, copySrc, NV >> 1) };
    if (h.numpy) peersF.numpy = await np(npForward);
    await h.compare({
      kernel: 'crossEntropyForward', shape: `${N}x${V}`, bytes: 4 * NV,
      ours: () => n.crossEntropyForward(losses, lse, logits, targets, N, V, -100, 1),
      peers: peersF,
    });
    const peersT = { copyF32: () => n.copyF32(copyDst, copySrc, NV >> 1) };
    if (h.numpy) {
      peersT.numpy = await np(
        `${npForward}\n_p = np.exp(_lp)\n_ent = -(_p * _lp).sum(-1)`,
      );
    }
    await h.compare({
      kernel: 'tokenLogprobs+entropy', shape: `${N}x${V}`, bytes: 4 * NV,
      ours: () => n.tokenLogprobs(losses, ent, lse, logits, targets, N, V, 1),
      peers: peersT,
    });
  }

  if (typeof n.ppoPolicyLoss !== 'function') {
    h.note('ppoPolicyLoss is not in this addon build: PPO rows skipped');
    return;
  }
  for (const tokens of h.quick ? [1 << 20] : [1 << 16, 1 << 22]) {
    const logp = h.randomF32(tokens, 21), old = h.randomF32(tokens, 22), adv = h.randomF32(tokens, 23);
    for (let i = 0; i < tokens; i++) old[i] = logp[i] + old[i] * 0.3;
    const mask = h.randomF32(tokens, 24).map((x) => (x > -0.8 ? 1 : 0));
    const dlogp = new Float32Array(tokens), stats = new Float32Array(16);
    const copyDst = new Float32Array(tokens * 5 >> 1);
    const copySrc = h.randomF32(tokens * 5 >> 1, 25);
    const peers = { copyF32: () => n.copyF32(copyDst, copySrc, tokens * 5 >> 1) };
    if (h.numpy) {
      peers.numpy = await h.numpy.timer(
        `import numpy as np\n_pp_r = np.random.default_rng(3)\n` +
          `_pp_lp, _pp_old, _pp_a = (_pp_r.standard_normal(${tokens}, dtype=np.float32) for _ in range(3))\n` +
          `_pp_m = (_pp_r.random(${tokens}) > 0.1).astype(np.float32)`,
        `_lr = np.clip(_pp_lp - _pp_old, -20, 20)\n_ra = np.exp(_lr)\n_l1 = -_pp_a * _ra\n` +
          `_l2 = -_pp_a * np.clip(_ra, 0.8, 1.2)\n_l = np.maximum(_l1, _l2)\n_c = _pp_m.sum()\n` +
          `_loss = (_l * _pp_m).sum() / _c\n_cf = ((_l2 > _l1) * _pp_m).sum() / _c\n` +
          `_k1 = (-_lr * _pp_m).sum() / _c\n_k3 = ((_ra - 1 - _lr) * _pp_m).sum() / _c\n` +
          `_g = np.where(_l1 >= _l2, -_pp_a * _ra, 0) * _pp_m / _c`,
      );
    }
    await h.compare({
      kernel: 'ppoPolicyLoss', shape: `${tokens}`, bytes: 20 * tokens,
      ours: () => n.ppoPolicyLoss(dlogp, stats, logp, old, adv, mask, tokens, 0.2, 0, 1),
      peers,
    });
    const vpeers = { copyF32: peers.copyF32 };
    await h.compare({
      kernel: 'ppoValueLoss', shape: `${tokens}`, bytes: 20 * tokens,
      ours: () => n.ppoValueLoss(dlogp, stats, logp, old, adv, mask, tokens, 0.2, 1),
      peers: vpeers,
    });
  }

  // The GRPO family's policy-gradient loss (token-level weights, clip-higher, β·k3, sequence means) against its
  // TypeScript reference, the loop core ran before the kernel: reads 5 arrays of rows·Tn floats, writes 1.
  if (typeof n.policyGradientLoss !== 'function') {
    h.note('policyGradientLoss is not in this addon build: its rows skipped');
    return;
  }
  const { policyGradientLossRef } = await import('../../dist/reference/index.js');
  for (const [rows, Tn] of h.quick ? [[64, 1024]] : [[64, 512], [256, 2048]]) {
    const N = rows * Tn;
    const logp = h.randomF32(N, 31).map((x) => -Math.abs(x)), old = h.randomF32(N, 32), ref = h.randomF32(N, 33), adv = h.randomF32(N, 34);
    for (let i = 0; i < N; i++) (old[i] = logp[i] + old[i] * 0.3), (ref[i] = logp[i] + ref[i] * 0.3);
    const mask = new Float32Array(N).map((_, i) => ((i % Tn) < Tn - ((Math.floor(i / Tn) * 37) % (Tn >> 1)) ? 1 : 0));
    const dlogp = new Float32Array(N), stats = new Float32Array(6);
    const args = [logp, old, ref, adv, mask, rows, Tn, 0, 0, rows, 0.04, 0.2, 0.28];
    const copyDst = new Float32Array(N * 3), copySrc = h.randomF32(N * 3, 35);
    await h.compare({
      kernel: 'policyGradientLoss', shape: `${rows}x${Tn}`, bytes: 24 * N,
      ours: () => n.policyGradientLoss(dlogp, stats, ...args),
      peers: { typescript: () => policyGradientLossRef(dlogp, stats, ...args), copyF32: () => n.copyF32(copyDst, copySrc, N * 3) },
    });
  }
}
