/**
 * The one table that maps every kernel core uses to its implementation: the native kernel of @rlhf/native
 * where the package exports it and the loaded addon has it, else its `...Ref` reference from
 * @rlhf/native/reference, else a temporary local fallback (backend/fallback.ts). No other file of core calls
 * @rlhf/native kernels. `kernelSources()` says which one serves each name (a test prints it).
 */
import * as nativeOps from '@rlhf/native';
import * as referenceOps from '@rlhf/native/reference';
import { fallbackKernels } from './fallback';
import { KERNEL_NAMES, type KernelName, type Kernels } from './kernels';

export type KernelSource = 'native' | 'reference' | 'fallback';

let table: Kernels | undefined;
const sources = {} as Record<KernelName, KernelSource>;

function bindingHas(name: string): boolean {
  try {
    return typeof (nativeOps.native() as unknown as Record<string, unknown>)[name] === 'function';
  } catch {
    return false;
  }
}

function build(): Kernels {
  const t = {} as Record<string, unknown>;
  const nat = nativeOps as unknown as Record<string, unknown>;
  const ref = referenceOps as unknown as Record<string, unknown>;
  for (const name of KERNEL_NAMES) {
    if (typeof nat[name] === 'function' && bindingHas(name)) {
      t[name] = nat[name];
      sources[name] = 'native';
    } else if (typeof ref[`${name}Ref`] === 'function') {
      t[name] = ref[`${name}Ref`];
      sources[name] = 'reference';
    } else {
      t[name] = fallbackKernels[name];
      sources[name] = 'fallback';
    }
  }
  return t as unknown as Kernels;
}

/** The CPU kernel table, built on first use. */
export function kernels(): Kernels {
  if (!table) table = build();
  return table;
}

/** For each kernel name, whether it runs natively, on the TS reference, or on the temporary fallback. */
export function kernelSources(): Record<KernelName, KernelSource> {
  kernels();
  return { ...sources };
}
