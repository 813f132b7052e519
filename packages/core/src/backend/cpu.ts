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
  return table;
}

/** For each kernel name, whether it runs natively or on the TypeScript reference (stale addon). */
export function kernelSources(): Record<KernelName, KernelSource> {
  kernels();
  return { ...sources };
}
