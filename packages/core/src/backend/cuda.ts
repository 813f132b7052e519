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
export function cudaBackendOf(c: nativeCuda.CudaBinding): DeviceBackend {
  const info = c.info();
  if (info.devices === 0) throw new Error(`device cuda: rlhf_cuda.node finds no CUDA device (${info.reason ?? 'no reason given'})`);
  const Buf = c.DeviceBuffer;
  if (typeof (Buf.prototype as { view?: unknown }).view !== 'function') {
    throw new Error('device cuda: this rlhf_cuda.node has no DeviceBuffer views (buf.view(offset, length)), which core\'s tensor views need; rebuild @rlhf/native');
  }
  const binding = c as unknown as Record<string, (...a: unknown[]) => unknown>;
  const missing = [...KERNEL_NAMES, 'allocatorStats', 'resetAllocatorPeak'].filter((name) => typeof binding[name] !== 'function');
  if (missing.length > 0) {
    throw new Error(`device cuda: this rlhf_cuda.node lacks ${missing.join(', ')}, which @rlhf/core needs: it was built from older sources; rebuild @rlhf/native (npm run build:native)`);
  }
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
  const embeddingForward = binding.embeddingForward;
  if (typeof embeddingForward === 'function') {
    table.embeddingForward = (out, ids, tbl, n, vocab, dim) => embeddingForward.call(c, out, ids, tbl, n, vocab, dim, true);
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
