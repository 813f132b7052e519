// `npm run test:gpu`: NCCL with world size 1, end to end (unique id, communicator, all-reduce sum and average,
// broadcast, all-gather, barrier, bad arguments), on a machine with a CUDA device and libnccl (RLHF_NCCL_LIB, or
// libnccl.so.2 on the loader's path). Skips with the reason elsewhere. Several ranks: the same calls under
// `mpirun -n N` (bench/gpu.sh runs `node bench/nccl-check.mjs` that way where N GPUs exist).
import { describe, expect, it } from 'vitest';
import { cudaAvailable, cuda, toDevice, deviceEmpty } from './index';
import { NcclCommunicator, ncclAvailable } from './nccl';

const gpu = cudaAvailable();
const nccl = gpu.ok ? ncclAvailable() : { ok: false, reason: gpu.reason };
if (!nccl.ok) console.warn(`[test:gpu] skipping the NCCL tests: ${nccl.reason}`);

describe.skipIf(!nccl.ok)('NCCL, one rank', () => {
  it('all-reduce (sum, avg), broadcast, all-gather and barrier leave one rank\'s data as it is; bad arguments throw', () => {
    const comm = NcclCommunicator.create({ timeoutSeconds: 60 });
    expect(comm.size).toBe(1);
    expect(comm.info()).toMatchObject({ available: true, initialized: true, rank: 0, size: 1 });
    const x = toDevice(Float32Array.from({ length: 1003 }, (_, i) => Math.sin(i)));
    comm.allReduce(x, 'sum');
    comm.allReduce(x, 'avg');
    const back = x.download() as Float32Array;
    for (let i = 0; i < 1003; i++) expect(back[i]).toBe(Math.fround(Math.sin(i)));
    comm.broadcast(x, 0);
    const g = deviceEmpty(1003);
    comm.allGather(x, g);
    expect(Array.from(g.download() as Float32Array)).toEqual(Array.from(back));
    comm.barrier();
    const c = cuda();
    expect(() => c.ncclAllReduce(x, 'max' as 'sum')).toThrow(/argument 1 'op' must be 'sum' or 'avg'/);
    expect(() => c.ncclAllGather(x, deviceEmpty(10))).toThrow(/argument 1 'recv'.*too short/);
    expect(() => c.ncclInit(new Uint8Array(3), 0, 1)).toThrow(/128-byte Uint8Array/);
    expect(() => c.ncclInit(new Uint8Array(128), 0, 1)).toThrow(/already has an NCCL communicator/);
    comm.destroy();
    expect(() => c.ncclBarrier()).toThrow(/no NCCL communicator/);
    x.dispose();
    g.dispose();
  });
});
