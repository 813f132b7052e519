import { Worker } from 'node:worker_threads';

// The worker: while ctl[0] is 1, fill the indices with 0 (valid), spin, fill them with `bad`, spin, ...
const SCRIBBLER = `
const { workerData: w } = require('node:worker_threads');
const a = new Int32Array(w.sab), c = new Int32Array(w.ctl);
let x = 0;
Atomics.store(c, 1, 1);
Atomics.notify(c, 1);
while (Atomics.load(c, 0) === 1) {
  a.fill(0);
  for (let i = 0; i < 2000; i++) x += i;
  a.fill(w.bad);
  for (let i = 0; i < 2000; i++) x += i;
}
Atomics.store(c, 1, 2);
`;

/**
 * Calls `call` over and over for `ms` milliseconds while a Worker rewrites `ids` (an Int32Array over a
 * SharedArrayBuffer) between all zeros and all `bad`. Each call must return or throw a RangeError (counted);
 * anything else is rethrown. A binding that checks the indices and then lets its kernel read the shared
 * memory again would read or write out of bounds when a value changes in between: a crash of this process,
 * which fails the test file (the kernels read the indices many times during one call, so it comes quickly).
 */
export async function raceIndices(
  ids: Int32Array,
  bad: number,
  ms: number,
  call: () => unknown,
): Promise<{ returned: number; rangeErrors: number }> {
  if (!(ids.buffer instanceof SharedArrayBuffer)) throw new Error('raceIndices: ids must be on a SharedArrayBuffer');
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  ctl[0] = 1;
  const worker = new Worker(SCRIBBLER, { eval: true, workerData: { sab: ids.buffer, ctl: ctl.buffer, bad } });
  let returned = 0;
  let rangeErrors = 0;
  try {
    Atomics.wait(ctl, 1, 0, 10_000); // until the worker runs
    const end = performance.now() + ms;
    while (performance.now() < end) {
      try {
        call();
        returned++;
      } catch (e) {
        if ((e as Error).name !== 'RangeError') throw e;
        rangeErrors++;
      }
    }
  } finally {
    Atomics.store(ctl, 0, 0);
    await worker.terminate();
  }
  return { returned, rangeErrors };
}

/** An Int32Array on a SharedArrayBuffer holding a copy of `values`. */
export function sharedInt32(values: ArrayLike<number>): Int32Array {
  const a = new Int32Array(new SharedArrayBuffer(values.length * 4));
  a.set(Array.from(values));
  return a;
}
