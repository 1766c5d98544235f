#!/usr/bin/python3
"""The independent PyTorch oracle for moelab's whole-model tests.

Written from the model and routing as docs/architecture.md ('The model') and docs/routing.md state them, with
nothing shared with the C++ engine: it reads a checkpoint folder (config.json + model.safetensors, Hugging Face
Mixtral names), runs the forward pass on a batch of tokens with autograd, and writes the logits, the losses and the
gradient of the total loss for every parameter. Routing: softmax gating, rule top_k, top_p (with max_k) or
top_k_then_softmax (the k largest logits weighted by a softmax over them),
granularity token, sequence or prefix, router learned, frozen or resampled (one forward; the router gradient is
written for all three), dropless; anything else is refused. Attention variants: model.head_dim (0 = d_model /
n_heads), q/k/v biases (model.qkv_bias), a q/k RMSNorm per head or over the whole projection (model.qk_norm) and
clamping of q, k, v (model.clip_qkv); FFN variants: fused shared experts, optionally sigmoid-gated
(moe.n_shared_experts, shared_expert_hidden, shared_expert_gate), and dense layers by index (moe.dense_layers).

  /usr/bin/python3 tests/oracle/torch_model.py --checkpoint DIR --tokens TOKENS.safetensors --out OUT.safetensors
                                               [--dtype float64|float32] [--threads N]
  /usr/bin/python3 tests/oracle/torch_model.py --self-test

Needs only the Debian packages python3-torch (1.13, CPU) and python3-numpy; safetensors is read and written by
hand. Any inconsistency (missing or extra tensor, wrong shape or dtype, bad config, token out of range) ends the
program with exit status 1 and a message naming the file and what was expected.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from safetensors_file import DTYPE_NUMPY, OracleError, SafetensorsFile, is_int


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array of float32/float64/int32/int64); written via a temp file + rename."""
    codes = {np.dtype("float64"): "F64", np.dtype("float32"): "F32", np.dtype("int64"): "I64",
             np.dtype("int32"): "I32"}
    header, blobs, offset = {}, [], 0
    for name, a in tensors:
        a = np.array(a, order="C", copy=False)  # keeps 0-d scalars 0-d (ascontiguousarray would not)
        code = codes[a.dtype]
        blob = a.astype(DTYPE_NUMPY[code], copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format's convention: data starts 8-byte aligned
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(len(text).to_bytes(8, "little"))
            f.write(text)
            for blob in blobs:
                f.write(blob)
        os.replace(tmp, path)
    except OSError as e:
        raise OracleError(f"file {path}: cannot write: {e.strerror}")


# ---------------------------------------------------------------------------------------------------------------
# config.json
# ---------------------------------------------------------------------------------------------------------------

# (section, key, type): the keys the oracle reads, all required. The checkpoint's config.json holds every field of
# moelab::Config; keys not listed here (data, train, init_std, ...) do not change the function computed.
_KEYS = [
    ("model", "vocab_size", int), ("model", "d_model", int), ("model", "n_layers", int),
    ("model", "n_heads", int), ("model", "n_kv_heads", int), ("model", "rope_theta", float),
    ("model", "rms_eps", float), ("model", "tie_embeddings", bool),
    ("model", "head_dim", int), ("model", "qk_norm", str), ("model", "qkv_bias", bool), ("model", "clip_qkv", float),
    ("moe", "n_experts", int), ("moe", "expert_hidden", int), ("moe", "first_dense_layers", int),
    ("moe", "moe_every", int), ("moe", "dense_hidden", int), ("moe", "dense_layers", list),
    ("moe", "n_shared_experts", int), ("moe", "shared_expert_hidden", int), ("moe", "shared_expert_gate", bool),
    ("routing", "top_k", int), ("routing", "renormalize", bool), ("routing", "load_balance_coef", float),
    ("routing", "z_loss_coef", float), ("routing", "dynamic_loss_coef", float),
    ("routing", "top_p", float), ("routing", "max_k", int), ("routing", "capacity_factor", float),
    ("routing", "router", str), ("routing", "gating", str), ("routing", "rule", str), ("routing", "granularity", str),
]
# Routing designs this oracle implements; a config naming another one is refused rather than silently misread.
# frozen and resampled routers compute the same function as learned (they differ only in how W_r is updated):
# the oracle writes the router gradient for them too, and the caller decides whether to compare it.
_QK_NORMS = ("none", "per_head", "whole")
_CHOICES = {"router": ("learned", "frozen", "resampled"), "gating": ("softmax",), "rule": ("top_k", "top_p", "top_k_then_softmax"),
            "granularity": ("token", "sequence", "prefix")}


def load_config(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as e:
        raise OracleError(f"config {path}: cannot read: {e.strerror}")
    except json.JSONDecodeError as e:
        raise OracleError(f"config {path}: not valid JSON: {e}")
    if not isinstance(raw, dict):
        raise OracleError(f"config {path}: expected a JSON object with sections model, moe, routing")
    cfg = {}
    for section, key, kind in _KEYS:
        sec = raw.get(section)
        if not isinstance(sec, dict):
            raise OracleError(f"config {path}: missing section '{section}'")
        if key not in sec:
            raise OracleError(f"config {path}: missing key '{section}.{key}'")
        v = sec[key]
        ok = {int: is_int(v), bool: isinstance(v, bool), str: isinstance(v, str),
              float: isinstance(v, (int, float)) and not isinstance(v, bool),
              list: isinstance(v, list) and all(is_int(e) for e in v)}[kind]
        if not ok:
            expected = "a list of int" if kind is list else kind.__name__
            raise OracleError(f"config {path}: key '{section}.{key}': expected {expected}, found {v!r}")
        cfg[key] = kind(v)
    for key, allowed in _CHOICES.items():
        if cfg[key] not in allowed:
            raise OracleError(f"config {path}: routing.{key} = {cfg[key]!r}: the oracle implements only "
                              + ", ".join(repr(a) for a in allowed))
    if cfg["capacity_factor"] != 0:
        raise OracleError(f"config {path}: routing.capacity_factor = {cfg['capacity_factor']!r}: the oracle "
                          f"implements only dropless routing (0)")

    def need(cond, what):
        if not cond:
            raise OracleError(f"config {path}: {what}")

    if cfg["n_kv_heads"] == 0:
        cfg["n_kv_heads"] = cfg["n_heads"]
    if cfg["dense_hidden"] == 0:
        cfg["dense_hidden"] = cfg["expert_hidden"] * cfg["top_k"]
    for key in ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "n_experts", "expert_hidden",
                "dense_hidden", "moe_every"):
        need(cfg[key] >= 1, f"{key} = {cfg[key]} must be >= 1")
    need(cfg["first_dense_layers"] >= 0, "moe.first_dense_layers must be >= 0")
    need(cfg["head_dim"] >= 0, f"model.head_dim = {cfg['head_dim']} must be >= 0 (0: d_model / n_heads)")
    if cfg["head_dim"] == 0:  # from here on cfg["head_dim"] is the width actually used
        need(cfg["d_model"] % cfg["n_heads"] == 0,
             f"model.d_model = {cfg['d_model']} is not divisible by model.n_heads = {cfg['n_heads']} "
             f"(model.head_dim = 0)")
        cfg["head_dim"] = cfg["d_model"] // cfg["n_heads"]
    need(cfg["head_dim"] % 2 == 0, f"model.head_dim: the head dimension {cfg['head_dim']} must be even (RoPE)")
    need(cfg["qk_norm"] in _QK_NORMS, f"model.qk_norm = {cfg['qk_norm']!r}: expected one of "
         + ", ".join(repr(a) for a in _QK_NORMS))
    need(cfg["clip_qkv"] >= 0 and math.isfinite(cfg["clip_qkv"]),
         f"model.clip_qkv = {cfg['clip_qkv']} must be finite and >= 0 (0: off)")
    need(cfg["n_shared_experts"] >= 0, f"moe.n_shared_experts = {cfg['n_shared_experts']} must be >= 0")
    need(cfg["shared_expert_hidden"] >= 0,
         f"moe.shared_expert_hidden = {cfg['shared_expert_hidden']} must be >= 0 (0: moe.expert_hidden)")
    # The shared experts as the one fused SwiGLU they are: hidden n_shared_experts x (shared_expert_hidden or
    # expert_hidden); 0 = none (and then there is no shared-expert gate either).
    cfg["shared_hidden"] = cfg["n_shared_experts"] * (cfg["shared_expert_hidden"] or cfg["expert_hidden"])
    bad = [i for i in cfg["dense_layers"] if not 0 <= i < cfg["n_layers"]]
    need(not bad, f"moe.dense_layers: layer {bad[0] if bad else 0} outside [0, model.n_layers = {cfg['n_layers']})")
    need(cfg["n_heads"] % cfg["n_kv_heads"] == 0,
         f"model.n_heads = {cfg['n_heads']} is not divisible by model.n_kv_heads = {cfg['n_kv_heads']}")
    need(1 <= cfg["top_k"] <= cfg["n_experts"],
         f"routing.top_k = {cfg['top_k']} must be in [1, moe.n_experts = {cfg['n_experts']}]")
    need(0 < cfg["top_p"] <= 1, f"routing.top_p = {cfg['top_p']} must be in (0, 1]")
    need(0 <= cfg["max_k"] <= cfg["n_experts"],
         f"routing.max_k = {cfg['max_k']} must be in [0, moe.n_experts = {cfg['n_experts']}]")
    need(cfg["rms_eps"] > 0, "model.rms_eps must be > 0")
    need(cfg["rope_theta"] > 0, "model.rope_theta must be > 0")
    return cfg


def is_moe_layer(cfg, i):
    return (i >= cfg["first_dense_layers"] and (i - cfg["first_dense_layers"]) % cfg["moe_every"] == 0
            and i not in cfg["dense_layers"])


def param_specs(cfg):
    """Every parameter as (name, shape), in checkpoint order."""
    V, d, H, Hkv = cfg["vocab_size"], cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
    hd, h, hdense, E = cfg["head_dim"], cfg["expert_hidden"], cfg["dense_hidden"], cfg["n_experts"]
    hs = cfg["shared_hidden"]
    specs = [("model.embed_tokens.weight", (V, d))]
    for i in range(cfg["n_layers"]):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        specs.append((p + "input_layernorm.weight", (d,)))
        for proj, rows in (("q_proj", H * hd), ("k_proj", Hkv * hd), ("v_proj", Hkv * hd)):
            specs.append((a + proj + ".weight", (rows, d)))
            if cfg["qkv_bias"]:
                specs.append((a + proj + ".bias", (rows,)))
        specs.append((a + "o_proj.weight", (d, H * hd)))
        if cfg["qk_norm"] == "per_head":  # one gain vector shared by all heads (Qwen3)
            specs += [(a + "q_norm.weight", (hd,)), (a + "k_norm.weight", (hd,))]
        elif cfg["qk_norm"] == "whole":  # over each token's whole projection (OLMoE)
            specs += [(a + "q_norm.weight", (H * hd,)), (a + "k_norm.weight", (Hkv * hd,))]
        specs.append((p + "post_attention_layernorm.weight", (d,)))
        if is_moe_layer(cfg, i):
            specs.append((p + "block_sparse_moe.gate.weight", (E, d)))
            for j in range(E):
                q = p + f"block_sparse_moe.experts.{j}."
                specs += [(q + "w1.weight", (h, d)), (q + "w2.weight", (d, h)), (q + "w3.weight", (h, d))]
            if hs > 0:
                q = p + "block_sparse_moe.shared_experts."
                specs += [(q + "gate_proj.weight", (hs, d)), (q + "up_proj.weight", (hs, d)),
                          (q + "down_proj.weight", (d, hs))]
                if cfg["shared_expert_gate"]:
                    specs.append((p + "block_sparse_moe.shared_expert_gate.weight", (1, d)))
        else:
            specs += [(p + "mlp.gate_proj.weight", (hdense, d)), (p + "mlp.up_proj.weight", (hdense, d)),
                      (p + "mlp.down_proj.weight", (d, hdense))]
    specs.append(("model.norm.weight", (d,)))
    if not cfg["tie_embeddings"]:
        specs.append(("lm_head.weight", (V, d)))
    return specs


def load_params(path, cfg, dtype):
    """The checkpoint's F32 tensors as leaf tensors of `dtype` requiring gradients; exactly the expected set."""
    st = SafetensorsFile(path)
    specs = param_specs(cfg)
    expected = {name for name, _ in specs}
    extra = sorted(set(st.names()) - expected)
    if extra:
        raise OracleError(f"file {path}: unexpected tensor '{extra[0]}' for this config "
                          f"({len(extra)} unexpected in all)")
    params = {}
    for name, shape in specs:
        a = st.read(name, "F32", shape)
        params[name] = torch.from_numpy(a).to(dtype).requires_grad_(True)
    return params


def load_tokens(path, vocab_size):
    st = SafetensorsFile(path)
    if "tokens" not in st.entries:
        raise OracleError(f"file {path}: missing tensor 'tokens'")
    a = st.read("tokens", "I32", None)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 2:
        raise OracleError(f"file {path}: tensor 'tokens': expected shape [B, T+1] with B >= 1 and T >= 1, "
                          f"found {list(a.shape)}")
    if a.min() < 0 or a.max() >= vocab_size:
        bad = int(a.min()) if a.min() < 0 else int(a.max())
        raise OracleError(f"file {path}: tensor 'tokens': token id {bad} outside [0, vocab_size = {vocab_size})")
    return torch.from_numpy(a.astype(np.int64))


# ---------------------------------------------------------------------------------------------------------------
# The model, written plainly from the math
# ---------------------------------------------------------------------------------------------------------------

def rms_norm(x, w, eps):
    return w * x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)


