#!/usr/bin/python3
"""An independent implementation of the causal LM families rlhf-ts loads (gpt2, llama, mistral, qwen2, qwen3,
smollm3), in PyTorch and float64, written from the formulas of transformers' modeling_<family>.py,
configuration_<family>.py and modeling_rope_utils.py (5.x) -- not from rlhf-ts's code, which it checks.

It reads a Hugging Face folder as transformers would (config.json with each config class's defaults,
model.safetensors or model.safetensors.index.json with its shards, F32 / F16 / BF16), then for each job runs
greedy decoding (the whole sequence re-run for every new token, no cache) and the log-probability of every token
of the sequence given its prefix.

    /usr/bin/python3 hf_reference.py JOBS.json  ->  JSON on stdout

JOBS.json: [{"dir": folder, "prompts": [[ids...], ...], "steps": n, "adapter": optional PEFT LoRA folder}, ...]
Output: [{"results": [{"ids": prompt + greedy, "logprobs": [log p(ids[t+1] | ids[:t+1])], "margins": [top-1 minus
top-2 logit at each greedy step]}]} | {"error": "..."}, ...]

Sliding windows are computed as transformers' sdpa/eager masks do (key j is seen by query i when
0 <= i - j < sliding_window), also for sequences longer than the window, so that a model that ought to refuse them
can be checked to. Dynamic NTK RoPE recomputes its base for a sequence longer than max_position_embeddings, as
transformers does at the first such call.

With "adapter", a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, written from PEFT's
lora/layer.py and utils/other.py, not from rlhf-ts) is applied as PEFT's Linear.forward does: every module with a
`base_model.model.<module>.lora_A.weight` in the file gets + scaling * (x @ A.T) @ B.T, scaling = lora_alpha / r
(or / sqrt(r) with use_rslora), r and lora_alpha per module from rank_pattern / alpha_pattern (the first key k with
re.match(rf'(.*\.)?({k})$', module)). Any other tensor of the file, `base_model.model.<module>.<param>`, is a module in
modules_to_save (PEFT's ModulesToSaveWrapper: the module computes with the saved copy). A token embedding whose LM
head is tied to it: with "ensure_weight_tying": true the head uses the saved copy too; without, PEFT keeps the head
on the original weights (its developer guide lora.md, "weight tying": tied weights, modules_to_save, "treat as
separate").
"""
import json
import math
import os
import re
import struct
import sys

import torch

torch.set_grad_enabled(False)
F = torch.float64


# ---- reading a folder ----

def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        a, b = e['data_offsets']
        raw = data[a:b]
        shape = e['shape']
        dt = e['dtype']
        if dt == 'F32':
            t = torch.frombuffer(bytearray(raw), dtype=torch.float32)
        elif dt == 'F16':
            t = torch.frombuffer(bytearray(raw), dtype=torch.float16).to(torch.float32)
        elif dt == 'BF16':
            # bfloat16 is the top half of a float32
            h = torch.frombuffer(bytearray(raw), dtype=torch.int16).to(torch.int32) & 0xFFFF
            t = (h << 16).view(torch.float32)
        else:
            raise ValueError(f'{path}: {name} has dtype {dt}')
        out[name] = t.reshape(shape).to(F)
    return out


def read_folder(d):
    with open(os.path.join(d, 'config.json')) as f:
        cfg = json.load(f)
    single = os.path.join(d, 'model.safetensors')
    if os.path.exists(single):
        w = read_safetensors(single)
    else:
        with open(os.path.join(d, 'model.safetensors.index.json')) as f:
            index = json.load(f)
        w = {}
        for shard in sorted(set(index['weight_map'].values())):
            w.update(read_safetensors(os.path.join(d, shard)))
    return cfg, w


