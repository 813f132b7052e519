/**
 * The MPI scenarios of mpi.test.ts, run under `mpirun -n 2` (bundled with esbuild): each prints one JSON line
 * per rank on stdout ({"rank", ...results}) and lets the test judge them.
 *
 *   ops       every collective, its argument checks and a queued all-reduce overlapping JS work
 *   mismatch  rank 1 reduces a longer buffer than rank 0: both get an error naming the other rank's call
 *   timeout   rank 1 computes for 20 s while rank 0 waits (timeout 2 s): rank 0's error says where rank 1 is
 *   throw     rank 1 throws after its first collective: the job ends at once, rank 0 never finishes its barrier
 */
import { initMpi } from './index';

const scenario = process.argv[2];
const timeoutSeconds = scenario === 'timeout' ? 2 : 60;
const m = initMpi({ timeoutSeconds });
const { rank, size } = m;
const out: Record<string, unknown> = { rank, size, scenario };
const errorOf = (f: () => unknown): string => {
  try {
    f();
    return '';
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
};

if (scenario === 'ops') {
  // sum and average, float32 and float64, with a byteOffset and an odd length
  const backing = new Float32Array(1 + 37);
  const x = backing.subarray(1);
  for (let i = 0; i < x.length; i++) x[i] = (rank + 1) * (i + 0.25);
  m.allReduce(x, 'sum');
  out.sum = Array.from(x.subarray(0, 3));
  out.untouched = backing[0];
  const y = new Float64Array([rank + 1, 1 / 3]);
  m.allReduce(y, 'avg');
  out.avg = Array.from(y);
  // queued: copied at the start, JS keeps going, the result lands in other arrays
  const a = new Float32Array(1000).fill(rank + 1);
  const b = new Float32Array(5).fill(10 * (rank + 1));
  const id = m.allReduceStart([a, b], 'sum');
  a.fill(-1); // must not change what is reduced
  let spins = 0;
  while (!m.allReduceTest(id) && spins < 1e7) spins++;
  const oa = new Float32Array(1000), ob = new Float32Array(5);
  m.allReduceWait(id, [oa, ob]);
  out.queued = [oa[0], oa[999], ob[4]];
  out.waitAgain = errorOf(() => m.allReduceWait(id));
  // broadcast of bytes and floats from the last rank
  const bytes = new Uint8Array(130).fill(rank === size - 1 ? 7 : 0);
  m.broadcast(bytes, size - 1);
  out.bcast = [bytes[0], bytes[129]];
  // all-gather of metadata
  out.gather = Array.from(m.allGather(new Float64Array([rank, rank * 10])));
  out.gatherI32 = Array.from(m.allGather(new Int32Array([rank + 100])));
  m.barrier();
  // argument checks: all before anything is queued, so the ranks stay in step
  out.errors = [
    errorOf(() => m.allReduce(new Int8Array(3) as unknown as Float32Array, 'sum')),
    errorOf(() => m.allReduce(new Float32Array(3), 'max' as 'sum')),
    errorOf(() => m.allReduce([1, 2] as unknown as Float32Array, 'sum')),
    errorOf(() => m.broadcast(new Float32Array(2), size)),
    errorOf(() => m.broadcast(new Float32Array(2), 0.5)),
    errorOf(() => m.allReduceStart([new Float32Array(2), new Float64Array(2) as unknown as Float32Array], 'sum')),
    errorOf(() => m.allReduceWait(12345)),
    errorOf(() => m.allGather(new Float64Array(2_000_000))),
    errorOf(() => m.setTimeout(-1)),
  ];
  // still in step after the refused calls
  const z = new Float32Array([1]);
  m.allReduce(z, 'sum');
  out.after = z[0];
} else if (scenario === 'mismatch') {
  out.error = errorOf(() => m.allReduce(new Float32Array(rank === 1 ? 100_000 : 3), 'sum'));
  out.then = errorOf(() => m.barrier());
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0); // finalize refuses a broken communicator: leave without it (the test reads the errors only)
} else if (scenario === 'timeout') {
  if (rank === 1) {
    const t0 = Date.now();
    while (Date.now() - t0 < 20_000); // computing, never reaching the collective
  } else {
    const t0 = Date.now();
    out.error = errorOf(() => m.allReduce(new Float32Array(4), 'sum'));
    out.seconds = (Date.now() - t0) / 1000;
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.exitCode = 3; // the exit hook aborts the job: rank 1 is ended too
  }
} else if (scenario === 'throw') {
  m.barrier();
  if (rank === 1) throw new Error('rank 1 fails on purpose');
  m.barrier(); // never completes: rank 1 is gone
  out.finished = true;
}
if (scenario !== 'timeout' || rank !== 0) process.stdout.write(`${JSON.stringify(out)}\n`);
