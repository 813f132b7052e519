/**
 * Data-parallel benchmarks (not tests: nothing here fails on a timing). Run by data-parallel.mjs under mpirun.
 *
 * 1. all-reduce: MPI all-reduce (sum, float32, in place, through rlhf_mpi.node's communication thread) from 64 KiB
 *    to 64 MiB; median time, algorithm bandwidth (bytes / time) and bus bandwidth (2(N−1)/N · bytes / time, the
 *    figure nccl-tests reports: what each rank's link carries in a ring). The peer, interleaved: copyF32 of the
 *    same bytes on every rank at once (memory bandwidth under the same load; read + write counted).
 * 2. overlap: training steps of a GPT (forward + backward + gradient sync, no optimizer) in three modes,
 *    interleaved: compute only (no sync), sync after the backward (GradientSync overlap off), sync overlapping the
 *    backward (buckets start as their gradients complete). Exposed communication = step − compute; the overlap
 *    hides 1 − exposed(overlap) / exposed(after).
 * 3. step: the time of one global step (the same global batch) — data-parallel.mjs launches this once on 1 rank
 *    and once on N ranks and prints the speed-up.
 */
import { performance } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import * as nativeOps from '@rlhf/native';
import { worldCollective } from '../src/distributed/collective';
import { GradientSync } from '../src/distributed/grad-sync';
import { GPT2 } from '../src/model/gpt2';
import { crossEntropy } from '../src/tensor/ops';
import { Rng } from '../src/util/rng';
import { median } from './machine';

function opt(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
}