def read_adapter(d):
    """({module name: (A, B, scaling)}, {parameter name: tensor} of modules_to_save, ensure_weight_tying) of a PEFT
    LoRA folder."""
    with open(os.path.join(d, 'adapter_config.json')) as f:
        cfg = json.load(f)
    if cfg.get('peft_type') != 'LORA':
        raise ValueError(f'{d}: peft_type {cfg.get("peft_type")!r} is not LORA')
    w = read_safetensors(os.path.join(d, 'adapter_model.safetensors'))
    prefix = 'base_model.model.'

    def pattern(p, key, default):
        for k, v in (p or {}).items():
            if re.match(rf'(.*\.)?({k})$', key):
                return v
        return default

    out = {}
    saved = {}
    for name, a in w.items():
        m = re.fullmatch(re.escape(prefix) + r'(.*)\.lora_A\.weight', name)
        if not m:
            if not re.search(r'\.lora_B\.weight$', name):
                saved[name[len(prefix):]] = a
            continue
        key = m.group(1)
        r = pattern(cfg.get('rank_pattern'), key, cfg.get('r', 8))
        alpha = pattern(cfg.get('alpha_pattern'), key, cfg.get('lora_alpha', 8))
        scaling = alpha / math.sqrt(r) if cfg.get('use_rslora', False) else alpha / r
        b = w[f'{prefix}{key}.lora_B.weight']
        if a.shape[0] != r or b.shape[1] != r:
            raise ValueError(f'{d}: {key} has rank {a.shape[0]}, the config says {r}')
        out[key] = (a, b, scaling)
    return out, saved, bool(cfg.get('ensure_weight_tying', False))


# ---- the pieces every family shares ----

def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = (x - mu).pow(2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x.pow(3))))


def silu(x):
    return x * torch.sigmoid(x)


def attend(q, k, v, scale, window=None):
    """q (H, T, D), k and v (Hkv, T, D): causal softmax attention, kv heads repeated for groups of H / Hkv."""
    H, T, _ = q.shape
    rep = H // k.shape[0]
    k = k.repeat_interleave(rep, dim=0)
    v = v.repeat_interleave(rep, dim=0)
    s = (q @ k.transpose(1, 2)) * scale
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    if window is not None:
        allowed = allowed & (i - j < window)
    s = s.masked_fill(~allowed, float('-inf'))
    return torch.softmax(s, dim=-1) @ v


# ---- RoPE: inverse frequencies of each rope type ----

