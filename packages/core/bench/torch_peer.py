"""The PyTorch peer of bench/memory-bench.ts: one SFT training step of a Llama-family model (RMSNorm, rotary
positions with HF's rotate_half, grouped-query attention, SwiGLU MLP, tied or untied head), written from
transformers' modeling_llama.py for PyTorch 1.13 (Debian's python3-torch, CPU; no scaled_dot_product_attention
there: attention is the eager softmax over a (B, H, T, T) score block, as transformers' eager path). Random
weights of the same shapes as ours; full (B·T, V) logits and torch's cross-entropy, as a PyTorch user writes it.

Run: /usr/bin/python3 bench/torch_peer.py '{"hidden": 576, ...}' — prints one JSON line:
{ "stepMs": [...], "tokensPerSec": ..., "peakRssMiB": ... }. Not a test.
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, C, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))
        self.eps = eps

    def forward(self, x):
        v = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(v + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, s):
        super().__init__()
        C, H, Hkv, F_ = s["hidden"], s["heads"], s["kvHeads"], s["intermediate"]
        D = C // H
        self.H, self.Hkv, self.D = H, Hkv, D
        self.input_layernorm = RMSNorm(C, 1e-6)
        self.q_proj = nn.Linear(C, H * D, bias=s.get("qkvBias", False))
        self.k_proj = nn.Linear(C, Hkv * D, bias=s.get("qkvBias", False))
        self.v_proj = nn.Linear(C, Hkv * D, bias=s.get("qkvBias", False))
        self.o_proj = nn.Linear(H * D, C, bias=False)
        self.post_attention_layernorm = RMSNorm(C, 1e-6)
        self.gate_proj = nn.Linear(C, F_, bias=False)
        self.up_proj = nn.Linear(C, F_, bias=False)
        self.down_proj = nn.Linear(F_, C, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.H // self.Hkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.D) + mask
        y = torch.softmax(att, dim=-1) @ v
        x = x + self.o_proj(y.transpose(1, 2).reshape(B, T, C))
        h2 = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h2)) * self.up_proj(h2))


class Llama(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s
        self.embed_tokens = nn.Embedding(s["vocab"], s["hidden"])
        self.layers = nn.ModuleList([Block(s) for _ in range(s["layers"])])
        self.norm = RMSNorm(s["hidden"], 1e-6)
        self.lm_head = None if s["tied"] else nn.Linear(s["hidden"], s["vocab"], bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        B, T = ids.shape
        D = self.s["hidden"] // self.s["heads"]
        inv = 1.0 / (self.s.get("ropeTheta", 10000.0) ** (torch.arange(0, D, 2).float() / D))
        ang = torch.outer(torch.arange(T).float(), inv)
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        x = self.norm(x)
        W = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return x @ W.t()  # (B, T, V)


def main():
    s = json.loads(sys.argv[1])
    torch.set_num_threads(s.get("threads", 2))
    torch.manual_seed(1)
    model = Llama(s)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    B, T, V = s["B"], s["T"], s["vocab"]
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, V, (B * T,), generator=g)
    times = []
    for _ in range(s["steps"]):
        t0 = time.perf_counter()
        logits = model(ids)
        loss = F.cross_entropy(logits.view(-1, V), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append((time.perf_counter() - t0) * 1000)
    timed = times[1:] if len(times) > 1 else times
    ms = sorted(timed)[len(timed) // 2]
    print(json.dumps({
        "stepMs": [round(t, 1) for t in times],
        "tokensPerSec": B * T / (ms / 1000),
        "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
