/**
 * NCCL between GPU ranks (one process per GPU), on DeviceBuffers. The unique id NCCL needs on every rank is made
 * by rank 0 and broadcast over MPI (rlhf_mpi.node); with one rank no MPI is needed. NCCL itself is opened at run
 * time by rlhf_cuda.node (RLHF_NCCL_LIB, else libnccl.so.2; PyTorch's wheels ship it in
 * site-packages/nvidia/nccl/lib).
 *
 *   const comm = NcclCommunicator.create();           // under mpirun: MPI carries the id; else world size 1
 *   comm.allReduce(grads, 'avg');                      // a DeviceBuffer, in place
 */
import type { MpiBinding } from '../mpi/binding';
import { initMpi, launcherWorld } from '../mpi/index';
import type { CudaBinding, DeviceBuffer, NcclInfo } from './binding';
import { cuda } from './index';

export class NcclCommunicator {
  private constructor(
    private readonly c: CudaBinding,
    readonly rank: number,
    readonly size: number,
  ) {}

  /**
   * NCCL's communicator for this process. Under an MPI launcher (or with `mpi` given) every rank of the MPI world
   * joins, rank 0's unique id broadcast over MPI; otherwise a world of one. Pick the device first (one per rank).
   */
  static create(opts: { mpi?: MpiBinding & { rank: number; size: number }; timeoutSeconds?: number } = {}): NcclCommunicator {
    const c = cuda();
    const info = c.ncclInfo();
    if (!info.available) throw new Error(`NcclCommunicator: ${info.reason}`);
    const m = opts.mpi ?? (launcherWorld() ? initMpi({ timeoutSeconds: opts.timeoutSeconds }) : null);
    const rank = m?.rank ?? 0;
    const size = m?.size ?? 1;
    const id = rank === 0 ? c.ncclUniqueId() : new Uint8Array(128);
    if (m && size > 1) m.broadcast(id, 0);
    c.ncclInit(id, rank, size, opts.timeoutSeconds ?? 600);
    return new NcclCommunicator(c, rank, size);
  }

  info(): NcclInfo {
    return this.c.ncclInfo();
  }
  allReduce(buf: DeviceBuffer, op: 'sum' | 'avg' = 'sum'): void {
    this.c.ncclAllReduce(buf, op);
  }
  broadcast(buf: DeviceBuffer, root = 0): void {
    this.c.ncclBroadcast(buf, root);
  }
  allGather(send: DeviceBuffer, recv: DeviceBuffer): void {
    this.c.ncclAllGather(send, recv);
  }
  barrier(): void {
    this.c.ncclBarrier();
  }
  destroy(): void {
    this.c.ncclDestroy();
  }
}

/** Whether NCCL can be used here, and if not why (no CUDA addon, no libnccl, too old). */
export function ncclAvailable(): { ok: boolean; reason: string; version?: number } {
  try {
    const i = cuda().ncclInfo();
    return i.available ? { ok: true, reason: '', version: i.version } : { ok: false, reason: i.reason ?? 'NCCL unavailable' };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}
