// Puts the built addons into prebuilds/<platform>-<arch>/ for `npm pack` / `npm publish` (the prepack script);
// `--clean` removes prebuilds/ again (postpack), so that a clone of the repository never holds one and `npm ci`
// there keeps building from source (install.mjs). The binary is the one `npm run build` made: the CMake build
// compiles per-ISA translation units and picks AVX-512 / AVX2 / portable code at run time (never -march=native),
// so it runs on any x86-64.
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { packageDir, prebuildDir, whyNotLoadable } from './prebuilds.mjs';

const prebuilds = join(packageDir, 'prebuilds');
if (process.argv.includes('--clean')) {
  rmSync(prebuilds, { recursive: true, force: true });
} else {
  const release = join(packageDir, 'build', 'Release');
  const addon = join(release, 'rlhf_native.node');
  if (!existsSync(addon)) {
    console.error(`@rlhf/native prepack: no ${addon} to ship as a prebuild; run \`npm run build -w @rlhf/native\` first`);
    process.exit(1);
  }
  const why = whyNotLoadable(addon);
  if (why !== null) {
    console.error(`@rlhf/native prepack: ${addon} does not load: ${why}`);
    process.exit(1);
  }
  rmSync(prebuilds, { recursive: true, force: true });
  mkdirSync(prebuildDir, { recursive: true });
  // rlhf_cuda.node and rlhf_mpi.node ship too when they were built; each is loaded only when asked for
  // (src/cuda/index.ts, src/mpi/index.ts), so the CPU addon never needs their libraries.
  for (const name of ['rlhf_native.node', 'rlhf_cuda.node', 'rlhf_mpi.node']) {
    if (existsSync(join(release, name))) copyFileSync(join(release, name), join(prebuildDir, name));
  }
}