def rope_inv_freq(cfg, dim, seq_len):
    """(inv_freq (dim/2), attention factor) for the config's rope_scaling / rope_parameters."""
    scaling = cfg.get('rope_scaling') or cfg.get('rope_parameters') or {}
    theta = scaling.get('rope_theta', cfg.get('rope_theta', DEFAULTS[cfg['model_type']]['rope_theta']))
    rtype = scaling.get('rope_type', scaling.get('type', 'default'))
    idx = torch.arange(0, dim, 2, dtype=F) / dim
    inv = 1.0 / theta ** idx
    max_pos = cfg.get('max_position_embeddings', DEFAULTS[cfg['model_type']]['max_position_embeddings'])
    if rtype == 'default':
        return inv, 1.0
    factor = scaling['factor']
    if rtype == 'linear':
        return inv / factor, 1.0
    if rtype == 'dynamic':
        if seq_len > max_pos:
            base = theta * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2))
            return 1.0 / base ** idx, 1.0
        return inv, 1.0
    if rtype == 'llama3':
        old = scaling['original_max_position_embeddings']
        lo, hi = scaling['low_freq_factor'], scaling['high_freq_factor']
        wavelen = 2 * math.pi / inv
        out = torch.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
        return torch.where(medium, smoothed, out), 1.0
    if rtype == 'yarn':
        orig = scaling.get('original_max_position_embeddings', max_pos)
        att = scaling.get('attention_factor')

        def mscale(s, m=1.0):
            return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0
        if att is None:
            m, mall = scaling.get('mscale'), scaling.get('mscale_all_dim')
            att = mscale(factor, m) / mscale(factor, mall) if (m and mall) else mscale(factor)
        fast = scaling.get('beta_fast') or 32
        slow = scaling.get('beta_slow') or 1

        def corr(rot):
            return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(theta))
        low, high = corr(fast), corr(slow)
        if scaling.get('truncate', True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(dim // 2, dtype=F) - low) / (high - low)).clamp(0, 1)
        keep = 1 - ramp
        return (inv / factor) * (1 - keep) + inv * keep, att
    raise ValueError(f'rope type {rtype}')


def apply_rope(x, pos, inv, att):
    """x (H, T, D), rotate_half pairing (i, i + D/2)."""
    ang = pos[:, None].to(F) * inv[None, :]
    emb = torch.cat([ang, ang], dim=-1)
    cos, sin = emb.cos() * att, emb.sin() * att
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rot * sin


# ---- families ----

DEFAULTS = {
    'llama': dict(num_key_value_heads=None, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                  max_position_embeddings=2048, head_dim=None),
    'mistral': dict(num_key_value_heads=8, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                    max_position_embeddings=4096 * 32, head_dim=None, sliding_window=4096),
    'qwen2': dict(num_key_value_heads=32, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                  max_position_embeddings=32768, head_dim=None, sliding_window=4096, max_window_layers=28),
    'qwen3': dict(num_key_value_heads=32, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                  max_position_embeddings=32768, head_dim=128, sliding_window=4096, max_window_layers=28),
    'smollm3': dict(num_key_value_heads=4, rms_norm_eps=1e-6, rope_theta=2000000.0, tie_word_embeddings=True,
                    max_position_embeddings=32768, head_dim=None, sliding_window=None),
}


def lora_delta(lora, key, x):
    """PEFT's Linear.forward: lora_B(lora_A(x)) * scaling (dropout is off at inference); 0 without an adapter."""
    if key not in lora:
        return 0
    a, b, scaling = lora[key]
    return (x @ a.T) @ b.T * scaling


def decoder_logits(cfg, w, ids, lora, head_w=None):
    t = cfg['model_type']
    d = DEFAULTS[t]
    get = lambda k: cfg[k] if cfg.get(k) is not None else d.get(k)  # noqa: E731
    C, H, L = cfg['hidden_size'], cfg['num_attention_heads'], cfg['num_hidden_layers']
    Hkv = get('num_key_value_heads') or H
    D = get('head_dim') or C // H
    eps = get('rms_norm_eps')
    tie = cfg.get('tie_word_embeddings', d['tie_word_embeddings'])
    T = len(ids)
    pos = torch.arange(T)
    inv, att = rope_inv_freq(cfg, D, T)
    # which layers use RoPE, and which have a sliding window
    if t == 'smollm3':
        interval = cfg.get('no_rope_layer_interval', 4)
        use_rope = cfg.get('no_rope_layers') or [int((l + 1) % interval != 0) for l in range(L)]
    else:
        use_rope = [1] * L
    window = [None] * L
    # sliding_window: absent takes the class default, null means none
    sliding_window = cfg['sliding_window'] if 'sliding_window' in cfg else d.get('sliding_window')
    if t == 'mistral':
        window = [sliding_window] * L
    elif t in ('qwen2', 'qwen3', 'smollm3'):
        sw = sliding_window if cfg.get('use_sliding_window', False) else None
        types = cfg.get('layer_types')
        if types is None:
            if t == 'smollm3':
                types = ['sliding_attention' if (sw is not None and not use_rope[l]) else 'full_attention' for l in range(L)]
            else:
                types = ['sliding_attention' if (sw is not None and l >= get('max_window_layers')) else 'full_attention'
                         for l in range(L)]
        window = [sw if types[l] == 'sliding_attention' else None for l in range(L)]
    # biases: llama / qwen3 / smollm3 attention_bias (q, k, v, o); qwen2 q, k, v always; llama / smollm3 mlp_bias
    def lin(x, name):
        y = x @ w[name + '.weight'].T + lora_delta(lora, name, x)
        b = w.get(name + '.bias')
        return y if b is None else y + b

    x = w['model.embed_tokens.weight'][ids]
    for l in range(L):
        p = f'model.layers.{l}.'
        h = rms_norm(x, w[p + 'input_layernorm.weight'], eps)
        q = lin(h, p + 'self_attn.q_proj').view(T, H, D)
        k = lin(h, p + 'self_attn.k_proj').view(T, Hkv, D)
        v = lin(h, p + 'self_attn.v_proj').view(T, Hkv, D)
        if t == 'qwen3':
            q = rms_norm(q, w[p + 'self_attn.q_norm.weight'], eps)
            k = rms_norm(k, w[p + 'self_attn.k_norm.weight'], eps)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        if use_rope[l]:
            q = apply_rope(q, pos, inv, att)
            k = apply_rope(k, pos, inv, att)
        y = attend(q, k, v, D ** -0.5, window[l]).transpose(0, 1).reshape(T, H * D)
        x = x + lin(y, p + 'self_attn.o_proj')
        h = rms_norm(x, w[p + 'post_attention_layernorm.weight'], eps)
        x = x + lin(silu(lin(h, p + 'mlp.gate_proj')) * lin(h, p + 'mlp.up_proj'), p + 'mlp.down_proj')
    x = rms_norm(x, w['model.norm.weight'], eps)
    head = head_w if head_w is not None else (w['model.embed_tokens.weight'] if tie else w['lm_head.weight'])
    return x @ head.T


def gpt2_logits(cfg, w, ids, lora, head_w=None):
    w = {k[len('transformer.'):] if k.startswith('transformer.') else k: v for k, v in w.items()}
    C, H, L = cfg['n_embd'], cfg['n_head'], cfg['n_layer']
    eps = cfg.get('layer_norm_epsilon', 1e-5)
    T, D = len(ids), C // H

    def conv1d(x, name):  # HF Conv1D: weight (in, out); GPT2LMHeadModel's modules are transformer.<name>
        return x @ w[name + '.weight'] + w[name + '.bias'] + lora_delta(lora, 'transformer.' + name, x)

    x = w['wte.weight'][ids] + w['wpe.weight'][torch.arange(T)]
    for l in range(L):
        p = f'h.{l}.'
        qkv = conv1d(layer_norm(x, w[p + 'ln_1.weight'], w[p + 'ln_1.bias'], eps), p + 'attn.c_attn')
        q, k, v = (a.view(T, H, D).transpose(0, 1) for a in qkv.split(C, dim=-1))
        y = attend(q, k, v, D ** -0.5).transpose(0, 1).reshape(T, C)
        x = x + conv1d(y, p + 'attn.c_proj')
        h = layer_norm(x, w[p + 'ln_2.weight'], w[p + 'ln_2.bias'], eps)
        x = x + conv1d(gelu_tanh(conv1d(h, p + 'mlp.c_fc')), p + 'mlp.c_proj')
    x = layer_norm(x, w['ln_f.weight'], w['ln_f.bias'], eps)
    return x @ (head_w if head_w is not None else w['wte.weight']).T


def logits_of(cfg, w, ids, lora, head_w=None):
    ids = torch.tensor(ids, dtype=torch.long)
    return gpt2_logits(cfg, w, ids, lora, head_w) if cfg['model_type'] == 'gpt2' else decoder_logits(cfg, w, ids, lora, head_w)


def with_saved_modules(cfg, w, saved, ensure_tying):
    """The weights with modules_to_save's copies in place, and the LM head's weight when it stays on the original
    embedding (a tied head, ensure_weight_tying false), else None."""
    if cfg['model_type'] == 'gpt2':
        embed, tied = 'transformer.wte.weight', True
        if embed not in w:
            embed = 'wte.weight'
    else:
        embed = 'model.embed_tokens.weight'
        tied = cfg.get('tie_word_embeddings', DEFAULTS[cfg['model_type']]['tie_word_embeddings'])
    original = w[embed]
    w = dict(w)
    replaced = set()
    for name, t in saved.items():
        if cfg['model_type'] == 'gpt2' and name not in w:  # GPT2LMHeadModel's modules are transformer.<name>
            name = 'transformer.' + name if 'transformer.' + name in w else name[len('transformer.'):] if name.startswith('transformer.') else name
        if name not in w:
            raise ValueError(f'modules_to_save tensor {name} is not a weight of the base')
        if w[name].shape != t.shape:
            raise ValueError(f'modules_to_save tensor {name} has shape {list(t.shape)}, the base {list(w[name].shape)}')
        w[name] = t
        replaced.add(name)
    head_w = original if tied and embed in replaced and not ensure_tying else None
    return w, head_w


def run_job(job):
    cfg, w = read_folder(job['dir'])
    lora, head_w = {}, None
    if job.get('adapter'):
        lora, saved, ensure_tying = read_adapter(job['adapter'])
        w, head_w = with_saved_modules(cfg, w, saved, ensure_tying)
    results = []
    for prompt in job['prompts']:
        ids = list(prompt)
        margins = []
        for _ in range(job['steps']):
            last = logits_of(cfg, w, ids, lora, head_w)[-1]
            top = torch.topk(last, 2).values
            margins.append(float(top[0] - top[1]))
            ids.append(int(torch.argmax(last)))
        lp = torch.log_softmax(logits_of(cfg, w, ids, lora, head_w), dim=-1)
        logprobs = [float(lp[t, ids[t + 1]]) for t in range(len(ids) - 1)]
        results.append({'ids': ids, 'logprobs': logprobs, 'margins': margins})
    return {'results': results}


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    out = []
    for job in jobs:
        try:
            out.append(run_job(job))
        except Exception as e:  # reported per job, so one bad folder does not hide the others
            out.append({'error': f'{type(e).__name__}: {e}'})
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
