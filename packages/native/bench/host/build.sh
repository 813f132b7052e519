#!/bin/bash
# Builds packages/native/build-host/libgemmhost.so from the GEMM and FMA-probe sources (same ISA flags as
# CMakeLists.txt: *_avx512.cc and *_avx2.cc only with their own flags).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
native="$(cd "$here/../.." && pwd)"
S="$native/csrc"
out="$native/build-host"
mkdir -p "$out"
CXX="${CXX:-g++}"
FLAGS=(-O3 -fno-math-errno -fPIC -fopenmp -std=c++17 -I"$S")
AVX512=(-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c -mbmi2)
AVX2=(-mavx2 -mfma -mf16c -mbmi2)
objs=()
for f in ops/gemm/gemm_avx512 ops/bench_peak/bench_peak_avx512; do
  "$CXX" "${FLAGS[@]}" "${AVX512[@]}" -c "$S/$f.cc" -o "$out/$(basename $f).o"; objs+=("$out/$(basename $f).o")
done
for f in ops/gemm/gemm_avx2 ops/bench_peak/bench_peak_avx2; do
  "$CXX" "${FLAGS[@]}" "${AVX2[@]}" -c "$S/$f.cc" -o "$out/$(basename $f).o"; objs+=("$out/$(basename $f).o")
done
"$CXX" "${FLAGS[@]}" -shared "$here/shim.cc" "$S/ops/gemm/gemm_cpu.cc" "$S/common/simd.cc" "$S/common/parallel.cc" \
  "$S/ops/bench_peak/bench_peak_cpu.cc" "${objs[@]}" -o "$out/libgemmhost.so"
echo "$out/libgemmhost.so"
