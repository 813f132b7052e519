"""PyTorch peers for bench/gpu.mjs, on the same GPU in the same run: prints one JSON object of ms per call.

torch.matmul (float32, TF32 off as torch's default), scaled_dot_product_attention (causal, default backend and
the math path), F.cross_entropy forward+backward, an eager PPO-clip policy loss forward+backward; and the bf16
peers of the tensor-core kernels, under bf16 autocast on bf16 tensors: torch.matmul (bf16 in, bf16 out, float32
accumulation) and SDPA restricted to the flash backend (causal, forward and forward+backward). Same shapes and
the same timing rule as gpu.mjs (median of 5 samples of several calls, bracketed by synchronize).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"
only = set(a for a in sys.argv[1].split(",") if a) if len(sys.argv) > 1 else set()
want = lambda k: not only or k in only


def bench(fn):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    once = (time.perf_counter() - t0) * 1e3
    reps = max(1, min(20, int(300 / 5 / max(once, 1e-3))))
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - t0) * 1e3 / reps)
    samples.sort()
    return samples[2]


out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
if want("gemm"):
    for s in (2048, 4096):
        a = torch.randn(s, s, device=dev)
        b = torch.randn(s, s, device=dev)
        out[f"matmul_{s}"] = bench(lambda: torch.matmul(a, b))
        del a, b
if want("gemm-bf16"):
    for s in (2048, 4096):
        a = torch.randn(s, s, device=dev, dtype=torch.bfloat16)
        b = torch.randn(s, s, device=dev, dtype=torch.bfloat16)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out[f"matmul_bf16_{s}"] = bench(lambda: torch.matmul(a, b))
        del a, b
if want("attention-bf16"):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    for D in (64, 128):  # keys of D = 64 unsuffixed (the target's shape), D = 128 with _d128
        B, H, T = 8, 16, 2048
        sfx = "" if D == 64 else f"_d{D}"
        q, k, v = (torch.randn(B, H, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        g = torch.randn(B, H, T, D, device=dev, dtype=torch.bfloat16)

        def fwd16():
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k, v, is_causal=True)

        def fwdbwd16():
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            torch.autograd.grad(o, (q, k, v), g)

        try:  # the flash backend refuses some GPUs / builds: say so instead of losing every other peer
            with torch.autocast("cuda", dtype=torch.bfloat16), sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                out[f"sdpa_flash_bf16_fwd{sfx}"] = bench(fwd16)
                out[f"sdpa_flash_bf16_fwdbwd{sfx}"] = bench(fwdbwd16)
        except RuntimeError as e:
            out[f"sdpa_flash_bf16_error{sfx}"] = str(e)[:500]
        del q, k, v, g
        torch.cuda.empty_cache()
if want("attention"):
    B, H, T, D = 8, 16, 2048, 64
    q, k, v = (torch.randn(B, H, T, D, device=dev, requires_grad=True) for _ in range(3))
    g = torch.randn(B, H, T, D, device=dev)

    def fwd():
        with torch.no_grad():
            F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def fwdbwd():
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.autograd.grad(o, (q, k, v), g)

    out["sdpa_fwd"] = bench(fwd)
    out["sdpa_fwdbwd"] = bench(fwdbwd)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        out["sdpa_math_fwdbwd"] = bench(fwdbwd)
    del q, k, v, g
    torch.cuda.empty_cache()
if want("ce"):
    N, V = 4096, 50257
    logits = (torch.rand(N, V, device=dev) * 8 - 4).requires_grad_(True)
    t = torch.randint(0, V, (N,), device=dev)

    def ce():
        loss = F.cross_entropy(logits, t, ignore_index=-100)
        torch.autograd.grad(loss, logits)

    out["ce_fwdbwd"] = bench(ce)
    del logits
    torch.cuda.empty_cache()
if want("ppo"):
    n = 256 * 4096
    logp = torch.randn(n, device=dev, requires_grad=True)
    old, adv = torch.randn(n, device=dev), torch.randn(n, device=dev)
    mask = torch.ones(n, device=dev)

    def ppo():
        ratio = torch.exp(torch.clamp(logp - old, -20, 20))
        l1 = -adv * ratio
        l2 = -adv * torch.clamp(ratio, 0.8, 1.2)
        loss = (torch.max(l1, l2) * mask).sum() / mask.sum()
        clipfrac = ((l2 > l1).float() * mask).sum() / mask.sum()  # the stats the fused kernel also gives
        kl = ((-(logp - old)) * mask).sum() / mask.sum()
        torch.autograd.grad(loss, logp)
        return clipfrac, kl

    out["ppo_fwdbwd"] = bench(ppo)
print(json.dumps(out))
