"""The PyTorch peer of bench/memory-bench.ts, a Llama-family model (RMSNorm, rotary positions with HF's
rotate_half, grouped-query attention, SwiGLU MLP, tied or untied head) written from transformers'
modeling_llama.py for PyTorch 1.13 (Debian's python3-torch, CPU; no scaled_dot_product_attention there:
attention is the eager softmax over a (B, H, T, T) score block, as transformers' eager path), random weights
of the same shapes as ours, and one of:

  mode "sft"   training steps: full (B·T, V) logits and torch's cross-entropy, as a PyTorch user writes it;
  mode "grpo"  one GRPO step as TRL's GRPOTrainer takes it: G completions of one prompt sampled with a KV cache
               (no stop token), the reference's log-probs (a deep copy of the policy, float32, or bfloat16 with
               refDtype "bf16") and the policy's, both from logits at the completion positions only
               (logits_to_keep) through TRL's selective_log_softmax (a log-sum-exp row by row), the clipped
               objective plus β·k3 KL (β = 0.04, loss_type "grpo": mean over each completion's tokens, then over
               completions), backward, clipping, AdamW.

"checkpointing": true wraps every block in torch.utils.checkpoint (non-reentrant), as transformers'
gradient_checkpointing_enable() does.

Run: /usr/bin/python3 bench/torch_peer.py '{"mode": "sft", "hidden": 576, ...}' — prints one JSON line with
"peakRssMiB" (ru_maxrss) and the mode's timings. Not a test.
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint


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

    def forward(self, x, cos, sin, mask, cache=None):
        """x (B, T, C); cache: None, or a list [k, v] of this layer's earlier keys and values (B, Hkv, S, D), extended here"""
        B, T, C = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.Hkv, self.D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if cache[0] is not None:
                k = torch.cat((cache[0], k), dim=2)
                v = torch.cat((cache[1], v), dim=2)
            cache[0], cache[1] = k, v
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

    def head_weight(self):
        return self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight

    def hidden(self, ids, caches=None, start=0, checkpointing=False):
        """ids (B, T) at positions start.. -> final hidden states (B, T, C); caches: one [k, v] per layer, or None"""
        B, T = ids.shape
        D = self.s["hidden"] // self.s["heads"]
        inv = 1.0 / (self.s.get("ropeTheta", 10000.0) ** (torch.arange(0, D, 2).float() / D))
        ang = torch.outer(torch.arange(start, start + T).float(), inv)
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        # query i (position start + i) sees keys 0 .. start + i
        mask = torch.full((T, start + T), float("-inf")).triu(start + 1)
        x = self.embed_tokens(ids)
        cos, sin, mask = cos.to(x.dtype), sin.to(x.dtype), mask.to(x.dtype)  # a bfloat16 model stays in bfloat16
        for l, layer in enumerate(self.layers):
            if checkpointing and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(layer, x, cos, sin, mask, use_reentrant=False)
            else:
                x = layer(x, cos, sin, mask, None if caches is None else caches[l])
        return self.norm(x)

    def forward(self, ids, checkpointing=False):
        return self.hidden(ids, checkpointing=checkpointing) @ self.head_weight().t()  # (B, T, V)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sft(s):
    model = Llama(s)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    B, T, V = s["B"], s["T"], s["vocab"]
    ckpt = s.get("checkpointing", False)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, V, (B * T,), generator=g)
    times = []
    for _ in range(s["steps"]):
        t0 = time.perf_counter()
        logits = model(ids, checkpointing=ckpt)
        loss = F.cross_entropy(logits.view(-1, V), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append((time.perf_counter() - t0) * 1000)
    timed = times[1:] if len(times) > 1 else times
    ms = sorted(timed)[len(timed) // 2]
    return {"stepMs": [round(t, 1) for t in times], "tokensPerSec": B * T / (ms / 1000)}


@torch.no_grad()
def sample(model, prompts, n):
    """prompts (G, P) -> completions (G, n), sampled at temperature 1 with a KV cache, no stop token"""
    caches = [[None, None] for _ in model.layers]
    W = model.head_weight()
    h = model.hidden(prompts, caches)
    pos = prompts.shape[1]
    out = []
    for _ in range(n):
        logits = h[:, -1] @ W.t()  # (G, V): the last position only
        tok = torch.multinomial(torch.softmax(logits, dim=-1), 1)  # (G, 1)
        out.append(tok)
        h = model.hidden(tok, caches, start=pos)
        pos += 1
    return torch.cat(out, dim=1)


def completion_logps(model, seq, P, checkpointing):
    """log-probs of seq's completion tokens (G, N): logits at the completion positions only (TRL's
    logits_to_keep), TRL's selective_log_softmax for float32 (gather minus a log-sum-exp row by row)"""
    h = model.hidden(seq, checkpointing=checkpointing)[:, P - 1 : -1]  # (G, N, C)
    logits = h @ model.head_weight().t().to(h.dtype)  # (G, N, V)
    ids = seq[:, P:]
    picked = torch.gather(logits, -1, ids.unsqueeze(-1)).squeeze(-1)
    lse = torch.stack([torch.logsumexp(lg, dim=-1) for lg in logits])
    return (picked - lse).float()


def grpo(s):
    import copy

    G, P, N, V = s["G"], s["promptLength"], s["completionLength"], s["vocab"]
    ckpt = s.get("checkpointing", False)
    beta, eps = 0.04, 0.2
    t0 = time.perf_counter()
    model = Llama(s)
    ref = copy.deepcopy(model)
    if s.get("refDtype") == "bf16":
        ref = ref.to(torch.bfloat16)
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.0)
    setup_ms = (time.perf_counter() - t0) * 1000
    after_setup = peak_rss_mib()
    g = torch.Generator().manual_seed(5)
    prompt = torch.randint(0, V, (1, P), generator=g).repeat(G, 1)
    torch.manual_seed(7)
    t1 = time.perf_counter()
    completions = sample(model, prompt, N)
    seq = torch.cat((prompt, completions), dim=1)  # (G, P + N)
    rewards = (completions % 2 == 0).float().mean(dim=1)
    adv = (rewards - rewards.mean()) / (rewards.std() + 1e-4)
    with torch.no_grad():
        ref_logps = completion_logps(ref, seq, P, False)
    rollout_ms = (time.perf_counter() - t1) * 1000
    after_rollout = peak_rss_mib()
    t2 = time.perf_counter()
    logps = completion_logps(model, seq, P, ckpt)
    ratio = torch.exp(logps - logps.detach())
    a = adv.unsqueeze(1)
    per_token = -torch.min(ratio * a, torch.clamp(ratio, 1 - eps, 1 + eps) * a)
    d = ref_logps - logps
    per_token = per_token + beta * (torch.exp(d) - d - 1)
    loss = per_token.mean(dim=1).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    update_ms = (time.perf_counter() - t2) * 1000
    return {
        "refModelDtype": s.get("refDtype", "f32"),
        "gradientCheckpointing": ckpt,
        "rolloutMs": round(rollout_ms),
        "updateMs": round(update_ms),
        "setupMs": round(setup_ms),
        "peakRssAfterSetupMiB": after_setup,
        "peakRssAfterRolloutMiB": after_rollout,
    }


def main():
    s = json.loads(sys.argv[1])
    torch.set_num_threads(s.get("threads", 2))
    torch.manual_seed(1)
    out = grpo(s) if s.get("mode") == "grpo" else sft(s)
    out.update({"peakRssMiB": peak_rss_mib(), "torch": torch.__version__, "threads": torch.get_num_threads()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
