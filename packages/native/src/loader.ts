import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeBinding } from './binding';

/** Thrown when the addon binary is missing or cannot be loaded; the message says how to rebuild it. */
export class NativeLoadError extends Error {
  override name = 'NativeLoadError';
  constructor(
    message: string,
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const REBUILD_HINT =
  'In a project that installed it: `npm rebuild @rlhf/native` runs its install script again ' +
  '(RLHF_NATIVE_BUILD_FROM_SOURCE=1 to build from source). In the repository: ' +
  '`npm run rebuild:native -w @rlhf/native`. A build needs a C++17 compiler and CMake >= 3.20.';

/** The folder of this package (the one holding package.json), from wherever the bundle was loaded. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === '@rlhf/native') return dir;
      } catch {
        /* not ours, keep walking */
      }
    }
    dir = dirname(dir);
  }
  throw new NativeLoadError('could not find the @rlhf/native package folder', dir);
}

/**
 * The places an addon file `name` (rlhf_native.node, rlhf_cuda.node) is looked for in this package, in order:
 * build/Release (a build from source: the repository's, or an install that had no usable prebuild), then
 * prebuilds/<platform>-<arch> (the binary shipped in the npm package; scripts/prebuilds.mjs names the same path).
 */
export function binaryCandidates(name: string): string[] {
  const root = packageRoot();
  return [join(root, 'build', 'Release', name), join(root, 'prebuilds', `${process.platform}-${process.arch}`, name)];
}

/**
 * Where the addon is looked for: RLHF_NATIVE_PATH, else the first of binaryCandidates('rlhf_native.node') that
 * exists (build/Release, then prebuilds/<platform>-<arch>), else build/Release's path (loading it then says it
 * is missing).
 */
export function defaultBinaryPath(): string {
  if (process.env.RLHF_NATIVE_PATH) return resolve(process.env.RLHF_NATIVE_PATH);
  const candidates = binaryCandidates('rlhf_native.node');
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

/**
 * Loads the addon at `path` (with `dlopenFlags`: through process.dlopen with those flags, e.g. RTLD_GLOBAL for
 * a library whose plugins look up its symbols). Fails with a NativeLoadError that names the path, the reason and the rebuild
 * command when the file is missing, was built for another platform or Node ABI, or is not an addon.
 */
export function loadNativeBinding(path: string = defaultBinaryPath(), opts: { dlopenFlags?: number } = {}): NativeBinding {
  if (!existsSync(path)) {
    const prebuilt = binaryCandidates('rlhf_native.node')[1];
    throw new NativeLoadError(
      `@rlhf/native: the native addon is missing: no file at ${path}` +
        (path === binaryCandidates('rlhf_native.node')[0] ? ` (nor a prebuilt one at ${prebuilt})` : '') +
        `. The package's install script uses the prebuilt addon or builds one; it may have failed or been skipped. ${REBUILD_HINT}`,
      path,
    );
  }
  const require = createRequire(import.meta.url);
  const restoreEnv = shortOpenMpSpin();
  try {
    if (opts.dlopenFlags !== undefined) {
      const module = { exports: {} as NativeBinding };
      process.dlopen(module, path, opts.dlopenFlags);
      return module.exports;
    }
    return require(path) as NativeBinding;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const code = (err as { code?: string }).code;
    const platform = `${process.platform}-${process.arch}, Node ${process.versions.node} (ABI ${process.versions.modules})`;
    let why = 'it could not be loaded';
    if (/invalid ELF header|wrong ELF class|not a valid Win32|mach-o|slice is not valid/i.test(msg)) {
      why = `it was built for another platform than this one (${platform})`;
    } else if (/NODE_MODULE_VERSION|was compiled against a different Node/i.test(msg)) {
      why = `it was built for another Node.js version than this one (${platform})`;
    } else if (/undefined symbol|GLIBC|cannot open shared object/i.test(msg)) {
      why = `a library it needs is missing or too old on this machine (${platform})`;
    }
    throw new NativeLoadError(
      `@rlhf/native: the native addon at ${path} is unusable: ${why}. ${REBUILD_HINT} ` +
        `(loader said: ${msg}${code ? ` [${code}]` : ''})`,
      path,
      { cause: err },
    );
  } finally {
    restoreEnv();
  }
}

/** Spins of an OpenMP thread before it sleeps, unless OMP_WAIT_POLICY or GOMP_SPINCOUNT say otherwise. */
export const OPENMP_SPIN_COUNT = 10000;

/**
 * OpenMP's threads wait for the next parallel region, and at its closing barrier, by spinning before they sleep:
 * libgomp's default is 300000 pauses (milliseconds on Zen 4), after every region. On a machine with more runnable
 * threads than cores (shared, or busy with other work) the spinning threads take the CPU from the very thread
 * they wait for; the kernels' thousands of regions per training step then cost a third more CPU time. 10000
 * pauses (~0.2 ms) still catch the next region of a quiet step. Measured on the 2-core EPYC at load 10-15, a
 * SmolLM2-135M-shaped SFT step (4 layers, B 4, T 256), processes alternating: CPU time per step 4.3-5.4 s with
 * the default against 3.0-3.1 s, wall time ~25% lower (packages/core/bench/README.md); OMP_WAIT_POLICY=passive
 * did as well there. libgomp reads its environment once, when the addon loads it: GOMP_SPINCOUNT is set for the
 * load only, and removed again, so that child processes see the environment they would have. A process that had
 * already loaded libgomp keeps its settings; a user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is left as it is.
 */
function shortOpenMpSpin(): () => void {
  if (process.env.OMP_WAIT_POLICY !== undefined || process.env.GOMP_SPINCOUNT !== undefined) return () => {};
  process.env.GOMP_SPINCOUNT = String(OPENMP_SPIN_COUNT);
  return () => {
    delete process.env.GOMP_SPINCOUNT;
  };
}

let cached: NativeBinding | undefined;

/** The process-wide addon, loaded on first use. */
export function native(): NativeBinding {
  if (!cached) cached = loadNativeBinding();
  return cached;
}
