#!/usr/bin/env bash
# Prepares packages/native/build-cuda-carry/ here for one bench/gpu.sh run on a GPU machine, which has no network
# and maybe no node: the CPU addon, this machine's node binary (xz), and core's GPU bench as one standalone bundle
# (bench/gpu-bench.ts: device checks against the cpu, the GPT-2 SFT step against PyTorch). Then, with the device
# tool: carry ["packages/native/build-cuda-carry"] and run `OUT=$OUT bash packages/native/bench/gpu.sh`.
# node-modules.tar.xz: the root node_modules folders that gpu.sh needs (node-addon-api and node-api-headers to build
# the addon, vitest and everything it loads for the GPU suite), the closure read from package-lock.json; gpu.sh
# unpacks it where the root node_modules has no vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
C=build-cuda-carry
mkdir -p "$C"
[ -f build/Release/rlhf_native.node ] || npm run build:native
cp build/Release/rlhf_native.node "$C/"
[ -f "$C/node.xz" ] || xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > "$C/node.xz"
(cd ../core && node bench/run.mjs --bench gpu --bundle-only "../native/$C/core-gpu-bench.cjs")
(cd ../.. && node packages/native/bench/lib/lock-closure.mjs vitest node-addon-api node-api-headers \
  | tar -cf - -T - | xz -T2 -6 > "packages/native/$C/node-modules.tar.xz")
du -sh "$C"/*
du -sc "$C" | tail -1 | awk '{ if ($1 > 60000) { print "build-cuda-carry is over the 64 MiB carry limit"; exit 1 } }'