def rope(x, theta):
    """x [B, heads, T, hd]: the pair (x[i], x[i + hd/2]) at position t rotates by t * theta^(-2i/hd)."""
    T, hd = x.shape[2], x.shape[3]
    # Angles in float64 whatever the run dtype, so that float32 runs see correctly rounded cos/sin.
    inv_freq = theta ** (-2.0 * torch.arange(hd // 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], dim=-1).to(x.dtype)
    sin = torch.cat([ang.sin(), ang.sin()], dim=-1).to(x.dtype)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def attention(u, params, p, cfg, stats=None):
    """Projections (+ biases) -> q/k RMSNorm (per head or over the whole row) -> clamp of q, k, v to
    [-clip_qkv, clip_qkv] -> RoPE on q and k -> causal attention -> o_proj. stats, a dict, counts the clamped
    values of q, k and v ('clipped_q', ...) and all of them ('qkv_values')."""
    B, T, _ = u.shape
    H, Hkv, hd, eps = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"], cfg["rms_eps"]
    a = p + "self_attn."

    def project(name):
        y = u @ params[a + name + ".weight"].T
        return y + params[a + name + ".bias"] if cfg["qkv_bias"] else y

    q, k, v = project("q_proj"), project("k_proj"), project("v_proj")  # [B, T, heads * hd]
    if cfg["qk_norm"] == "whole":
        q, k = rms_norm(q, params[a + "q_norm.weight"], eps), rms_norm(k, params[a + "k_norm.weight"], eps)
    q, k, v = q.view(B, T, H, hd), k.view(B, T, Hkv, hd), v.view(B, T, Hkv, hd)
    if cfg["qk_norm"] == "per_head":
        q, k = rms_norm(q, params[a + "q_norm.weight"], eps), rms_norm(k, params[a + "k_norm.weight"], eps)
    if cfg["clip_qkv"] > 0:
        c = cfg["clip_qkv"]
        if stats is not None:
            for n, t in (("q", q), ("k", k), ("v", v)):
                stats[f"clipped_{n}"] = stats.get(f"clipped_{n}", 0) + int((t.detach().abs() > c).sum())
            stats["qkv_values"] = stats.get("qkv_values", 0) + q.numel() + k.numel() + v.numel()
        q, k, v = q.clamp(-c, c), k.clamp(-c, c), v.clamp(-c, c)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    q, k = rope(q, cfg["rope_theta"]), rope(k, cfg["rope_theta"])
    # Query head h reads kv head h // (H / Hkv): repeat_interleave lays kv heads out in exactly that order.
    k = k.repeat_interleave(H // Hkv, dim=1)
    v = v.repeat_interleave(H // Hkv, dim=1)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v  # [B, H, T, hd]
    return out.transpose(1, 2).reshape(B, T, H * hd) @ params[a + "o_proj.weight"].T


def swiglu(u, w_gate, w_up, w_down):
    return (F.silu(u @ w_gate.T) * (u @ w_up.T)) @ w_down.T


def select_top_k(prob, k):
    """The k largest probabilities per row, ties to the lower expert index: (indices [N,k], values [N,k])."""
    order = torch.sort(prob, dim=-1, descending=True, stable=True).indices[:, :k]
    return order, prob.gather(1, order)


def select_top_p(prob, p, max_k):
    """Paper 2's rule as a bool mask [R, E]: in descending order of probability (ties to the lower expert index),
    keep every expert up to and including the first at which the cumulative sum becomes strictly greater than p;
    the top-1 is always kept; max_k > 0 keeps at most max_k."""
    prob = prob.detach()
    order = torch.sort(prob, dim=-1, descending=True, stable=True).indices
    cum = prob.gather(1, order).cumsum(dim=-1)
    before = torch.cat([torch.zeros_like(cum[:, :1]), cum[:, :-1]], dim=1)  # mass of the experts sorted ahead
    keep = before <= p  # not yet strictly past p: this one is kept (the first one always: 0 <= p)
    keep[:, 0] = True
    if max_k > 0:
        keep[:, max_k:] = False
    return torch.zeros_like(keep).scatter(1, order, keep)


def router_input(u, granularity):
    """u [B, T, d] -> the router's input rows: [B*T, d] for token and prefix granularity, [B, d] for sequence."""
    B, T, d = u.shape
    if granularity == "sequence":
        return u.mean(dim=1)
    if granularity == "prefix":
        return (u.cumsum(dim=1) / torch.arange(1, T + 1, dtype=u.dtype)[None, :, None]).reshape(B * T, d)
    return u.reshape(B * T, d)


def moe_ffn(u, params, p, cfg, trace=None):
    """u [B, T, d] -> (out [B, T, d], load-balance loss, z-loss, entropy) for one MoE layer, experts run on their
    tokens only. The router sees router_input(u); the experts and the shared experts see each token's own u."""
    B, T, d = u.shape
    E, k = cfg["n_experts"], cfg["top_k"]
    logits_r = router_input(u, cfg["granularity"]) @ params[p + "block_sparse_moe.gate.weight"].T  # [R, E]
    R = logits_r.shape[0]
    logp = torch.log_softmax(logits_r, dim=-1)
    prob = torch.softmax(logits_r, dim=-1)
    if cfg["rule"] == "top_k":
        idx, _ = select_top_k(prob, k)
        mask = torch.zeros(prob.shape, dtype=torch.bool).scatter(1, idx, True)
        w = prob * mask.to(prob.dtype)
        if cfg["renormalize"]:
            w = w / w.sum(dim=-1, keepdim=True)
        divisor = k
    elif cfg["rule"] == "top_k_then_softmax":  # the k largest logits, each weighted by a softmax over those k
        idx, _ = select_top_k(logits_r, k)
        mask = torch.zeros(prob.shape, dtype=torch.bool).scatter(1, idx, True)
        w = torch.softmax(logits_r.masked_fill(~mask, -math.inf), dim=-1)
        divisor = k
    else:  # top_p: the raw full-softmax probabilities, never renormalised
        mask = select_top_p(prob, cfg["top_p"], cfg["max_k"])
        w = prob * mask.to(prob.dtype)
        divisor = 1
    if trace is not None:
        trace.append((prob.detach(), mask))
    mask_tok, w_tok = mask, w
    if cfg["granularity"] == "sequence":  # row b serves the T tokens b*T .. b*T+T-1
        mask_tok, w_tok = mask.repeat_interleave(T, dim=0), w.repeat_interleave(T, dim=0)
    x = u.reshape(B * T, d)
    out = torch.zeros_like(x)
    for e in range(E):
        rows = mask_tok[:, e].nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        q = p + f"block_sparse_moe.experts.{e}."
        y = swiglu(x[rows], params[q + "w1.weight"], params[q + "w3.weight"], params[q + "w2.weight"])
        out = out.index_add(0, rows, w_tok[rows, e][:, None] * y)
    if cfg["shared_hidden"] > 0:  # one fused SwiGLU on every token, optionally scaled by sigmoid(u . w_gate)
        s = p + "block_sparse_moe.shared_experts."
        y = swiglu(x, params[s + "gate_proj.weight"], params[s + "up_proj.weight"], params[s + "down_proj.weight"])
        if cfg["shared_expert_gate"]:
            y = torch.sigmoid(x @ params[p + "block_sparse_moe.shared_expert_gate.weight"].T) * y  # [N, 1] * [N, d]
        out = out + y
    f = mask.sum(dim=0).to(u.dtype) / (R * divisor)  # a count: no gradient
    lb = E * (f * prob.mean(dim=0)).sum()
    z = torch.logsumexp(logits_r, dim=-1).pow(2).mean()
    entropy = -(prob * logp).sum(dim=-1).mean()
    return out.view(B, T, d), lb, z, entropy


def forward(params, cfg, tokens, trace=None, stats=None):
    """tokens [B, T+1] -> dict of logits [B,T,V], ce, load_balance, z, entropy, loss (tensors of the params' dtype).
    trace, a list, gets (probabilities, kept mask) of every MoE layer's router rows; stats, a dict, the clip_qkv
    counts of attention()."""
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    B, T = inputs.shape
    d, eps = cfg["d_model"], cfg["rms_eps"]
    embed = params["model.embed_tokens.weight"]
    x = embed[inputs]
    lbs, zs, hs = [], [], []
    for i in range(cfg["n_layers"]):
        p = f"model.layers.{i}."
        x = x + attention(rms_norm(x, params[p + "input_layernorm.weight"], eps), params, p, cfg, stats)
        u = rms_norm(x, params[p + "post_attention_layernorm.weight"], eps)
        if is_moe_layer(cfg, i):
            y, lb, z, h = moe_ffn(u, params, p, cfg, trace)
            x = x + y
            lbs.append(lb)
            zs.append(z)
            hs.append(h)
        else:
            x = x + swiglu(u, params[p + "mlp.gate_proj.weight"], params[p + "mlp.up_proj.weight"],
                           params[p + "mlp.down_proj.weight"])
    x = rms_norm(x, params["model.norm.weight"], eps)
    head = embed if cfg["tie_embeddings"] else params["lm_head.weight"]
    logits = x @ head.T
    ce = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1))
    zero = torch.zeros((), dtype=x.dtype)
    lb = torch.stack(lbs).mean() if lbs else zero
    z = torch.stack(zs).mean() if zs else zero
    h = torch.stack(hs).mean() if hs else zero
    loss = ce + cfg["load_balance_coef"] * lb + cfg["z_loss_coef"] * z + cfg["dynamic_loss_coef"] * h
    return {"logits": logits, "ce_loss": ce, "load_balance_loss": lb, "z_loss": z, "entropy_loss": h, "loss": loss}


_OUTPUTS = ("logits", "loss", "ce_loss", "load_balance_loss", "z_loss", "entropy_loss")


def run_oracle(checkpoint, tokens_path, out_path, dtype_name):
    dtype = {"float64": torch.float64, "float32": torch.float32}[dtype_name]
    cfg = load_config(os.path.join(checkpoint, "config.json"))
    params = load_params(os.path.join(checkpoint, "model.safetensors"), cfg, dtype)
    tokens = load_tokens(tokens_path, cfg["vocab_size"])
    res = forward(params, cfg, tokens)
    res["loss"].backward()
    out = [(name, res[name].detach().numpy()) for name in _OUTPUTS]
    for name, _ in param_specs(cfg):
        g = params[name].grad
        out.append(("grad." + name, (g if g is not None else torch.zeros_like(params[name])).numpy()))
    write_safetensors(out_path, out, {"producer": "moelab tests/oracle/torch_model.py", "dtype": dtype_name})


# ---------------------------------------------------------------------------------------------------------------
# --self-test
# ---------------------------------------------------------------------------------------------------------------

def forward_alt(params, cfg, tokens):
    """A deliberately different formulation of the same function: one-hot embedding, per-head slices of the
    projections (a whole-row q/k norm from the heads' summed squares), clip_qkv by torch.where, an explicit
    rotation matrix for RoPE, a loop over query heads, every expert run on every token weighted by a dense [N, E]
    gate matrix built from ranks, the fused shared experts as a sum over their n_shared_experts blocks, the MoE
    layers as a set, cross-entropy as logsumexp minus the target logit. Only for the self-test."""
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    B, T = inputs.shape
    d, V, H, Hkv, E, k = (cfg[n] for n in ("d_model", "vocab_size", "n_heads", "n_kv_heads", "n_experts", "top_k"))
    hd, eps, dt = cfg["head_dim"], cfg["rms_eps"], params["model.embed_tokens.weight"].dtype
    moe_layers = set(range(cfg["first_dense_layers"], cfg["n_layers"], cfg["moe_every"])) - set(cfg["dense_layers"])

    def norm(x, w):
        return x / torch.sqrt((x * x).sum(dim=-1, keepdim=True) / x.shape[-1] + eps) * w

    def clip(x):  # equal to clamp, and to its gradient away from +-clip_qkv
        c = cfg["clip_qkv"]
        return torch.where(x.abs() > c, c * torch.sign(x), x) if c > 0 else x

    def head_slices(u, name, n, li):
        """The n heads' [B, T, hd] projections of u, each from its own rows of the weight (and bias)."""
        a = f"model.layers.{li}.self_attn.{name}."
        w, b = params[a + "weight"], params.get(a + "bias")
        return [u @ w[j * hd:(j + 1) * hd].T + (b[j * hd:(j + 1) * hd] if cfg["qkv_bias"] else 0) for j in range(n)]

    def qk_norm(slices, w):
        if cfg["qk_norm"] == "per_head":
            return [norm(s, w) for s in slices]
        if cfg["qk_norm"] == "whole":
            ms = sum((s * s).sum(dim=-1, keepdim=True) for s in slices) / (len(slices) * hd)
            return [s / torch.sqrt(ms + eps) * w[j * hd:(j + 1) * hd] for j, s in enumerate(slices)]
        return slices

    # R[t] maps a head vector to its rotated self at position t.
    R = torch.zeros(T, hd, hd, dtype=torch.float64)
    for t in range(T):
        for i in range(hd // 2):
            a = t / cfg["rope_theta"] ** (2.0 * i / hd)
            c, s = math.cos(a), math.sin(a)
            R[t, i, i], R[t, i, i + hd // 2], R[t, i + hd // 2, i + hd // 2], R[t, i + hd // 2, i] = c, -s, c, s
    R = R.to(dt)
    future = torch.arange(T)[None, :] > torch.arange(T)[:, None]

    x = F.one_hot(inputs, V).to(dt) @ params["model.embed_tokens.weight"]
    lbs, zs, hs = [], [], []
    for li in range(cfg["n_layers"]):
        p = f"model.layers.{li}."
        u = norm(x, params[p + "input_layernorm.weight"])
        qs = qk_norm(head_slices(u, "q_proj", H, li), params.get(p + "self_attn.q_norm.weight"))
        ks = qk_norm(head_slices(u, "k_proj", Hkv, li), params.get(p + "self_attn.k_norm.weight"))
        vs = head_slices(u, "v_proj", Hkv, li)
        heads = []
        for h in range(H):
            g = h // (H // Hkv)
            q, kk, vv = clip(qs[h]), clip(ks[g]), clip(vs[g])  # [B, T, hd]
            q = torch.einsum("tij,btj->bti", R, q)
            kk = torch.einsum("tij,btj->bti", R, kk)
            s = torch.einsum("bti,bsi->bts", q, kk) / math.sqrt(hd)
            s = s.masked_fill(future, -1e300 if dt == torch.float64 else -1e30)
            e = torch.exp(s - s.max(dim=-1, keepdim=True).values)
            heads.append((e / e.sum(dim=-1, keepdim=True)) @ vv)
        x = x + torch.cat(heads, dim=-1) @ params[p + "self_attn.o_proj.weight"].T
        u = norm(x, params[p + "post_attention_layernorm.weight"]).reshape(B * T, d)
        if li in moe_layers:
            # Every token gets its own router row: A mixes positions (identity, running mean, whole-sequence mean).
            # Under sequence granularity the T rows of a sequence are equal, so means over the B*T rows are the
            # means over the B sequences.
            A = {"token": torch.eye(T, dtype=dt),
                 "prefix": torch.ones(T, T, dtype=dt).tril() / torch.arange(1, T + 1, dtype=dt)[:, None],
                 "sequence": torch.full((T, T), 1.0 / T, dtype=dt)}[cfg["granularity"]]
            rin = torch.einsum("ts,bsd->btd", A, u.view(B, T, d)).reshape(B * T, d)
            lr = rin @ params[p + "block_sparse_moe.gate.weight"].T
            m = lr.max(dim=-1, keepdim=True).values
            lse = (m + torch.log(torch.exp(lr - m).sum(dim=-1, keepdim=True))).squeeze(-1)
            prob = torch.exp(lr - lse[:, None])
            # Expert i is beaten by j if j has a higher probability, or an equal one and a lower index.
            pi, pj = prob.detach()[:, :, None], prob.detach()[:, None, :]
            lower = torch.arange(E)[None, :] < torch.arange(E)[:, None]  # [i, j]: j < i
            beats = (pj > pi) | ((pj == pi) & lower[None])
            rank = beats.sum(dim=-1)  # [N, E]
            if cfg["rule"] == "top_k":
                mask = (rank < k).to(dt)  # kept iff fewer than k experts beat it
                gates = prob * mask
                if cfg["renormalize"]:
                    gates = gates / gates.sum(dim=-1, keepdim=True)
                divisor = k
            elif cfg["rule"] == "top_k_then_softmax":
                # Ranks by probability are ranks by logit; the kept logits' exponentials, normalised over them.
                mask = (rank < k).to(dt)
                gates = torch.exp(lr - m) * mask
                gates = gates / gates.sum(dim=-1, keepdim=True)
                divisor = k
            else:
                # Kept iff the experts that beat it hold at most top_p of the mass (and within max_k of the top).
                ahead = (beats.to(dt) * pj).sum(dim=-1)
                keep = (ahead <= cfg["top_p"]) | (rank == 0)
                if cfg["max_k"] > 0:
                    keep = keep & (rank < cfg["max_k"])
                mask = keep.to(dt)
                gates = prob * mask
                divisor = 1
            y = torch.zeros_like(u)
            for j in range(E):
                q = p + f"block_sparse_moe.experts.{j}."
                hid = F.silu(u @ params[q + "w1.weight"].T) * (u @ params[q + "w3.weight"].T)
                y = y + gates[:, j:j + 1] * (hid @ params[q + "w2.weight"].T)
            if cfg["n_shared_experts"] > 0:  # the fused MLP as the sum of its n_shared_experts blocks of rows
                q = p + "block_sparse_moe.shared_experts."
                hb = cfg["shared_hidden"] // cfg["n_shared_experts"]
                ys = torch.zeros_like(u)
                for j in range(cfg["n_shared_experts"]):
                    rows = slice(j * hb, (j + 1) * hb)
                    hid = F.silu(u @ params[q + "gate_proj.weight"][rows].T) * (
                        u @ params[q + "up_proj.weight"][rows].T)
                    ys = ys + hid @ params[q + "down_proj.weight"][:, rows].T
                if cfg["shared_expert_gate"]:
                    s = (u * params[p + "block_sparse_moe.shared_expert_gate.weight"][0]).sum(dim=-1, keepdim=True)
                    ys = ys / (1 + torch.exp(-s))
                y = y + ys
            lbs.append(E * (mask.sum(dim=0) / (B * T * divisor) * prob.sum(dim=0) / (B * T)).sum())
            zs.append((lse * lse).sum() / (B * T))
            hs.append(-(prob * (lr - lse[:, None])).sum() / (B * T))
        else:
            hid = F.silu(u @ params[p + "mlp.gate_proj.weight"].T) * (u @ params[p + "mlp.up_proj.weight"].T)
            y = hid @ params[p + "mlp.down_proj.weight"].T
        x = x + y.view(B, T, d)
    x = norm(x, params["model.norm.weight"])
    logits = x @ (params["model.embed_tokens.weight"] if cfg["tie_embeddings"] else params["lm_head.weight"]).T
    flat = logits.reshape(B * T, V)
    target_logit = (flat * F.one_hot(targets.reshape(-1), V).to(dt)).sum(dim=-1)
    ce = (torch.logsumexp(flat, dim=-1) - target_logit).mean()
    lb = sum(lbs) / len(lbs) if lbs else torch.zeros((), dtype=dt)
    z = sum(zs) / len(zs) if zs else torch.zeros((), dtype=dt)
    h = sum(hs) / len(hs) if hs else torch.zeros((), dtype=dt)
    loss = ce + cfg["load_balance_coef"] * lb + cfg["z_loss_coef"] * z + cfg["dynamic_loss_coef"] * h
    return {"logits": logits, "ce_loss": ce, "load_balance_loss": lb, "z_loss": z, "entropy_loss": h, "loss": loss}


_SELF_TEST_CASES = [
    # GQA 4 query heads on 2 kv heads, layers dense/MoE/dense/MoE, renormalized top-2 of 4, untied head.
    {"model": {"vocab_size": 11, "d_model": 16, "n_layers": 4, "n_heads": 4, "n_kv_heads": 2, "rope_theta": 10000.0,
               "rms_eps": 1e-6, "tie_embeddings": False},
     "moe": {"n_experts": 4, "expert_hidden": 6, "first_dense_layers": 1, "moe_every": 2, "dense_hidden": 0},
     "routing": {"top_k": 2, "renormalize": True, "load_balance_coef": 0.3, "z_loss_coef": 0.05},
     "batch": (3, 7)},
    # GQA 3 query heads on 1 kv head, dense then two MoE layers, raw top-3 of 5, tied embeddings.
    {"model": {"vocab_size": 13, "d_model": 18, "n_layers": 3, "n_heads": 3, "n_kv_heads": 1, "rope_theta": 500.0,
               "rms_eps": 1e-5, "tie_embeddings": True},
     "moe": {"n_experts": 5, "expert_hidden": 7, "first_dense_layers": 1, "moe_every": 1, "dense_hidden": 9},
     "routing": {"top_k": 3, "renormalize": False, "load_balance_coef": 0.2, "z_loss_coef": 0.1,
                 "dynamic_loss_coef": 0.03},
     "batch": (3, 5)},
    # top-p 0.6 without a cap per token, frozen router; renormalize = true must be ignored under top-p.
    {"model": {"vocab_size": 11, "d_model": 16, "n_layers": 3, "n_heads": 4, "n_kv_heads": 2, "rope_theta": 10000.0,
               "rms_eps": 1e-6, "tie_embeddings": False},
     "moe": {"n_experts": 5, "expert_hidden": 6, "first_dense_layers": 1, "moe_every": 1, "dense_hidden": 0},
     "routing": {"top_k": 2, "renormalize": True, "load_balance_coef": 0.3, "z_loss_coef": 0.05,
                 "dynamic_loss_coef": 0.1, "rule": "top_p", "top_p": 0.6, "max_k": 0, "router": "frozen"},
     "batch": (3, 6)},
    # top-p 0.7 capped at max_k = 2, prefix granularity (running mean), resampled router.
    {"model": {"vocab_size": 13, "d_model": 16, "n_layers": 3, "n_heads": 2, "n_kv_heads": 2, "rope_theta": 500.0,
               "rms_eps": 1e-5, "tie_embeddings": True},
     "moe": {"n_experts": 4, "expert_hidden": 5, "first_dense_layers": 0, "moe_every": 2, "dense_hidden": 8},
     "routing": {"top_k": 1, "renormalize": False, "load_balance_coef": 0.2, "z_loss_coef": 0.1,
                 "dynamic_loss_coef": 0.05, "rule": "top_p", "top_p": 0.7, "max_k": 2, "granularity": "prefix",
                 "router": "resampled"},
     "batch": (3, 6)},
    # Renormalised top-2 of 4 at sequence granularity: one expert set per sequence, from its mean router input.
    {"model": {"vocab_size": 11, "d_model": 16, "n_layers": 3, "n_heads": 4, "n_kv_heads": 1, "rope_theta": 10000.0,
               "rms_eps": 1e-6, "tie_embeddings": False},
     "moe": {"n_experts": 4, "expert_hidden": 6, "first_dense_layers": 1, "moe_every": 1, "dense_hidden": 0},
     "routing": {"top_k": 2, "renormalize": True, "load_balance_coef": 0.3, "z_loss_coef": 0.05,
                 "dynamic_loss_coef": 0.05, "granularity": "sequence"},
     "batch": (5, 5)},
    # top-p 0.8 capped at 3 of 5 at sequence granularity.
    {"model": {"vocab_size": 13, "d_model": 18, "n_layers": 2, "n_heads": 3, "n_kv_heads": 3, "rope_theta": 10000.0,
               "rms_eps": 1e-6, "tie_embeddings": False},
     "moe": {"n_experts": 5, "expert_hidden": 5, "first_dense_layers": 1, "moe_every": 1, "dense_hidden": 0},
     "routing": {"top_k": 2, "renormalize": False, "load_balance_coef": 0.3, "z_loss_coef": 0.05,
                 "dynamic_loss_coef": 0.2, "rule": "top_p", "top_p": 0.8, "max_k": 3, "granularity": "sequence"},
     "batch": (8, 4)},
    # Top-2 of 5 by logit, weighted by a softmax over the two (GPT-OSS), prefix granularity; renormalize = false
    # must be ignored under this rule.
    {"model": {"vocab_size": 11, "d_model": 16, "n_layers": 3, "n_heads": 4, "n_kv_heads": 2, "rope_theta": 10000.0,
               "rms_eps": 1e-6, "tie_embeddings": False},
     "moe": {"n_experts": 5, "expert_hidden": 6, "first_dense_layers": 1, "moe_every": 1, "dense_hidden": 0},
     "routing": {"top_k": 2, "renormalize": False, "load_balance_coef": 0.3, "z_loss_coef": 0.05,
                 "dynamic_loss_coef": 0.05, "rule": "top_k_then_softmax", "granularity": "prefix"},
     "batch": (3, 6)},
    # Heads of 6 (head_dim 6, not d_model / n_heads = 4) with a per-head q/k RMSNorm (Qwen3), GQA 4 on 2.
    {"model": {"vocab_size": 11, "d_model": 16, "n_layers": 3, "n_heads": 4, "n_kv_heads": 2, "rope_theta": 10000.0,
               "rms_eps": 1e-6, "tie_embeddings": False, "head_dim": 6, "qk_norm": "per_head"},
     "moe": {"n_experts": 4, "expert_hidden": 6, "first_dense_layers": 1, "moe_every": 1, "dense_hidden": 0},
     "routing": {"top_k": 2, "renormalize": True, "load_balance_coef": 0.3, "z_loss_coef": 0.05,
                 "dynamic_loss_coef": 0.05},
     "batch": (3, 6)},
    # A q/k RMSNorm over each token's whole projection and clip_qkv = 1.2, which clips some q, k and v (OLMoE);
    # one ungated shared expert of expert_hidden; tied embeddings, top-p.
    {"model": {"vocab_size": 13, "d_model": 18, "n_layers": 3, "n_heads": 3, "n_kv_heads": 1, "rope_theta": 500.0,
               "rms_eps": 1e-5, "tie_embeddings": True, "qk_norm": "whole", "clip_qkv": 1.2},
     "moe": {"n_experts": 5, "expert_hidden": 5, "first_dense_layers": 1, "moe_every": 1, "dense_hidden": 0,
             "n_shared_experts": 1},
     "routing": {"top_k": 2, "renormalize": False, "load_balance_coef": 0.2, "z_loss_coef": 0.1,
                 "dynamic_loss_coef": 0.05, "rule": "top_p", "top_p": 0.6},
     "batch": (3, 6)},
    # q/k/v biases (Qwen2), two shared experts of 4 fused into one MLP of 8 under a sigmoid gate (Qwen2-MoE), and
    # layer 2 dense by moe.dense_layers where first_dense_layers 0 / moe_every 1 make every layer MoE.
    {"model": {"vocab_size": 11, "d_model": 16, "n_layers": 4, "n_heads": 4, "n_kv_heads": 2, "rope_theta": 10000.0,
               "rms_eps": 1e-6, "tie_embeddings": False, "head_dim": 4, "qkv_bias": True},
     "moe": {"n_experts": 4, "expert_hidden": 5, "first_dense_layers": 0, "moe_every": 1, "dense_hidden": 7,
             "n_shared_experts": 2, "shared_expert_hidden": 4, "shared_expert_gate": True, "dense_layers": [2]},
     "routing": {"top_k": 2, "renormalize": True, "load_balance_coef": 0.3, "z_loss_coef": 0.05,
                 "dynamic_loss_coef": 0.05, "granularity": "prefix"},
     "batch": (3, 6)},
]

# The attention and FFN variants' defaults: off (what the engine writes for a plain Mixtral-style model).
_VARIANT_DEFAULTS = {"model": {"head_dim": 0, "qk_norm": "none", "qkv_bias": False, "clip_qkv": 0.0},
                     "moe": {"n_shared_experts": 0, "shared_expert_hidden": 0, "shared_expert_gate": False,
                             "dense_layers": []}}


def _full_config(case):
    """A config.json as the engine writes it: the oracle's keys plus the fixed routing choices and other fields."""
    cfg = {s: dict(case[s]) for s in ("model", "moe", "routing")}
    cfg["model"].update({"init_std": 0.02, "max_seq_len": 64})
    for section, defaults in _VARIANT_DEFAULTS.items():
        for key, v in defaults.items():
            cfg[section].setdefault(key, v)
    for key, v in {"router": "learned", "gating": "softmax", "rule": "top_k", "granularity": "token",
                   "capacity_factor": 0.0, "top_p": 0.4, "max_k": 0, "dynamic_loss_coef": 0.0}.items():
        cfg["routing"].setdefault(key, v)
    cfg["data"] = {"dir": "unused"}
    cfg["train"] = {"seq_len": case["batch"][1], "batch_size": case["batch"][0]}
    return cfg


def _write_case(case, folder, gen):
    """A random float32 checkpoint and token file for one case in `folder`; returns (checkpoint dir, tokens path)."""
    ckpt = os.path.join(folder, "ckpt")
    os.makedirs(ckpt, exist_ok=True)
    with open(os.path.join(ckpt, "config.json"), "w") as f:
        json.dump(_full_config(case), f, indent=2)
    cfg = load_config(os.path.join(ckpt, "config.json"))
    tensors = []
    for name, shape in param_specs(cfg):
        if name.endswith(".bias"):  # clearly nonzero, of the size of the projections' entries
            w = 0.5 * torch.randn(shape, generator=gen, dtype=torch.float64)
        elif len(shape) == 1:  # gains, q/k norm gains included: not all 1
            w = 1.0 + 0.2 * torch.randn(shape, generator=gen, dtype=torch.float64)
        elif name.endswith("block_sparse_moe.gate.weight"):
            # Router logits of std ~1.5: clear top-k margins for finite differences, yet every expert gets tokens.
            w = 1.5 * torch.randn(shape, generator=gen, dtype=torch.float64) / math.sqrt(shape[1])
        else:
            w = torch.randn(shape, generator=gen, dtype=torch.float64) / math.sqrt(shape[1])
        tensors.append((name, w.numpy().astype(np.float32)))
    write_safetensors(os.path.join(ckpt, "model.safetensors"), tensors, {"format": "pt"})
    B, T = case["batch"]
    tok = torch.randint(0, cfg["vocab_size"], (B, T + 1), generator=gen).numpy().astype(np.int32)
    tok_path = os.path.join(folder, "tokens.safetensors")
    write_safetensors(tok_path, [("tokens", tok)], None)
    return ckpt, tok_path, cfg, tensors


def self_test():
    t0 = time.time()
    failures = []

    def check(cond, what):
        print(("  ok    " if cond else "  FAIL  ") + what)
        if not cond:
            failures.append(what)

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) if a.size else 0.0

    # The tie rule and the two top-k formulations on a hand-made example.
    prob = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.1, 0.4, 0.1, 0.4], [0.3, 0.1, 0.3, 0.3]], dtype=torch.float64)
    idx, _ = select_top_k(prob, 2)
    wide = torch.full((2, 64), 1.0 / 64, dtype=torch.float64)  # wide enough that an unstable sort scrambles ties
    wide[1, 10:] = 0.5 / 54
    wide_idx, _ = select_top_k(wide, 5)
    check([sorted(r) for r in idx.tolist()] == [[0, 1], [1, 3], [0, 2]] and
          wide_idx.tolist() == [[0, 1, 2, 3, 4]] * 2, "top-k ties go to the lower expert index")

    def kept(row, p, max_k=0):
        return select_top_p(torch.tensor([row], dtype=torch.float64), p, max_k)[0].nonzero().squeeze(1).tolist()

    halves = [0.5, 0.25, 0.125, 0.125]  # dyadic: the cumulative sums are exact
    check(kept(halves, 0.4) == [0] and kept([0.35, 0.25, 0.2, 0.2], 0.4) == [0, 1] and
          kept([0.25, 0.35, 0.25, 0.15], 0.4) == [0, 1] and kept([0.125, 0.5, 0.125, 0.25], 0.7) == [1, 3],
          "top-p keeps up to and including the expert that takes the sum past p")
    check(kept(halves, 0.5) == [0, 1] and kept(halves, 0.75) == [0, 1, 2] and kept(halves, 1.0) == [0, 1, 2, 3],
          "top-p: a cumulative sum exactly equal to p keeps the next expert too (strict >)")
    check(kept(halves, 0.75, 2) == [0, 1] and kept(halves, 1.0, 1) == [0] and kept(halves, 0.4, 3) == [0],
          "top-p: max_k caps the count")
    check(kept([0.25] * 4, 0.5) == [0, 1, 2] and kept([0.1, 0.3, 0.3, 0.3], 0.35) == [1, 2],
          "top-p ties go to the lower expert index")

    gen = torch.Generator().manual_seed(20240613)
    with tempfile.TemporaryDirectory(prefix="moelab-oracle-") as tmp:
        for ci, case in enumerate(_SELF_TEST_CASES):
            folder = os.path.join(tmp, f"case{ci}")
            ckpt, tok_path, cfg, tensors = _write_case(case, folder, gen)
            rule = {"top_k": f"top-{cfg['top_k']}, renormalize={cfg['renormalize']}",
                    "top_k_then_softmax": f"top-{cfg['top_k']} then softmax",
                    "top_p": f"top-p {cfg['top_p']} max_k={cfg['max_k']}"}[cfg["rule"]]
            print(f"case {ci}: {cfg['n_layers']} layers, H={cfg['n_heads']} Hkv={cfg['n_kv_heads']} "
                  f"hd={cfg['head_dim']}, {rule} of {cfg['n_experts']}, {cfg['granularity']}, {cfg['router']} "
                  f"router, dynamic {cfg['dynamic_loss_coef']}, tied={cfg['tie_embeddings']}, qk_norm "
                  f"{cfg['qk_norm']}, qkv_bias={cfg['qkv_bias']}, clip_qkv {cfg['clip_qkv']}, shared hidden "
                  f"{cfg['shared_hidden']} (gate {cfg['shared_expert_gate']}), dense_layers {cfg['dense_layers']}")
            check(any(is_moe_layer(cfg, i) for i in range(cfg["n_layers"])) and
                  not all(is_moe_layer(cfg, i) for i in range(cfg["n_layers"])), "has both MoE and dense layers")
            out64 = os.path.join(folder, "out64.safetensors")
            if ci == 0:  # through the real command line once
                r = subprocess.run([sys.executable, os.path.abspath(__file__), "--checkpoint", ckpt, "--tokens",
                                    tok_path, "--out", out64], capture_output=True, text=True)
                check(r.returncode == 0, f"command line exits 0 {r.stderr.strip()}")
            else:
                run_oracle(ckpt, tok_path, out64, "float64")
            res = SafetensorsFile(out64)
            B, T = case["batch"]
            V = cfg["vocab_size"]
            shapes = {n: () for n in _OUTPUTS}
            shapes["logits"] = (B, T, V)
            shapes.update({"grad." + n: s for n, s in param_specs(cfg)})
            check(set(res.names()) == set(shapes), "output holds exactly logits, the 5 losses and every gradient")
            got = {n: res.read(n, "F64", s) for n, s in shapes.items()}

            # The second formulation: same values and, through its own autograd graph, the same gradients.
            params = {n: torch.from_numpy(a).to(torch.float64).requires_grad_(True) for n, a in tensors}
            tokens = torch.from_numpy(SafetensorsFile(tok_path).read("tokens", "I32", None).astype(np.int64))
            alt = forward_alt(params, cfg, tokens)
            alt["loss"].backward()
            for n in _OUTPUTS:
                e = rel(got[n], alt[n].detach().numpy())
                check(e < 1e-12, f"{n} equals the dense-MoE formulation (rel err {e:.1e})")
            check(float(got["load_balance_loss"]) > 0.5 and float(got["z_loss"]) > 0 and
                  float(got["entropy_loss"]) > 0, "auxiliary losses are live (LB near 1, z > 0, entropy > 0)")

            # The routing itself: rows, experts per row, the max_k cap, (non-)causality.
            trace, stats = [], {}
            with torch.no_grad():
                fwd = forward({n: torch.from_numpy(a).to(torch.float64) for n, a in tensors}, cfg, tokens, trace,
                              stats)
            if cfg["clip_qkv"] > 0:
                cq, ck, cv, nv = stats["clipped_q"], stats["clipped_k"], stats["clipped_v"], stats["qkv_values"]
                check(cq > 0 and ck > 0 and cv > 0 and cq + ck + cv < nv / 2,
                      f"clip_qkv = {cfg['clip_qkv']} clips some of q ({cq}), k ({ck}) and v ({cv}) but not most "
                      f"(of {nv})")
            if cfg["dense_layers"]:
                plain = [i for i in cfg["dense_layers"] if i >= cfg["first_dense_layers"] and
                         (i - cfg["first_dense_layers"]) % cfg["moe_every"] == 0]
                check(plain and not any(is_moe_layer(cfg, i) for i in plain) and
                      all(f"grad.model.layers.{i}.mlp.gate_proj.weight" in got for i in plain),
                      f"moe.dense_layers makes layers {plain} dense that first_dense_layers/moe_every make MoE")
            rows = B if cfg["granularity"] == "sequence" else B * T
            check(all(pr.shape[0] == rows for pr, _ in trace), f"{len(trace)} MoE layer(s) route {rows} rows each")
            counts = torch.cat([m.sum(dim=-1) for _, m in trace])
            if cfg["rule"] == "top_p":
                free = torch.cat([select_top_p(pr, cfg["top_p"], 0).sum(dim=-1) for pr, _ in trace])
                check(len(set(counts.tolist())) > 1, f"top-p keeps a varying number of experts per row "
                                                     f"(histogram {torch.bincount(counts).tolist()})")
                if cfg["max_k"] > 0:
                    check(int(counts.max()) <= cfg["max_k"] and int(free.max()) > cfg["max_k"],
                          f"max_k = {cfg['max_k']} binds (uncapped rows keep up to {int(free.max())})")
            else:
                check(bool((counts == cfg["top_k"]).all()), "top-k keeps k experts per row")
            changed = tokens.clone()
            changed[:, T - 1] = (changed[:, T - 1] + 1) % V  # the last input token
            with torch.no_grad():
                other = forward({n: torch.from_numpy(a).to(torch.float64) for n, a in tensors}, cfg, changed)
            early = rel(other["logits"][:, :T - 1], fwd["logits"][:, :T - 1])  # experts' row sets change: rounding
            if cfg["granularity"] == "sequence":
                check(early > 1e-6, f"sequence routing sees the future: changing the last token moves earlier "
                                    f"logits (rel {early:.1e})")
            else:
                check(early < 1e-13, f"{cfg['granularity']} routing is causal: changing the last token leaves "
                                     f"earlier logits unchanged (rel {early:.1e})")
            worst = max(rel(got["grad." + n], params[n].grad.numpy()) for n, _ in param_specs(cfg))
            check(worst < 1e-10, f"every gradient equals the dense-MoE formulation's (worst rel err {worst:.1e})")

            # Central finite differences on the oracle's own loss, 3 entries of every parameter.
            base = {n: torch.from_numpy(a).to(torch.float64) for n, a in tensors}

            def loss_at(name, flat_index, delta):
                ps = dict(base)
                w = ps[name].clone()
                w.view(-1)[flat_index] += delta
                ps[name] = w
                with torch.no_grad():
                    return float(forward(ps, cfg, tokens)["loss"])

            h, worst_fd, worst_name = 1e-5, 0.0, ""
            for n, shape in param_specs(cfg):
                g = got["grad." + n].reshape(-1)
                for fi in torch.randint(0, g.size, (3,), generator=gen).tolist():
                    fd = (loss_at(n, fi, h) - loss_at(n, fi, -h)) / (2 * h)
                    err = abs(fd - g[fi]) / max(abs(g[fi]), 1e-3)
                    if err > worst_fd:
                        worst_fd, worst_name = err, n
            check(worst_fd < 1e-5, f"finite differences match the written gradients on 3 entries of every "
                                   f"parameter (worst rel err {worst_fd:.1e} at {worst_name})")
            moe_layers = [i for i in range(cfg["n_layers"]) if is_moe_layer(cfg, i)]
            idle = {f"model.layers.{i}.block_sparse_moe.experts.{e}."
                    for i, (_, m) in zip(moe_layers, trace) for e in range(cfg["n_experts"]) if not m[:, e].any()}
            dead = [n for n in base if not np.abs(got["grad." + n]).max() > 0 and n.rsplit(".", 2)[0] + "." not in idle]
            check(not dead, f"every parameter has a nonzero gradient but those of {len(idle)} idle expert(s) {dead}")

            # The float32 mode writes F32 and agrees to float32 accuracy.
            out32 = os.path.join(folder, "out32.safetensors")
            run_oracle(ckpt, tok_path, out32, "float32")
            r32 = SafetensorsFile(out32)
            e_loss = rel(r32.read("loss", "F32", ()), got["loss"])
            e_grad = max(rel(r32.read("grad." + n, "F32", s), got["grad." + n]) for n, s in param_specs(cfg))
            check(e_loss < 1e-5 and e_grad < 1e-3,
                  f"--dtype float32 writes F32 close to float64 (loss {e_loss:.1e}, worst grad {e_grad:.1e})")

            # Inconsistent inputs are refused with a message naming the problem.
            def refused(fn, needle, what):
                try:
                    fn()
                except OracleError as e:
                    check(needle in str(e), f"{what} is refused: {e}")
                    return
                check(False, f"{what} is refused")

            bad = os.path.join(folder, "bad")
            os.makedirs(bad, exist_ok=True)
            with open(os.path.join(bad, "config.json"), "w") as f:
                json.dump(_full_config(case), f)
            bad_model = os.path.join(bad, "model.safetensors")
            missing = tensors[1][0]
            write_safetensors(bad_model, tensors[:1] + tensors[2:], None)
            refused(lambda: run_oracle(bad, tok_path, os.path.join(bad, "o"), "float64"), missing, "a missing tensor")
            wrong = [(n, a[:-1] if i == 3 else a) for i, (n, a) in enumerate(tensors)]
            write_safetensors(bad_model, wrong, None)
            refused(lambda: run_oracle(bad, tok_path, os.path.join(bad, "o"), "float64"), "expected shape",
                    "a tensor of the wrong shape")
            write_safetensors(bad_model, tensors + [("lm_head.weight" if cfg["tie_embeddings"] else "extra.weight",
                                                     tensors[0][1])], None)
            refused(lambda: run_oracle(bad, tok_path, os.path.join(bad, "o"), "float64"), "unexpected tensor",
                    "an extra tensor")
            write_safetensors(bad_model, tensors, None)
            bad_tok = os.path.join(bad, "tokens.safetensors")
            write_safetensors(bad_tok, [("tokens", np.full((1, 3), V, dtype=np.int32))], None)
            refused(lambda: run_oracle(bad, bad_tok, os.path.join(bad, "o"), "float64"), "outside",
                    "a token id >= vocab_size")
            if ci == 0:
                for key, v in (("rule", "expert_choice"), ("gating", "sigmoid"), ("router", "hash"),
                               ("granularity", "batch"), ("capacity_factor", 1.25), ("top_p", 0.0),
                               ("max_k", cfg["n_experts"] + 1), ("dynamic_loss_coef", "0.1")):
                    cfg_bad = _full_config(case)
                    cfg_bad["routing"][key] = v
                    with open(os.path.join(bad, "config.json"), "w") as f:
                        json.dump(cfg_bad, f)
                    refused(lambda: run_oracle(bad, tok_path, os.path.join(bad, "o"), "float64"), f"routing.{key}",
                            f"routing.{key} = {v!r}")
                for section, key, v in (("model", "qk_norm", "rms"), ("model", "head_dim", 5),
                                        ("model", "head_dim", -2), ("model", "clip_qkv", -1.0),
                                        ("model", "qkv_bias", 1),
                                        ("moe", "dense_layers", [cfg["n_layers"]]), ("moe", "dense_layers", 1),
                                        ("moe", "dense_layers", [0.5]), ("moe", "n_shared_experts", -1),
                                        ("moe", "shared_expert_hidden", -1), ("moe", "shared_expert_gate", "true")):
                    cfg_bad = _full_config(case)
                    cfg_bad[section][key] = v
                    with open(os.path.join(bad, "config.json"), "w") as f:
                        json.dump(cfg_bad, f)
                    refused(lambda: run_oracle(bad, tok_path, os.path.join(bad, "o"), "float64"), f"{section}.{key}",
                            f"{section}.{key} = {v!r}")
                for section, key in (("model", "head_dim"), ("model", "qk_norm"), ("model", "qkv_bias"),
                                     ("model", "clip_qkv"), ("moe", "n_shared_experts"),
                                     ("moe", "shared_expert_hidden"), ("moe", "shared_expert_gate"),
                                     ("moe", "dense_layers")):
                    cfg_bad = _full_config(case)
                    del cfg_bad[section][key]
                    with open(os.path.join(bad, "config.json"), "w") as f:
                        json.dump(cfg_bad, f)
                    refused(lambda: run_oracle(bad, tok_path, os.path.join(bad, "o"), "float64"),
                            f"missing key '{section}.{key}'", f"a config without {section}.{key}")
                cfg_bad = _full_config(case)
                del cfg_bad["routing"]["dynamic_loss_coef"]
                with open(os.path.join(bad, "config.json"), "w") as f:
                    json.dump(cfg_bad, f)
                refused(lambda: run_oracle(bad, tok_path, os.path.join(bad, "o"), "float64"),
                        "routing.dynamic_loss_coef", "a config without routing.dynamic_loss_coef")
                with open(os.path.join(bad, "config.json"), "w") as f:
                    json.dump(_full_config(case), f)
                with open(bad_model, "r+b") as f:
                    f.truncate(100)
                r = subprocess.run([sys.executable, os.path.abspath(__file__), "--checkpoint", bad, "--tokens",
                                    tok_path, "--out", os.path.join(bad, "o")], capture_output=True, text=True)
                check(r.returncode == 1 and "error:" in r.stderr,
                      f"the command line exits 1 on a truncated file: {r.stderr.strip()}")

    dt = time.time() - t0
    if failures:
        print(f"self-test FAILED: {len(failures)} check(s) failed ({dt:.1f} s)")
        return 1
    print(f"self-test passed ({dt:.1f} s)")
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description="moelab's independent PyTorch oracle: logits, losses and gradients.")
    ap.add_argument("--checkpoint", help="folder with config.json and model.safetensors")
    ap.add_argument("--tokens", help="safetensors file with 'tokens' I32 [B, T+1]")
    ap.add_argument("--out", help="safetensors file to write")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--self-test", action="store_true", help="check the oracle itself on tiny random models")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    if args.self_test:
        return self_test()
    if not (args.checkpoint and args.tokens and args.out):
        ap.error("--checkpoint, --tokens and --out are required (or --self-test)")
    try:
        run_oracle(args.checkpoint, args.tokens, args.out, args.dtype)
    except OracleError as e:
        print(f"torch_model.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
