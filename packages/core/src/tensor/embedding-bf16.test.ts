/**
 * The embedding of a frozen table kept in bf16 (keepFrozenInBf16): one embeddingForwardBf16 kernel call for all
 * ids, on the cpu and on the emulated device, with ids as an Int32Array (uploaded once on a device, counted as the
 * op's input) or as an i32 tensor on the table's device (nothing moves). Its rows must be the float32 table's
 * embedding of the widened table, bit for bit (what the row-by-row castBf16ToF32 widening gave before).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { kernelsFor } from '../backend/backends';
import { resetTransferCounts, transferCounts } from '../backend/device';
import { emulatedStats } from '../backend/emulated';
import { Rng } from '../util/rng';
import * as ops from './ops';
import { Tensor } from './tensor';

const V = 23, C = 37; // C not a multiple of the 16-float vector steps

function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}
function hostValues(t: Tensor): Float32Array {
  return t.device === 'cpu' ? t.data.slice() : t.to('cpu').data;
}
function randomTable(seed: number): Tensor {
  const r = new Rng(seed);
  const vals = Float32Array.from({ length: V * C }, () => r.normal() * 3);
  return Tensor.fromF32(vals, [V, C]).toBf16();
}
function randomIds(n: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r.next() * V));
}

afterEach(() => vi.restoreAllMocks());

describe.each(['cpu', 'emulated'] as const)('embedding with a bf16 table on %s', (device) => {
  const table = randomTable(1);
  const wide = table.toF32(); // the widened table on the cpu: the float32 op on it is the expected result
  const onDevice = table.to(device);
  expect(onDevice.dtype).toBe('bf16');

  it.each([1, 6, 41])('equals the f32 table\'s embedding of the widened table bit for bit, ids as an Int32Array and as an i32 tensor (n=%i)', (n) => {
    const ids = randomIds(n, n);
    const want = ops.embedding(ids, wide).data;
    const fromArray = ops.embedding(ids, onDevice, [n, 1, C]);
    expect(fromArray.shape).toEqual([n, 1, C]);
    expect(fromArray.device).toBe(device);
    expect(bits(hostValues(fromArray))).toEqual(bits(want));
    const fromTensor = ops.embedding(Tensor.fromI32(ids).to(device), onDevice);
    expect(bits(hostValues(fromTensor))).toEqual(bits(want));
    // not vacuous: the rows are not all equal and the values are not the unrounded ones
    expect(new Set(want).size).toBeGreaterThan(1);
  });

  it('makes one kernel call for all ids (no row-by-row cast)', () => {
    const k = kernelsFor(device) as unknown as Record<string, (...a: unknown[]) => unknown>;
    const one = vi.spyOn(k, 'embeddingForwardBf16');
    const cast = vi.spyOn(k, 'castBf16ToF32');
    ops.embedding(randomIds(17, 3), onDevice);
    ops.embedding(Tensor.fromI32(randomIds(9, 4)).to(device), onDevice);
    expect(one).toHaveBeenCalledTimes(2);
    expect(cast).not.toHaveBeenCalled();
  });

  it('a bad id is a RangeError naming its index, as ids array and as tensor', () => {
    const bad = Int32Array.from([0, 5, V, 2]);
    expect(() => ops.embedding(bad, onDevice)).toThrow(/ids\[2\] = 23 is outside \[0, vocab = 23\)/);
    expect(() => ops.embedding(Tensor.fromI32(bad).to(device), onDevice)).toThrow(/ids\[2\] = 23 is outside \[0, vocab = 23\)/);
    expect(() => ops.embedding(Int32Array.from([-1]), onDevice)).toThrow(/ids\[0\] = -1 is outside/);
  });
});

describe('embedding with a bf16 table: what moves between host and the emulated device', () => {
  const table = randomTable(2).to('emulated');

  it('ids as an Int32Array: one upload of the ids (the op\'s input), freed with the op; as a tensor on the device: nothing', () => {
    const n = 29;
    const ids = randomIds(n, 5);
    const idsOnDevice = Tensor.fromI32(ids).to('emulated');
    const live = emulatedStats().live;
    resetTransferCounts();
    const y = ops.embedding(ids, table);
    expect(transferCounts(true)).toEqual({ 'emulated upload input': { count: 1, bytes: 4 * n } });
    expect(emulatedStats().live).toBe(live + 1); // the output only: the ids' upload was given back
    const z = ops.embedding(idsOnDevice, table);
    expect(transferCounts(true)).toEqual({});
    expect(bits(hostValues(z))).toEqual(bits(hostValues(y)));
  });

  it('under a recorded graph (a f32 input needing grad beside it) backward runs and frees the upload', () => {
    const ids = randomIds(7, 6);
    const x = Tensor.fromF32(Float32Array.from({ length: 7 * C }, (_, i) => Math.sin(i)), [7, C]).to('emulated');
    x.requiresGrad = true;
    const live = emulatedStats().live;
    resetTransferCounts();
    const y = ops.sum(ops.mul(ops.embedding(ids, table), x));
    y.backward();
    expect(transferCounts(true)['emulated upload input'].count).toBe(1);
    const g = x.grad!.to('cpu').data;
    const want = ops.embedding(ids, randomTable(2).toF32()).data;
    expect(bits(g)).toEqual(bits(want)); // d(Σ e⊙x)/dx = e
    // left: the root, x's gradient, and the frozen table's rows (not recorded: nothing requires their grad; left
    // to tidy() or the GC, as on the cpu). The ids' upload is not among them.
    expect(emulatedStats().live - live).toBe(3);
  });
});