export async function main(argv: string[]): Promise<void> {
  const world = worldCollective();
  const N = world.size;
  const quick = argv.includes('--quick');
  const only = opt(argv, 'only', 'allreduce,overlap,step').split(',');
  const rows: Record<string, unknown>[] = [];
  const say = (s: string) => world.rank === 0 && process.stdout.write(`${s}\n`);
  const rng = new Rng(world.rank + 1);

  if (only.includes('allreduce') && N > 1) {
    say(`all-reduce (sum, float32), ${N} ranks; peer: copyF32 of the same bytes on every rank at once`);
    say('bytes        ms      algBW GB/s  busBW GB/s  copy GB/s  bus/copy');
    for (const mib of quick ? [0.0625, 1, 16] : [0.0625, 0.25, 1, 4, 16, 64]) {
      const n = Math.round((mib * (1 << 20)) / 4);
      const buf = Float32Array.from({ length: n }, () => rng.next());
      const dst = new Float32Array(n);
      const reps = mib >= 16 ? 5 : 15;
      const tr: number[] = [];
      const tc: number[] = [];
      for (let r = 0; r < reps + 2; r++) {
        world.barrier();
        let t0 = performance.now();
        world.allReduce(buf, 'sum');
        const a = performance.now() - t0;
        world.barrier();
        t0 = performance.now();
        nativeOps.copyF32(dst, buf, n);
        const c = performance.now() - t0;
        if (r >= 2) (tr.push(a), tc.push(c));
      }
      // every rank's median: the collective is as slow as its slowest rank
      const all = world.allGather(new Float64Array([median(tr), median(tc)]));
      const ms = Math.max(...Array.from({ length: N }, (_, r) => all[2 * r]));
      const copyMs = Math.max(...Array.from({ length: N }, (_, r) => all[2 * r + 1]));
      const bytes = 4 * n;
      const alg = bytes / ms / 1e6;
      const bus = ((2 * (N - 1)) / N) * alg;
      const copy = (2 * bytes) / copyMs / 1e6;
      rows.push({ suite: 'data-parallel', kernel: 'allreduce', ranks: N, bytes, ms, algGbps: alg, busGbps: bus, copyGbps: copy, ratio: bus / copy });
      say(`${String(bytes).padEnd(12)} ${ms.toFixed(3).padStart(7)} ${alg.toFixed(2).padStart(11)} ${bus.toFixed(2).padStart(11)} ${copy.toFixed(2).padStart(10)} ${(bus / copy).toFixed(3).padStart(9)}`);
    }
  }

  // the model of 2 and 3: nanoGPT's Shakespeare-char shape, narrower (a step of a few hundred ms on one core)
  const L = Number(opt(argv, 'layers', '4'));
  const C = Number(opt(argv, 'width', '256'));
  const T = Number(opt(argv, 'seq', '128'));
  const globalB = Number(opt(argv, 'global-batch', '4'));
  const model = new GPT2({ vocabSize: 65, nPositions: T, nEmbd: C, nLayer: L, nHead: 4 }, { seed: 1 });
  const params = model.namedParameters();
  const gradBytes = 4 * params.reduce((s, [, p]) => s + p.size, 0);
  const B = globalB / N;
  if (!Number.isInteger(B)) throw new Error(`--global-batch ${globalB} does not divide among ${N} ranks`);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(65));
  const targets = Int32Array.from({ length: B * T }, () => rng.int(65));
  const zero = () => {
    for (const [, p] of params) p.grad = null;
  };
  const step = (sync: GradientSync | null) => {
    zero();
    sync?.begin();
    const h = model.forward({ ids, B, T }); // (B·T, C)
    const loss = crossEntropy(model.logits(h), targets); // mean over B·T
    sync?.arm();
    loss.backward();
    sync?.finish();
  };

  if (only.includes('overlap') && N > 1) {
    const after = new GradientSync(world, params, { overlap: false });
    const during = new GradientSync(world, params, { overlap: true });
    const modes: Array<[string, GradientSync | null]> = [['compute', null], ['after', after], ['overlap', during]];
    const times = new Map<string, number[]>(modes.map(([m]) => [m, []]));
    let started = 0;
    const rounds = quick ? 4 : 10;
    for (let r = 0; r < rounds + 1; r++) {
      for (const [m, s] of modes) {
        world.barrier();
        const t0 = performance.now();
        step(s);
        world.barrier(); // the step ends when the slowest rank is done
        if (r > 0) times.get(m)!.push(performance.now() - t0);
        if (m === 'overlap' && r > 0) started += during.lastStep.startedInBackward;
      }
    }
    const med = Object.fromEntries([...times].map(([m, t]) => [m, median(t)]));
    const exposedAfter = med.after - med.compute;
    const exposedOverlap = med.overlap - med.compute;
    const hidden = exposedAfter > 0 ? 1 - exposedOverlap / exposedAfter : NaN;
    rows.push({ suite: 'data-parallel', kernel: 'overlap', ranks: N, shape: `L${L} C${C} T${T} B${B}/rank`, gradBytes, buckets: during.buckets.length,
      bucketsStartedInBackward: started / rounds, computeMs: med.compute, afterMs: med.after, overlapMs: med.overlap, hidden });
    say(`\noverlap: GPT L${L} C${C} T${T}, batch ${B} per rank, ${(gradBytes / 2 ** 20).toFixed(1)} MiB of gradients in ${during.buckets.length} buckets of 4 MiB`);
    say(`  compute only ${med.compute.toFixed(1)} ms; sync after the backward ${med.after.toFixed(1)} ms; sync during it ${med.overlap.toFixed(1)} ms`);
    say(`  exposed communication: ${exposedAfter.toFixed(1)} ms after, ${exposedOverlap.toFixed(1)} ms overlapped: ${(100 * hidden).toFixed(0)}% hidden; ${(started / rounds).toFixed(1)} of ${during.buckets.length} buckets started during the backward`);
  }

  if (only.includes('step')) {
    const sync = N > 1 ? new GradientSync(world, params, { overlap: true }) : null;
    const t: number[] = [];
    const rounds = quick ? 4 : 10;
    for (let r = 0; r < rounds + 1; r++) {
      if (N > 1) world.barrier();
      const t0 = performance.now();
      step(sync);
      if (N > 1) world.barrier();
      if (r > 0) t.push(performance.now() - t0);
    }
    const ms = median(t);
    rows.push({ suite: 'data-parallel', kernel: 'step', ranks: N, shape: `L${L} C${C} T${T} global batch ${globalB}`, ms, threads: nativeOps.getNumThreads() });
    say(`\nstep: global batch ${globalB} on ${N} rank${N > 1 ? 's' : ''} (${nativeOps.getNumThreads()} thread${nativeOps.getNumThreads() > 1 ? 's' : ''} each): ${ms.toFixed(1)} ms`);
  }
  const json = opt(argv, 'json', '');
  if (json && world.rank === 0) writeFileSync(json, `${JSON.stringify({ rows }, null, 1)}\n`);
}
