/**
 * The 'cuda' device: the same adapter as the emulated device (backend/emulated.ts), over the real binding:
 * @rlhf/native's rlhf_cuda.node, whose DeviceBuffers are the buffers and whose kernels (API.md's, with
 * DeviceBuffers in place of typed arrays; views and bf16 buffers too) are the table. Loaded on first use of the
 * device (backends.ts), so the CPU build never needs CUDA; where the addon is missing, was built without device
 * views, or finds no device, using 'cuda' throws an error that says which.
 *
 * Not run on this machine (no GPU here): what is checked here is the refusal; the GPU suite runs the rest.
 */
import { cuda as nativeCuda } from '@rlhf/native';
import type { BufferDType, DeviceBackend, DeviceBuffer, DeviceKernels, HostArray } from './device';
import { KERNEL_NAMES } from './kernels';

export function cudaBackend(): DeviceBackend {
  return cudaBackendOf(nativeCuda.cuda()); // a NativeLoadError naming the missing file when the addon is not built
}

/**
 * The backend over a loaded binding (exported for the refusal tests, which hand it a fake). An rlhf_cuda.node
 * built from older sources than this core (one that lacks a kernel of KERNEL_NAMES, or the allocator's peak reset)
 * is refused here, when the device is first used (a trainer's config check), naming what it lacks, rather than
 * at the first call of the missing kernel, which may come late in a run.
 */
export function cudaBackendOf(c: nativeCuda.CudaBinding, env: NodeJS.ProcessEnv = process.env): DeviceBackend {
  const info = c.info();
  if (info.devices === 0) throw new Error(`device cuda: rlhf_cuda.node finds no CUDA device (${info.reason ?? 'no reason given'})`);
  const Buf = c.DeviceBuffer;
  if (typeof (Buf.prototype as { view?: unknown }).view !== 'function') {
    throw new Error('device cuda: this rlhf_cuda.node has no DeviceBuffer views (buf.view(offset, length)), which core\'s tensor views need; rebuild @rlhf/native');
  }
  const binding = c as unknown as Record<string, (...a: unknown[]) => unknown>;
  const missing = [...KERNEL_NAMES, 'allocatorStats', 'resetAllocatorPeak', 'selectDevice'].filter((name) => typeof binding[name] !== 'function');
  if (missing.length > 0) {
    throw new Error(`device cuda: this rlhf_cuda.node lacks ${missing.join(', ')}, which @rlhf/core needs: it was built from older sources; rebuild @rlhf/native (npm run build:native)`);
  }
  // one GPU per rank: pick it before the first allocation (the stream and the cached blocks belong to it)
  const index = cudaDeviceIndex(env, info.devices);
  if (index !== null) c.selectDevice(index);
  const table: Record<string, (...a: unknown[]) => unknown> = {};
  for (const name of KERNEL_NAMES) table[name] = binding[name].bind(c);
  // the tensor-core attention (Kernels' optional members): bound where this rlhf_cuda.node has it
  for (const name of ['attentionForwardBf16', 'attentionBackwardBf16']) {
    const fn = binding[name];
    if (typeof fn === 'function') table[name] = fn.bind(c);
  }
  // The embedding's ids check is deferred to the next download (a sampled token's embedding would otherwise wait
  // for the GPU at every decode step: no host round trip per token); a bad id still throws, naming its position,
  // from that download, and its row is never read out of bounds.
  // The same for a table kept in bf16 (embeddingForwardBf16).
  for (const name of ['embeddingForward', 'embeddingForwardBf16']) {
    const fn = binding[name];
    table[name] = (out, ids, tbl, n, vocab, dim) => fn.call(c, out, ids, tbl, n, vocab, dim, true);
  }
  return {
    device: 'cuda',
    kernels: table as unknown as DeviceKernels,
    alloc(n: number, dtype: BufferDType): DeviceBuffer {
      return new Buf(n, dtype);
    },
    // a DeviceBuffer's own copies (they wait for the stream); a view copies its range only
    upload(dst: DeviceBuffer, src: HostArray) {
      (dst as nativeCuda.DeviceBuffer).upload(src);
    },
    download(dst: HostArray, src: DeviceBuffer) {
      (src as nativeCuda.DeviceBuffer).download(dst);
    },
    // the caching allocator's (cuda/allocator.cu): peak of the bytes handed out, cached blocks apart
    memoryStats() {
      const s = c.allocatorStats();
      return { inUse: s.inUse, peak: s.peak, cached: s.cached };
    },
    resetPeak() {
      c.resetAllocatorPeak();
    },
  };
}

/** The launchers' variables that give a process's rank among those on its machine (Open MPI, MPICH, Slurm, torchrun). */
const LOCAL_RANK_VARS = ['OMPI_COMM_WORLD_LOCAL_RANK', 'MPI_LOCALRANKID', 'SLURM_LOCALID', 'LOCAL_RANK'] as const;

/**
 * Which CUDA device this process uses: RLHF_CUDA_DEVICE when set (an index the machine has, else an Error naming
 * it); else, under a launcher, the process's local rank modulo the devices (ranks on one machine take one GPU each;
 * more ranks than GPUs share them round robin, which NCCL refuses: the gradients then go through the host); else
 * null: the runtime's default, device 0.
 */
export function cudaDeviceIndex(env: NodeJS.ProcessEnv, devices: number): number | null {
  const set = env.RLHF_CUDA_DEVICE;
  if (set !== undefined && set !== '') {
    const i = Number(set);
    if (!Number.isInteger(i) || i < 0 || i >= devices) {
      throw new RangeError(`RLHF_CUDA_DEVICE=${JSON.stringify(set)} is not a CUDA device of this machine (it has ${devices}: 0 to ${devices - 1})`);
    }
    return i;
  }
  for (const name of LOCAL_RANK_VARS) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const r = Number(v);
    if (!Number.isInteger(r) || r < 0) throw new RangeError(`${name}=${JSON.stringify(v)} is not a local rank (a non-negative integer)`);
    return r % devices;
  }
  return null;
}
