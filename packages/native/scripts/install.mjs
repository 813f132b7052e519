// @rlhf/native's install script (npm runs it when the package is installed).
//
// 1. A prebuilt addon shipped in prebuilds/<platform>-<arch>/ (see prebuild.mjs) that loads on this machine is
//    used as it is: nothing is compiled, no compiler is needed.
// 2. Otherwise the addon is built from source with cmake-js (csrc/ and CMakeLists.txt ship in the package),
//    after checking that CMake and a C++ compiler are there: when one is missing the install fails with an
//    error that names it, instead of somewhere inside cmake's output.
//
// In a clone of the repository (the package is not inside a node_modules folder, as every installed package
// is) `npm ci` builds from source, as a developer wants, even if a prebuilds/ folder was left there by an
// interrupted `npm pack`. RLHF_NATIVE_BUILD_FROM_SOURCE=1 (or `npm install --build-from-source`) always builds
// from source.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { packageDir, prebuildDir, whyNotLoadable } from './prebuilds.mjs';

const log = (s) => process.stderr.write(`@rlhf/native: ${s}\n`);
const here = `${process.platform}-${process.arch}, Node ${process.versions.node}`;

function fromSourceAsked() {
  const on = (v) => v !== undefined && v !== '' && v !== '0' && v !== 'false';
  return on(process.env.RLHF_NATIVE_BUILD_FROM_SOURCE) || on(process.env.npm_config_build_from_source);
}

/** What `cmd --version` prints when the command runs, else null. */
function runs(cmd) {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : null;
}

/** What a build from source needs and is missing here, as phrases; [] when nothing is. */
function missingTools() {
  const missing = [];
  const cmake = runs('cmake');
  if (cmake === null) missing.push('CMake >= 3.20 (no `cmake` on PATH)');
  else {
    const m = /version (\d+)\.(\d+)/.exec(cmake);
    if (m && (Number(m[1]) < 3 || (Number(m[1]) === 3 && Number(m[2]) < 20))) missing.push(`CMake >= 3.20 (found ${m[0]})`);
  }
  const cxx = process.env.CXX?.trim().split(/\s+/)[0];
  if (cxx) {
    if (runs(cxx) === null) missing.push(`a C++17 compiler (CXX is ${JSON.stringify(process.env.CXX)}, which does not run)`);
  } else if (!['c++', 'g++', 'clang++'].some((c) => runs(c) !== null)) {
    missing.push('a C++17 compiler (none of c++, g++, clang++ on PATH; or set CXX)');
  }
  return missing;
}

function main() {
  const prebuilt = join(prebuildDir, 'rlhf_native.node');
  let whyNotPrebuilt;
  if (fromSourceAsked()) whyNotPrebuilt = 'a build from source was asked for (RLHF_NATIVE_BUILD_FROM_SOURCE / --build-from-source)';
  else if (!packageDir.split(sep).includes('node_modules')) whyNotPrebuilt = `${packageDir} is a checkout of the repository, not an installed package`;
  else if (!existsSync(prebuilt)) whyNotPrebuilt = `this package has no prebuilt addon for ${here} (no ${prebuilt})`;
  else {
    const why = whyNotLoadable(prebuilt);
    if (why === null) {
      log(`using the prebuilt addon ${prebuilt}`);
      return 0;
    }
    whyNotPrebuilt = `the prebuilt addon ${prebuilt} does not load on ${here}: ${why}`;
  }

  const missing = missingTools();
  if (missing.length > 0) {
    log(`cannot install: ${whyNotPrebuilt}, and building it from source needs ${missing.join(' and ')}.`);
    log('Install what is missing (e.g. on Debian/Ubuntu: apt-get install cmake g++) and install again.');
    return 1;
  }
  log(`building the addon from source: ${whyNotPrebuilt}`);
  const cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--parallel', '2', '--log-level', 'warn'], { cwd: packageDir, stdio: 'inherit' });
  if (r.status !== 0) {
    log(`the build from source failed (cmake-js exited ${r.status ?? r.signal}; its output is above; npm shows it with --foreground-scripts).`);
    return 1;
  }
  return 0;
}

process.exitCode = main();
