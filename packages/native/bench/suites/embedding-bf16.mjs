// The embedding forward on a frozen table kept in bf16 (embeddingForwardBf16: core's embedding after
// keepFrozenInBf16, e.g. LoRA's baseDtype 'bf16'), a GPT-2-sized table (50257 x 768), for a decode step (8 ids)
// and a batch of prompts (8192 ids), against:
//   rowByRow: what core did before, one castBf16ToF32 call per id on subarrays of the output and the table;
//   f32:      embeddingForward on the float32 table (twice the table bytes read);
//   copy:     copyF32 over the same bytes (2 read + 4 written per value: 6·n·D).
export default async function embeddingBf16(h) {
  const nat = h.native;
  if (typeof nat.embeddingForwardBf16 !== 'function') {
    h.note('embeddingForwardBf16 is not in this addon build: suite skipped');
    return;
  }
  const [V, D] = [50257, 768];
  const f32 = h.randomF32(V * D, 1);
  const t16 = new Uint16Array(V * D);
  nat.castF32ToBf16(t16, f32, V * D);
  const maxN = 8192;
  const out = new Float32Array(maxN * D);
  const cs = h.randomF32((6 * maxN * D) / 8, 2), cd = new Float32Array(cs.length);
  for (const n of h.quick ? [8] : [8, maxN]) {
    const ids = Int32Array.from({ length: n }, (_, i) => (i * 7919 + 13) % V);
    const rowByRow = () => {
      for (let i = 0; i < n; i++) nat.castBf16ToF32(out.subarray(i * D, (i + 1) * D), t16.subarray(ids[i] * D, (ids[i] + 1) * D), D);
    };
    const m = Math.round((6 * n * D) / 8);
    await h.compare({
      kernel: 'embeddingForwardBf16',
      shape: `${n}x${D} of ${V}`,
      bytes: 6 * n * D,
      ours: () => nat.embeddingForwardBf16(out, ids, t16, n, V, D),
      peers: { rowByRow, f32: () => nat.embeddingForward(out, ids, f32, n, V, D), copy: () => nat.copyF32(cd, cs, m) },
    });
  }
}
