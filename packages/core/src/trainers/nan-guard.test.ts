import { describe, expect, it } from 'vitest';
import { allFinite, NanGuard, NonFiniteError } from './nan-guard';

describe('allFinite', () => {
  it('finds NaN and ±Infinity anywhere', () => {
    expect(allFinite(new Float32Array([1, -2, 0, 3e38]))).toBe(true);
    expect(allFinite(new Float32Array([1, Number.NaN]))).toBe(false);
    expect(allFinite([Number.NEGATIVE_INFINITY, 0])).toBe(false);
    expect(allFinite([])).toBe(true);
  });
});

describe('NanGuard', () => {
  it('passes finite steps, restores the last good state on a bad one, and stops after too many', () => {
    const param = new Float32Array([1, 2, 3]);
    const moment = new Float32Array([0.1, 0.1, 0.1]);
    const g = new NanGuard({ maxConsecutive: 3 });
    g.register([param, moment], 0);
    // a good step: applied, snapshot refreshed
    param[0] = 1.5;
    expect(g.check(1, { loss: 0.3, gradNorm: 2 })).toBe(true);
    g.applied(1);
    // a step that poisoned the buffers: restored to the state after step 1
    param[1] = Number.NaN;
    moment[2] = Number.POSITIVE_INFINITY;
    expect(g.check(2, { loss: Number.NaN, gradNorm: 1 })).toBe(false);
    expect([...param]).toEqual([1.5, 2, 3]);
    expect([...moment].map((x) => Math.fround(x))).toEqual([0.1, 0.1, 0.1].map(Math.fround));
    expect(g.skipped).toBe(1);
    expect(g.check(3, { loss: 1, gradNorm: Number.POSITIVE_INFINITY })).toBe(false);
    expect(() => g.check(4, { loss: Number.NaN })).toThrow(NonFiniteError);
    expect(() => g.check(5, { loss: Number.NaN })).toThrow(/loss=NaN for 4 steps in a row; restored the state of step 1/);
  });

  it('a good step between bad ones resets the count; snapshotEvery delays the snapshot', () => {
    const p = new Float32Array([0]);
    const g = new NanGuard({ maxConsecutive: 2, snapshotEvery: 2 });
    g.register([p]);
    p[0] = 1;
    expect(g.check(1, { loss: 1 })).toBe(true);
    g.applied(1); // 1 of 2 good steps: no snapshot yet
    expect(g.check(2, { loss: Number.NaN })).toBe(false);
    expect(p[0]).toBe(0); // back to the registered state
    expect(g.check(3, { loss: 1 })).toBe(true);
    expect(g.check(4, { loss: Number.NaN })).toBe(false); // count was reset, no throw
  });

  it('snapshotEvery 0 keeps no copy: a bad step is skipped, nothing restored, and the stop says so', () => {
    const p = new Float32Array([0]);
    const g = new NanGuard({ maxConsecutive: 2, snapshotEvery: 0 });
    g.register([p]);
    expect(g.keepsSnapshot).toBe(false);
    p[0] = 1;
    expect(g.check(1, { loss: 1 })).toBe(true);
    g.applied(1);
    p[0] = 2;
    expect(g.check(2, { loss: Number.NaN })).toBe(false);
    expect(p[0]).toBe(2); // not restored: there is nothing to restore from
    expect(() => g.check(3, { loss: Number.NaN })).toThrow(/2 steps in a row; stopped \(no in-memory snapshot is kept: nanGuardSnapshotSteps 0; resume from the last checkpoint\)/);
  });
});
