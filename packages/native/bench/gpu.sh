#!/usr/bin/env bash
# One prepared run on a GPU machine (no network, no npm install): builds rlhf_cuda.node against the pip cuBLAS
# that PyTorch brings, runs the GPU suite under vitest (`npm run test:gpu`'s files, where node_modules was carried:
# RLHF_GPU_TEST_VITEST=0 skips it), every CUDA-vs-CPU check again in plain node (their errors go into the result),
# times our kernels (float32 and the bf16 tensor-core ones) and the PyTorch peers on the same GPU (bf16 autocast,
# SDPA's flash backend for the bf16 attention), and writes $OUT/gpu-result.json (+ logs); each stage prints its
# start time, the last line says pass/fail. Under 10 minutes on an H100 / H200. Run from the repository root or
# packages/native:
#   OUT=/tmp/out bash packages/native/bench/gpu.sh
# Needs: nvcc, g++, python3 with torch; node (else a node binary carried as build-cuda-carry/node.xz);
# node-addon-api and node-api-headers headers and vitest (root node_modules/, else build-cuda-carry/node-modules.tar.xz);
# cmake if present (else nvcc builds the addon in one command). The CPU addon: build-cuda-carry/rlhf_native.node if it loads, else built.
# Core's device path (checks against the cpu, the GPT-2 SFT step against PyTorch): build-cuda-carry/core-gpu-bench.cjs.
set -u
cd "$(dirname "$0")/.."
NATIVE=$(pwd)
OUT=${OUT:-$NATIVE/gpu-out}
mkdir -p "$OUT"
LOG=$OUT/gpu.log
exec > >(tee -a "$LOG") 2>&1
t0=$(date +%s)
stage() { echo "=== [$(( $(date +%s) - t0 ))s] $*"; }
# The device tool stops a command at 600 s: every stage gets at most its own cap and what is left of
# RLHF_GPU_BUDGET_S (default 570) less 20 s kept for the NCCL check and the summary, so that the run ends, with its
# summary, before it is cut off; a stage stopped by its cap fails (exit 124) and the run goes on.
BUDGET=${RLHF_GPU_BUDGET_S:-570}
cap() { local left=$(( BUDGET - 20 - ($(date +%s) - t0) )); [ "$left" -lt "$1" ] && echo $(( left > 5 ? left : 5 )) || echo "$1"; }

stage "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export PATH=/usr/local/cuda/bin:$PATH
NVCC=$(command -v nvcc || true)
echo "nvcc: ${NVCC:-none}"; [ -n "$NVCC" ] && nvcc --version | tail -2
PY=$(command -v python3 || command -v python)
echo "python: $PY"

if ! command -v node >/dev/null 2>&1; then
  if [ -f "$NATIVE/build-cuda-carry/node.xz" ]; then
    mkdir -p /tmp/rlhf-node/bin && xz -dc "$NATIVE/build-cuda-carry/node.xz" > /tmp/rlhf-node/bin/node && chmod +x /tmp/rlhf-node/bin/node
    export PATH=/tmp/rlhf-node/bin:$PATH
  fi
fi
echo "node: $(command -v node || echo none) $(node -v 2>/dev/null)"

