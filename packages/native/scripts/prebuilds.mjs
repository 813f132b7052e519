// Where @rlhf/native's prebuilt addons live in a package: prebuilds/<platform>-<arch>/<name>.node (the layout
// of prebuildify and node-gyp-build). One binary serves every Node version on a platform: it is a Node-API
// addon (NAPI_VERSION 8), not tied to one Node ABI. Used by install.mjs and prebuild.mjs; src/loader.ts
// computes the same path.
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package folder (scripts/..). */
export const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** prebuilds/<platform>-<arch> in this package, e.g. prebuilds/linux-x64. */
export const prebuildDir = join(packageDir, 'prebuilds', `${process.platform}-${process.arch}`);

/**
 * Whether the addon at `path` loads in a fresh node process and is ours (it has info()); a child process, so
 * that a binary that crashes on load (SIGILL on an older CPU, a missing library) cannot take this one down.
 * Returns null when it loads, else why not (the loader's message).
 */
export function whyNotLoadable(path) {
  const r = spawnSync(
    process.execPath,
    ['-e', `const b = require(${JSON.stringify(path)}); if (typeof b.info !== 'function') throw new Error('not the rlhf_native addon (no info())'); b.info();`],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (r.status === 0) return null;
  if (r.error) return r.error.message;
  const last = (r.stderr ?? '').trim().split('\n').find((l) => /Error|error:/.test(l)) ?? (r.stderr ?? '').trim().split('\n').pop();
  return r.signal ? `the process died with ${r.signal}` : (last ?? `exit code ${r.status}`);
}
