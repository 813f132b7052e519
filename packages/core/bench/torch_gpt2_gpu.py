"""The PyTorch peer of bench/gpu-bench.ts's GPT-2 SFT step, on the same GPU in the same run: GPT-2 (learned
positions, pre-LayerNorm blocks, tanh-GELU MLP, tied head) written from the published architecture (Radford et
al. 2019; the layout of transformers' GPT2LMHeadModel), random weights, PyTorch eager (no torch.compile):
attention through F.scaled_dot_product_attention (causal, the default backend choice, as transformers' "sdpa"
path), the full (B·T, V) logits and F.cross_entropy as a PyTorch user writes it, backward, clip_grad_norm_(1.0),
torch.optim.AdamW (its default implementation). Modes: "fp32" (float32 everywhere, TF32 off: torch's default)
and "bf16" (torch.autocast(bfloat16) around forward and loss, float32 master weights and optimizer state).

Run: python3 bench/torch_gpt2_gpu.py '{"B": 8, "T": 1024, "steps": 10, "modes": ["fp32", "bf16"]}'
Prints one JSON line: per mode, the median ms per step and tokens/s, and the peak of torch's allocator (MiB).
Not a test.
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        # (B, H, T, D)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(a.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, V, P, C, L, H):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(P, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        for p in self.parameters():
            nn.init.normal_(p, std=0.02) if p.dim() > 1 else nn.init.zeros_(p)
        for b in self.h:
            nn.init.ones_(b.ln_1.weight), nn.init.ones_(b.ln_2.weight)
        nn.init.ones_(self.ln_f.weight)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(T, device=ids.device))
        for b in self.h:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.t()  # tied head: (B, T, V)


def run(s, mode):
    dev = "cuda"
    torch.manual_seed(0)
    m = GPT2(s["V"], s["P"], s["C"], s["L"], s["H"]).to(dev)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.0)
    B, T = s["B"], s["T"]
    ids = torch.randint(0, s["V"], (B, T + 1), device=dev)
    x, y = ids[:, :-1], ids[:, 1:]

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode == "bf16"):
            logits = m(x)
            loss = F.cross_entropy(logits.float().reshape(-1, s["V"]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(s["steps"]):
        t0 = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    ms = times[len(times) // 2]
    out = {"ms": ms, "tokensPerS": B * T / ms * 1e3, "peakMiB": torch.cuda.max_memory_allocated() / 2**20, "loss": float(loss)}
    del m, opt
    torch.cuda.empty_cache()
    return out


def main():
    s = {"V": 50257, "P": 1024, "C": 768, "L": 12, "H": 12, "B": 8, "T": 1024, "steps": 10, "modes": ["fp32", "bf16"]}
    if len(sys.argv) > 1:
        s.update(json.loads(sys.argv[1]))
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "shape": {k: s[k] for k in "VPCLHBT"}}
    for mode in s["modes"]:
        try:
            out[mode] = run(s, mode)
        except Exception as e:  # e.g. out of memory: reported, the other mode still runs
            out[mode] = {"error": str(e)[:500]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