stage "find cuBLAS (pip layout)"
SITE=$($PY -c 'import os, nvidia; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || true)
CUBLAS_H=$(find "$SITE/nvidia" /usr/local/cuda/include -name cublas_v2.h 2>/dev/null | head -1)
CUBLAS_INC=$(dirname "${CUBLAS_H:-/nonexistent/x}")
# (no header: no library either; a search from dirname of a missing folder would walk the whole disk)
CUBLAS_LIB=$([ -n "$CUBLAS_H" ] && find "$(dirname "$CUBLAS_INC")" -name 'libcublas.so*' ! -name '*Lt*' 2>/dev/null | sort | head -1)
echo "cublas header: ${CUBLAS_H:-none}  lib: ${CUBLAS_LIB:-none}"
[ -n "$CUBLAS_LIB" ] && export LD_LIBRARY_PATH=$(dirname "$CUBLAS_LIB"):${LD_LIBRARY_PATH:-}

ROOT=$(cd "$NATIVE/../.." && pwd)
# the root node_modules folders this run needs (addon headers, vitest), carried as one archive by gpu-carry.sh
if [ ! -d "$ROOT/node_modules/vitest" ] && [ -f "$NATIVE/build-cuda-carry/node-modules.tar.xz" ]; then
  stage "unpack the carried node_modules (node-addon-api, node-api-headers, vitest)"
  (cd "$ROOT" && tar -xJf "$NATIVE/build-cuda-carry/node-modules.tar.xz") || echo "could not unpack node-modules.tar.xz"
fi
NAPI_INC=$ROOT/node_modules/node-api-headers/include
ADDON_INC=$ROOT/node_modules/node-addon-api
CC_ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
CC_ARCH=${CC_ARCH:-90}

stage "build rlhf_cuda.node (sm_$CC_ARCH)"
BUILD=/tmp/rlhf-cuda-build
CUDA_NODE=""
if command -v cmake >/dev/null 2>&1; then
  cmake -S "$NATIVE" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$CC_ARCH" \
    -DCMAKE_JS_INC="$NAPI_INC" -DRLHF_CUDA_ADDON=on \
    ${CUBLAS_LIB:+-DRLHF_CUBLAS_INCLUDE_DIR="$CUBLAS_INC" -DRLHF_CUBLAS_LIBRARY="$CUBLAS_LIB"} >"$OUT/cmake.log" 2>&1 \
    && cmake --build "$BUILD" --target rlhf_cuda -j 16 >>"$OUT/cmake.log" 2>&1 && CUDA_NODE=$BUILD/rlhf_cuda.node
  tail -5 "$OUT/cmake.log"
fi
if [ -z "$CUDA_NODE" ] || [ ! -f "$CUDA_NODE" ]; then
  echo "cmake build unavailable or failed: one nvcc command instead"
  SRC=$(ls "$NATIVE"/cuda/*.cu "$NATIVE"/cuda/cuda_addon.cc "$NATIVE"/cuda/nccl.cc)
  if [ -n "$CUBLAS_LIB" ]; then EXTRA="-I$CUBLAS_INC $CUBLAS_LIB -Xlinker -rpath=$(dirname "$CUBLAS_LIB")";
  else SRC=$(echo "$SRC" | grep -v gemm_cublas; echo "$NATIVE/cuda/gemm_stub.cc"); EXTRA=""; fi
  mkdir -p "$BUILD"
  build_nvcc() {
    nvcc -O3 -std=c++17 -arch=sm_$CC_ARCH -shared -Xcompiler -fPIC -cudart static \
      -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_DEPRECATED -DNAPI_CPP_EXCEPTIONS \
      -I"$NAPI_INC" -I"$ADDON_INC" -I"$NATIVE/cuda" "$@" -ldl -o "$BUILD/rlhf_cuda.node" >>"$OUT/nvcc.log" 2>&1
  }
  if ! build_nvcc $SRC $EXTRA; then
    tail -20 "$OUT/nvcc.log"
    echo "nvcc build failed; once more without cuBLAS (GEMM stub), so that the other kernels are still checked"
    build_nvcc $(echo "$SRC" | grep -v gemm_cublas) "$NATIVE/cuda/gemm_stub.cc"
  fi
  tail -5 "$OUT/nvcc.log"
  CUDA_NODE=$BUILD/rlhf_cuda.node
fi
ls -la "$CUDA_NODE" || { echo "no rlhf_cuda.node"; exit 1; }

stage "CPU addon"
CPU_NODE=$NATIVE/build-cuda-carry/rlhf_native.node
if ! node -e "require('$CPU_NODE')" 2>/dev/null; then
  echo "carried CPU addon does not load here: building it"
  cmake -S "$NATIVE" -B /tmp/rlhf-cpu-build -DCMAKE_BUILD_TYPE=Release -DCMAKE_JS_INC="$NAPI_INC" \
    -DRLHF_CUDA_ADDON=off >"$OUT/cmake-cpu.log" 2>&1 && cmake --build /tmp/rlhf-cpu-build --target rlhf_native -j 16 \
    >>"$OUT/cmake-cpu.log" 2>&1
  CPU_NODE=/tmp/rlhf-cpu-build/rlhf_native.node
fi
ls -la "$CPU_NODE"

vitest_rc=skipped
if [ "${RLHF_GPU_TEST_VITEST:-1}" = 1 ] && [ -d "$ROOT/node_modules/vitest" ]; then
  stage "GPU suite under vitest (src/**/*.gpu.test.ts)"
  # RLHF_GPU_REQUIRED=1: a suite that cannot reach the device fails here instead of skipping.
  (cd "$NATIVE" && RLHF_GPU_REQUIRED=1 RLHF_CUDA_PATH=$CUDA_NODE RLHF_NATIVE_PATH=$CPU_NODE \
    RLHF_NCCL_LIB=$(find "$SITE/nvidia" -name 'libnccl.so*' 2>/dev/null | sort | head -1) \
    timeout "$(cap 240)" node "$ROOT/node_modules/vitest/vitest.mjs" run --config vitest.gpu.config.ts > "$OUT/vitest.log" 2>&1)
  vitest_rc=$?
  tail -60 "$OUT/vitest.log"
else
  echo "GPU suite under vitest: skipped (RLHF_GPU_TEST_VITEST=${RLHF_GPU_TEST_VITEST:-1}, vitest at $ROOT/node_modules/vitest: $([ -d "$ROOT/node_modules/vitest" ] && echo yes || echo no))"
fi

stage "PyTorch peers"
timeout "$(cap 150)" $PY "$NATIVE/bench/gpu_torch.py" "${RLHF_GPU_ONLY:-}" > "$OUT/torch-peers.json" 2>"$OUT/torch.log" || tail -5 "$OUT/torch.log"
cat "$OUT/torch-peers.json"

stage "checks + benchmarks"
timeout "$(cap 200)" node --expose-gc "$NATIVE/bench/gpu.mjs" --cpu "$CPU_NODE" --cuda "$CUDA_NODE" --torch "$OUT/torch-peers.json" \
  --out "$OUT/gpu-result.json" ${RLHF_GPU_ONLY:+--only "$RLHF_GPU_ONLY"}
rc=$?

stage "core on the GPU: device checks against the cpu, GPT-2 124M SFT step vs PyTorch eager"
# build-cuda-carry/core-gpu-bench.cjs: `node bench/run.mjs --bench gpu --bundle-only FILE` in packages/core
# (a standalone bundle of core's bench/gpu-bench.ts; the addons come from the paths below)
CORE_BENCH=$NATIVE/build-cuda-carry/core-gpu-bench.cjs
if [ -f "$CORE_BENCH" ]; then
  RLHF_NATIVE_PATH=$CPU_NODE RLHF_CUDA_PATH=$CUDA_NODE \
    RLHF_NCCL_LIB=$(find "$SITE/nvidia" -name 'libnccl.so*' 2>/dev/null | sort | head -1) timeout "$(cap 300)" node "$CORE_BENCH" --device cuda --shape gpt2 \
    --torch "$PY" --torch-script "$NATIVE/../core/bench/torch_gpt2_gpu.py" --json "$OUT/core-gpu.json" || rc=1
else
  echo "core on the GPU: skipped (no $CORE_BENCH carried)"
fi

stage "NCCL, one rank (opened at run time: PyTorch's libnccl.so.2)"
NCCL_LIB=$(find "$SITE/nvidia" -name 'libnccl.so*' 2>/dev/null | sort | head -1)
echo "libnccl: ${NCCL_LIB:-none}"
if [ -n "$NCCL_LIB" ]; then
  RLHF_NCCL_LIB=$NCCL_LIB timeout 15 node "$NATIVE/bench/nccl-check.mjs" --cuda "$CUDA_NODE" | tee "$OUT/nccl-check.json"
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
fi

[ "$vitest_rc" = skipped ] || [ "$vitest_rc" = 0 ] || rc=1
echo "{\"vitest\": \"$vitest_rc\", \"rc\": $rc, \"seconds\": $(( $(date +%s) - t0 ))}" > "$OUT/gpu-summary.json"
stage "done (rc $rc; vitest $vitest_rc): $([ $rc = 0 ] && echo PASS || echo FAIL)"
exit $rc
