/**
 * The child of data-parallel.test.ts, run as `mpirun -n 2 node dp-child.mjs <algos> <outRoot> <perRank> [...]`:
 * trains each algorithm of the comma-separated list into <outRoot>/<algo>; rank 0 prints one JSON line per run.
 *   --save-steps N    a checkpoint every N steps
 *   --max-steps N
 *   --pids            each rank writes its process id to <outRoot>/rank<r>.pid first (the killed-rank test)
 *   --no-overlap      all-reduce after the backward, not during it
 *   --device D        train on device D (TrainingArgs.device; 'emulated': gradients summed through the host)
 *   --device-all-reduce M   gradientSync.deviceAllReduce ('auto': the flat buffer at once; 'host': bucket by bucket)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dpRun, type DpAlgo } from './dp-fixture';
import { worldCollective } from './collective';
import { transferCounts, type Device } from '../backend/device';
import type { DeviceAllReduceMode } from './device-all-reduce';

const [algos, outRoot, perRank, ...rest] = process.argv.slice(2);
const flag = (name: string): number | undefined => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? Number(rest[i + 1]) : undefined;
};
const world = worldCollective();
if (rest.includes('--pids')) {
  mkdirSync(outRoot, { recursive: true });
  writeFileSync(join(outRoot, `rank${world.rank}.pid`), String(process.pid));
}
for (const algo of algos.split(',') as DpAlgo[]) {
  const t = dpRun(algo, join(outRoot, algo), {
    perRank: Number(perRank),
    saveSteps: flag('save-steps'),
    maxSteps: flag('max-steps'),
    gradientSync: {
      overlap: !rest.includes('--no-overlap'),
      ...(rest.includes('--device-all-reduce') ? { deviceAllReduce: rest[rest.indexOf('--device-all-reduce') + 1] as DeviceAllReduceMode } : {}),
    },
    device: rest.includes('--device') ? (rest[rest.indexOf('--device') + 1] as Device) : 'cpu',
  });
  const r = t.train();
  // the transfers of the run (on a device: the gradients staged through the host for the all-reduce)
  const transfers = Object.fromEntries(Object.entries(transferCounts(true)).map(([k, v]) => [k, v.count]));
  if (world.rank === 0) process.stdout.write(`${JSON.stringify({ algo, steps: r.steps, checkpoint: r.checkpoint, transfers })}\n`);
}
