/**
 * Sums of device gradients over the ranks, for GradientSync, without its MPI path's staging of every bucket through
 * the host: on 'cuda' NCCL (rlhf_cuda.node, one GPU per rank: backend/cuda.ts selects the local rank's), queued
 * on the process stream after the backward's kernels and summing in place; on another device (the emulated one)
 * through the host, one download, MPI's all-reduce and one upload (the same sums, so the CPU tests run this path
 * under mpirun and compare it with the cpu's).
 *
 * `gradientSync.deviceAllReduce` picks: 'auto' (NCCL on cuda where libnccl loads, else the bucketed host path with
 * a note on rank 0; the host all-reduce on other devices), 'nccl' (NCCL or an error saying why not), 'host' (the
 * bucketed host path of GradientSync, which overlaps the backward: for measuring, or where NCCL misbehaves).
 */
import { cuda as nativeCuda } from '@rlhf/native';
import { download, uploadInto, type Device, type DeviceBuffer } from '../backend/device';
import type { Collective } from './collective';

export type DeviceAllReduceMode = 'auto' | 'host' | 'nccl';
const MODES: readonly DeviceAllReduceMode[] = ['auto', 'host', 'nccl'];

/** An in-place sum over the ranks of a device buffer (every rank calls with the same lengths in the same order). */
export interface DeviceAllReduce {
  readonly device: Device;
  readonly via: 'nccl' | 'host';
  sum(buf: DeviceBuffer): void;
}

/** Names a bad mode (the trainers' `gradientSync.deviceAllReduce`). */
export function checkDeviceAllReduceMode(mode: unknown, where = 'gradientSync.deviceAllReduce'): DeviceAllReduceMode {
  if (mode === undefined) return 'auto';
  if (!MODES.includes(mode as DeviceAllReduceMode)) throw new RangeError(`${where} must be one of ${MODES.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(mode)}`);
  return mode as DeviceAllReduceMode;
}

/** Through the host: one counted download and one upload (category `gradient`) per call; staging kept by length. */
export function hostAllReduce(device: Device, world: Collective): DeviceAllReduce {
  const staging = new Map<number, Float32Array>();
  return {
    device,
    via: 'host',
    sum(buf) {
      let h = staging.get(buf.length);
      if (!h) staging.set(buf.length, (h = new Float32Array(buf.length)));
      download(device, buf, 'gradient', h);
      world.allReduce(h, 'sum');
      uploadInto(device, buf, h, 'gradient');
    },
  };
}

/** NCCL's communicator over the MPI world (made once per process: NCCL's unique id travels over MPI). */
let nccl: nativeCuda.NcclCommunicator | null = null;

/**
 * The device all-reduce a data-parallel trainer on `device` uses, or null for GradientSync's bucketed host path.
 * A world of one rank needs none (null).
 */
export function deviceAllReduceFor(device: Device, world: Collective, mode: DeviceAllReduceMode, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): DeviceAllReduce | null {
  checkDeviceAllReduceMode(mode);
  if (device === 'cpu' || world.size === 1 || mode === 'host') return null;
  if (device !== 'cuda') {
    if (mode === 'nccl') throw new Error(`gradientSync.deviceAllReduce 'nccl' needs device 'cuda', not '${device}'`);
    return hostAllReduce(device, world);
  }
  const avail = nativeCuda.ncclAvailable();
  if (!avail.ok) {
    if (mode === 'nccl') throw new Error(`gradientSync.deviceAllReduce 'nccl': NCCL cannot be used here: ${avail.reason}`);
    if (world.rank === 0) log(`data parallelism on cuda: NCCL cannot be used here (${avail.reason}); the gradients go through the host (MPI)`);
    return null;
  }
  if (world.backend !== 'mpi') throw new Error(`data parallelism on cuda with NCCL: the world must be MPI's (its ranks carry NCCL's id), not '${world.backend}'`);
  nccl ??= nativeCuda.NcclCommunicator.create();
  if (nccl.size !== world.size || nccl.rank !== world.rank) {
    throw new Error(`NCCL's communicator is rank ${nccl.rank} of ${nccl.size}, the trainer's world rank ${world.rank} of ${world.size}`);
  }
  const comm = nccl;
  return { device, via: 'nccl', sum: (buf) => comm.allReduce(buf as nativeCuda.DeviceBuffer, 'sum') };
}
