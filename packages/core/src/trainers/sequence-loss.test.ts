import { describe, expect, it } from 'vitest';
import { gradcheck, randomTensor } from '../test/gradcheck';
import { noGrad } from '../tensor/autograd';
import { Tensor } from '../tensor/tensor';
import { dpoLoss, ktoLoss, orpoLoss, simpoLoss } from './losses';
import { StatefulRng } from './rng';
import { sequenceLoss, sequenceValues, type SequenceLossFn, type SequenceReduction, type SequenceRows } from './sequence-loss';
import { collateCompletions, completionLogprobs } from './sequences';
import { tinyGpt2 } from './test-utils';

/** B rows of width T (odd sizes), each with 1..T−1 log-prob positions starting anywhere. */
function randomRows(B: number, T: number, seed: number): SequenceRows {
  const rng = new StatefulRng(seed);
  const positions: number[] = [];
  for (let b = 0; b < B; b++) {
    const start = rng.nextInt(T - 1);
    const len = 1 + rng.nextInt(T - 1 - start);
    for (let t = start; t < start + len; t++) positions.push(b * T + t);
  }
  return { B, T, positions: Int32Array.from(positions) };
}

/** Log-probs in [−2.6, −0.1] (negative, as log-probs are; ORPO needs ā ≤ 0 under the finite-difference steps). */
function logprobTensor(n: number, seed: number): Tensor {
  const t = randomTensor([n], seed);
  const d = t.data;
  for (let i = 0; i < n; i++) d[i] = -0.1 - 1.25 * (d[i] + 1);
  return t;
}

const E = 3; // pairs: rows 0..E−1 chosen, E..2E−1 rejected
const refC = [-4.1, -3.3, -5.2];
const refR = [-3.9, -4.4, -4.8];
const cases: Array<[string, SequenceReduction, SequenceLossFn]> = [
  ['dpo sigmoid (cDPO)', 'sum', (v) => pairGrad(dpoLoss(v.subarray(0, E), v.subarray(E), refC, refR, { beta: 0.4, labelSmoothing: 0.1 }))],
  ['ipo', 'mean', (v) => pairGrad(dpoLoss(v.subarray(0, E), v.subarray(E), refC, refR, { beta: 0.4, lossType: 'ipo' }))],
  ['simpo', 'mean', (v) => pairGrad(simpoLoss(v.subarray(0, E), v.subarray(E), { beta: 2, gamma: 0.5 }))],
  ['orpo', 'mean', (v) => pairGrad(orpoLoss(v.subarray(0, E), v.subarray(E), { beta: 0.5 }))],
  ['kto', 'sum', (v) => {
    const r = ktoLoss(v, [...refC, ...refR], [true, false, true, false, false, true], 0.2, { beta: 0.3, desirableWeight: 1.2, undesirableWeight: 0.8 });
    return { loss: r.loss, dValues: r.dPolicy };
  }],
];

function pairGrad(r: { loss: number; dPolicyChosen: Float32Array; dPolicyRejected: Float32Array }) {
  const n = r.dPolicyChosen.length;
  const dValues = new Float32Array(2 * n);
  dValues.set(r.dPolicyChosen);
  dValues.set(r.dPolicyRejected, n);
  return { loss: r.loss, dValues };
}

