/**
 * The one table that maps every kernel core uses to its implementation: the native kernel of @rlhf/native.
 * No other file of core calls @rlhf/native kernels. Only when the loaded addon binary predates a kernel
 * (a stale build) does that entry fall back to its `...Ref` TypeScript reference from
 * @rlhf/native/reference, with one warning on stderr naming the kernels and the rebuild command;
 * `kernelSources()` says which one serves each name (a test asserts all are native).
 */
import * as nativeOps from '@rlhf/native';
import * as referenceOps from '@rlhf/native/reference';
import { KERNEL_NAMES, type KernelName, type Kernels } from './kernels';

export type KernelSource = 'native' | 'reference';

let table: Kernels | undefined;
const sources = {} as Record<KernelName, KernelSource>;

function build(): Kernels {
  const binding = nativeOps.native() as unknown as Record<string, unknown>;
  const nat = nativeOps as unknown as Record<string, unknown>;
  const ref = referenceOps as unknown as Record<string, unknown>;
  const t = {} as Record<string, unknown>;
  const stale: string[] = [];
  for (const name of KERNEL_NAMES) {
    if (typeof nat[name] === 'function' && typeof binding[name] === 'function') {
      t[name] = nat[name];
      sources[name] = 'native';
    } else if (typeof ref[`${name}Ref`] === 'function') {
      t[name] = ref[`${name}Ref`];
      sources[name] = 'reference';
      stale.push(name);
    } else {
      throw new Error(`@rlhf/core: kernel ${name} is neither in @rlhf/native nor in its reference; rebuild @rlhf/native`);
    }
  }
  if (stale.length) {
    process.emitWarning(
      `@rlhf/core: the native addon lacks ${stale.join(', ')}; using the slow TypeScript references. ` +
        'Rebuild it: npm run build:native -w @rlhf/native',
    );
  }
  return t as unknown as Kernels;
}

/** The CPU kernel table, built on first use. */
export function kernels(): Kernels {
  if (!table) table = build();
  return timed ?? table;
}

// ---- optional per-kernel timing (benchmarks and profiling only; off by default and then free) ----

export interface KernelTiming {
  calls: number;
  ms: number;
}
let timed: Kernels | undefined;
const timings = new Map<string, KernelTiming>();

/**
 * Turns per-kernel wall-clock timing on or off. While on, every call through `kernels()` adds its time to
 * `kernelTimings()`; while off (the default) `kernels()` returns the plain table and nothing is measured.
 */
export function setKernelTiming(on: boolean): void {
  if (!on) {
    timed = undefined;
    return;
  }
  const plain = kernels() as unknown as Record<string, (...args: unknown[]) => unknown>;
  const wrapped: Record<string, unknown> = {};
  for (const name of Object.keys(plain)) {
    const fn = plain[name];
    // GEMMs are told apart by shape ("gemm 1024x1152x384 NT"): they are most of a step, at very different rates.
    const byShape: Record<string, (a: unknown[]) => string> = {
      gemm: (a) => `gemm ${a[3]}x${a[4]}x${a[5]} ${a[6] ? 'T' : 'N'}${a[7] ? 'T' : 'N'}`,
      gemmBf16: (a) => `gemmBf16 ${a[3]}x${a[4]}x${a[5]} ${a[6] === false ? 'NN' : 'NT'}`,
      gemmBf16Mixed: (a) => `gemmBf16Mixed ${a[3]}x${a[4]}x${a[5]} ${a[6] ? 'T' : 'N'}${a[7] ? 'T' : 'N'}${a[0] instanceof Uint16Array ? ' C bf16' : ''}`,
      gemmBatched: (a) => `gemmBatched ${a[3]}x(${a[4]}x${a[5]}x${a[6]}) ${a[10] ? 'T' : 'N'}${a[11] ? 'T' : 'N'}`,
    };
    const key = byShape[name] ?? (() => name);
    wrapped[name] = (...args: unknown[]) => {
      const t0 = performance.now();
      try {
        return fn(...args);
      } finally {
        const k = key(args);
        let t = timings.get(k);
        if (!t) timings.set(k, (t = { calls: 0, ms: 0 }));
        t.calls++;
        t.ms += performance.now() - t0;
      }
    };
  }
  timed = wrapped as unknown as Kernels;
}

/** The timings gathered since the last reset (by kernel; GEMMs by shape), slowest first. */
export function kernelTimings(reset = false): [string, KernelTiming][] {
  const out = [...timings.entries()].map(([k, v]) => [k, { ...v }] as [string, KernelTiming]).sort((a, b) => b[1].ms - a[1].ms);
  if (reset) timings.clear();
  return out;
}

/**
 * The native decoder of generation (@rlhf/native NativeDecoder: a whole decoder step in one call over a KV cache
 * in native memory), or null when the loaded addon predates it (a stale build): generation then runs the model's
 * forward, as before. Not a table entry: a class with a cache, not a kernel with a TypeScript reference.
 */
export function nativeDecoder(): typeof nativeOps.NativeDecoder | null {
  const binding = nativeOps.native() as unknown as Record<string, unknown>;
  return typeof binding.decoderCreate === 'function' && typeof binding.decoderStep === 'function' ? nativeOps.NativeDecoder : null;
}

/**
 * Advises Linux to back a large array with transparent huge pages (@rlhf/native adviseHugePages: the array's
 * whole 2 MiB pages; with `collapse`, the pages already there are converted now, a one-time copy). For arrays
 * streamed whole again and again: weights read once per decode step, the optimizer's flat buffers. Before the
 * array is first written it costs nothing. Returns the bytes advised; 0 with a stale addon, off Linux, for an
 * array under 2 MiB or with RLHF_HUGE_PAGES=0. Not a kernel: it changes the mapping, never the contents.
 */
export function adviseHugePages(array: Float32Array | Int32Array | Uint16Array | Uint8Array, collapse = false): number {
  if (array.byteLength < 2 << 20) return 0;
  const binding = nativeOps.native() as unknown as Record<string, unknown>;
  return typeof binding.adviseHugePages === 'function' ? nativeOps.adviseHugePages(array, collapse) : 0;
}

/** For each kernel name, whether it runs natively or on the TypeScript reference (stale addon). */
export function kernelSources(): Record<KernelName, KernelSource> {
  kernels();
  return { ...sources };
}
