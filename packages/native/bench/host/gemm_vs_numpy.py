"""Our GEMM (build-host/libgemmhost.so, through ctypes) against numpy's matmul (OpenBLAS), interleaved.

    python3 gemm_vs_numpy.py THREADS SHAPE...      SHAPE = MxNxK, with a suffix a / b / ab for transA / transB
    e.g. OPENBLAS_NUM_THREADS=1 taskset -c 2 python3 gemm_vs_numpy.py 1 1024x1024x1024 2048x1152x384xb

Each shape: both results checked against each other, reps batched to ~20 ms, then 9 rounds alternating which
side goes first; medians; ratio = numpy time / our time (> 1: we are faster). Set OPENBLAS_NUM_THREADS to
THREADS yourself (OpenBLAS reads it at import), and with 2+ threads OPENBLAS_THREAD_TIMEOUT=20 as the harness
does (OpenBLAS's idle threads otherwise spin ~0.1 s after each call, through our turn). RLHF_HOST_SOLO=1 times
ours twice instead (no peer between our samples). Last: the FMA probe on THREADS threads (GFLOP/s).
"""
import ctypes
import os
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
lib = ctypes.CDLL(os.path.join(here, '..', '..', 'build-host', 'libgemmhost.so'))
lib.rlhf_fma_peak.restype = ctypes.c_double
threads = int(sys.argv[1])
lib.rlhf_set_threads(threads)
F = ctypes.POINTER(ctypes.c_float)


def ptr(a):
    return a.ctypes.data_as(F)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


rows = []
for spec in sys.argv[2:]:
    parts = spec.split('x')
    m, n, k = map(int, parts[:3])
    flags = parts[3] if len(parts) > 3 else ''
    ta, tb = 'a' in flags, 'b' in flags
    A = np.random.rand(*((k, m) if ta else (m, k))).astype(np.float32)
    B = np.random.rand(*((n, k) if tb else (k, n))).astype(np.float32)
    C, D = np.empty((m, n), np.float32), np.empty((m, n), np.float32)
    An, Bn = (A.T if ta else A), (B.T if tb else B)

    def ours():
        lib.rlhf_gemm(ptr(C), ptr(A), ptr(B), m, n, k, int(ta), int(tb), ctypes.c_float(1), ctypes.c_float(0))

    def peer():
        np.matmul(An, Bn, out=D)

    ours()
    peer()
    assert np.allclose(C, D, rtol=1e-4, atol=1e-4 * k), spec
    t0 = time.perf_counter()
    ours()
    reps = max(1, int(0.02 / max(time.perf_counter() - t0, 1e-6)))
    to, tp = [], []
    solo = os.environ.get('RLHF_HOST_SOLO') == '1'  # ours only, no interleaved peer (its threads' spinning)
    for r in range(9):
        order = ((ours, to), (peer, tp)) if r % 2 == 0 else ((peer, tp), (ours, to))
        for fn, acc in (order if not solo else ((ours, to), (ours, tp))):
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            acc.append((time.perf_counter() - t0) / reps)
    flops = 2.0 * m * n * k
    other = 'ours again' if solo else 'numpy'
    rows.append(f'{spec}: ours {flops / median(to) / 1e9:.1f} GF/s, {other} {flops / median(tp) / 1e9:.1f} GF/s, '
                f'ratio {median(tp) / median(to):.3f}')
t0 = time.perf_counter()
peak = lib.rlhf_fma_peak(2000000) / (time.perf_counter() - t0) / 1e9
print(f'threads {threads}, FMA probe {peak:.0f} GF/s')
print('\n'.join(rows))