describe('sequenceLoss', () => {
  for (const [name, reduction, fn] of cases) {
    it(`${name}: backward matches central differences (${reduction} over the masked positions)`, () => {
      const rows = randomRows(2 * E, 7, 31);
      const lp = logprobTensor(rows.positions.length, 32);
      gradcheck(() => sequenceLoss(lp, rows, reduction, fn, 0.75), [lp], { eps: 1e-2, tol: 2e-2, maxPerInput: 42 });
    });
  }

  it('forward: weight · loss(row values); backward: dy · weight · dValues[row] (/ length for mean) at each log-prob', () => {
    const rows = randomRows(4, 9, 33);
    const M = rows.positions.length;
    const lp = logprobTensor(M, 34);
    for (const reduction of ['sum', 'mean'] as const) {
      const coef = [0.5, -1.25, 2, 3];
      const values = sequenceValues(lp.data, rows, reduction);
      const lin: SequenceLossFn = (v) => ({ loss: v.reduce((s, x, b) => s + coef[b] * x, 0), dValues: coef });
      lp.grad = null;
      const y = sequenceLoss(lp, rows, reduction, lin, 0.5);
      expect(y.item()).toBeCloseTo(0.5 * values.reduce((s, x, b) => s + coef[b] * x, 0), 5);
      y.backward();
      const count = (b: number) => Array.from(rows.positions).filter((p) => Math.floor(p / 9) === b).length;
      for (let i = 0; i < M; i++) {
        const b = Math.floor(rows.positions[i] / 9);
        expect(lp.grad!.data[i]).toBeCloseTo((0.5 * coef[b]) / (reduction === 'mean' ? count(b) : 1), 6);
      }
      // the values: sums (or means) of each row's entries
      for (let b = 0; b < 4; b++) {
        let sum = 0;
        for (let i = 0; i < M; i++) if (Math.floor(rows.positions[i] / 9) === b) sum += lp.data[i];
        expect(values[b]).toBeCloseTo(reduction === 'mean' ? sum / count(b) : sum, 10);
      }
    }
  });

  it("gives the model the same gradients, bit for bit, as seeding the log-probs' backward with the per-token gradient (the DPO trainer before the op)", () => {
    const items = [
      { prompt: [1, 6, 2], completion: [6, 4, 7, 3] },
      { prompt: [1, 8, 9, 2], completion: [4, 3] },
      { prompt: [1, 6, 2], completion: [5, 3] },
      { prompt: [1, 8, 9, 2], completion: [5, 8, 10, 11, 3] },
    ];
    const batch = collateCompletions(items, 32);
    const w = 1 / 3;
    // main before the op: sums[b] += lp[i]; g[i] = dSeq / length (ipo), dSeq = ∂loss/∂value · w
    const loss = (v: Float64Array) => pairGrad(dpoLoss(v.subarray(0, 2), v.subarray(2), [-9, -7], [-8, -12], { beta: 0.3, lossType: 'ipo' }));
    const grads = (viaOp: boolean) => {
      const model = tinyGpt2(5);
      const { rows, logprobs } = completionLogprobs(model, batch);
      const layout = { B: batch.B, T: batch.T, positions: rows };
      if (viaOp) sequenceLoss(logprobs, layout, 'mean', loss, w).backward();
      else {
        const r = loss(sequenceValues(logprobs.data, layout, 'mean'));
        const g = new Float32Array(rows.length);
        for (let i = 0; i < rows.length; i++) {
          const b = Math.floor(rows[i] / batch.T);
          g[i] = (r.dValues[b] * w) / batch.completionLengths[b];
        }
        logprobs.backward(g);
      }
      return model.namedParameters().map(([n, p]) => [n, p.grad!.data] as const);
    };
    const a = grads(true);
    const b = grads(false);
    const differ = a.filter(([n, g], k) => b[k][0] !== n || g.some((x, i) => !Object.is(x, b[k][1][i]))).map(([n]) => n);
    expect(differ).toEqual([]);
    expect(a.every(([, g]) => g.some((x) => x !== 0))).toBe(true);
  });

  it('computes the loss without recording under noGrad', () => {
    const rows = randomRows(2, 5, 35);
    const lp = logprobTensor(rows.positions.length, 36);
    const y = noGrad(() => sequenceLoss(lp, rows, 'sum', (v) => ({ loss: v[0] - v[1], dValues: [1, -1] })));
    expect(y.node).toBeNull();
    const v = sequenceValues(lp.data, rows, 'sum');
    expect(y.item()).toBeCloseTo(v[0] - v[1], 5);
  });

  it('names bad arguments', () => {
    const rows = { B: 2, T: 5, positions: Int32Array.from([1, 2, 6]) };
    const lp = logprobTensor(3, 38);
    const ok: SequenceLossFn = () => ({ loss: 0, dValues: [0, 0] });
    expect(() => sequenceLoss(logprobTensor(4, 1), rows, 'sum', ok)).toThrow(/logprobs has 4 elements and positions 3/);
    expect(() => sequenceLoss(lp, { ...rows, positions: Int32Array.from([1, 1, 6]) }, 'sum', ok)).toThrow(/positions\[1\] = 1 is not an increasing position in \[0, B·T = 2·5\)/);
    expect(() => sequenceLoss(lp, { ...rows, positions: Int32Array.from([1, 2, 10]) }, 'sum', ok)).toThrow(/positions\[2\] = 10 is not an increasing position/);
    expect(() => sequenceLoss(lp, { ...rows, positions: [1, 2, 6] as unknown as Int32Array }, 'sum', ok)).toThrow(/positions must be an Int32Array/);
    expect(() => sequenceLoss(lp, rows, 'max' as SequenceReduction, ok)).toThrow(/reduction must be 'sum' or 'mean', got 'max'/);
    expect(() => sequenceLoss(lp, rows, 'sum', () => ({ loss: 0, dValues: [0] }))).toThrow(/the loss gave 1 gradients for 2 rows/);
    expect(() => sequenceLoss(lp, { ...rows, B: 3 }, 'sum', ok)).toThrow(/row 2 has no log-prob/);
    expect(() => sequenceLoss(lp, rows, 'sum', ok, Number.NaN)).toThrow(/weight must be finite/);
  });
});
