#!/usr/bin/env bash
# Prepares packages/native/build-cuda-carry/ here for one bench/gpu.sh run on a GPU machine, which has no network
# and maybe no node: the CPU addon, this machine's node binary (xz), and core's GPU bench as one standalone bundle
# (bench/gpu-bench.ts: device checks against the cpu, the GPT-2 SFT step against PyTorch). Then, with the device
# tool: carry ["packages/native/build-cuda-carry"] (plus node_modules trimmed to vitest's needs for the vitest
# stage, within the carry limit) and run `OUT=$OUT bash packages/native/bench/gpu.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
C=build-cuda-carry
mkdir -p "$C"
[ -f build/Release/rlhf_native.node ] || npm run build:native
cp build/Release/rlhf_native.node "$C/"
[ -f "$C/node.xz" ] || xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > "$C/node.xz"
(cd ../core && node bench/run.mjs --bench gpu --bundle-only "../native/$C/core-gpu-bench.cjs")
du -sh "$C"/*
