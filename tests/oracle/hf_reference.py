#!/usr/bin/python3
"""An independent PyTorch reference of Hugging Face MoE models, written from their modeling code and nothing of
moelab: Mixtral (transformers' modeling_mixtral.py, MixtralForCausalLM) and the original DeepSeekMoE
(deepseek-ai/deepseek-moe-16b's modeling_deepseek.py, DeepseekForCausalLM). It reads the model folder itself
(config.json; model.safetensors or the shards of model.safetensors.index.json; F32, F16 or BF16; Mixtral's experts
per expert, block_sparse_moe.experts.j.w1/w2/w3, or fused as transformers v5 writes them,
mlp.experts.gate_up_proj [E, 2I, H] = cat(w1, w3) along dim 1 and mlp.experts.down_proj [E, H, I]) and computes, in
float64, the logits of one token sequence and the experts each MoE layer chooses for each token.

  /usr/bin/python3 tests/oracle/hf_reference.py --model DIR --tokens 3,17,5 --out OUT.safetensors

OUT holds logits [T, V] (F64) and, per layer i, experts.i [T, k] (I64, in the order top-k returns them).
Exits 1 with a message on any inconsistency in the folder.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_file import OracleError, SafetensorsFile  # noqa: E402
from torch_model import write_safetensors  # noqa: E402


def read_float(f, name):
    """A tensor of F32, F16 or BF16 as float64."""
    dtype, shape, begin, end = f.entries[name]
    raw = f._data[begin:end]
    if dtype == "BF16":
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        values = bits.view(np.float32)
    elif dtype in ("F32", "F16"):
        values = np.frombuffer(raw, dtype="<f4" if dtype == "F32" else "<f2")
    else:
        raise OracleError(f"file {f.path}: tensor '{name}': dtype {dtype} is not a float")
    return torch.from_numpy(values.astype(np.float64).reshape(shape))


def load_folder(folder):
    """name -> float64 tensor, over one file or the index's shards."""
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as fh:
            shards = sorted(set(json.load(fh)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    tensors = {}
    for shard in shards:
        f = SafetensorsFile(os.path.join(folder, shard))
        for name in f.names():
            tensors[name] = read_float(f, name)
    return tensors


def expert_weights(t, layer, j, n_experts, inter):
    """(gate, down, up) of expert j: Mixtral per expert or fused, or DeepSeek's names."""
    d = f"model.layers.{layer}.mlp.experts.{j}."
    if d + "gate_proj.weight" in t:
        return t[d + "gate_proj.weight"], t[d + "down_proj.weight"], t[d + "up_proj.weight"]
    p = f"model.layers.{layer}.block_sparse_moe.experts.{j}."
    if p + "w1.weight" in t:
        return t[p + "w1.weight"], t[p + "w2.weight"], t[p + "w3.weight"]
    gate_up = t[f"model.layers.{layer}.mlp.experts.gate_up_proj"]  # [E, 2I, H]
    down = t[f"model.layers.{layer}.mlp.experts.down_proj"]  # [E, H, I]
    assert gate_up.shape[0] == n_experts and gate_up.shape[1] == 2 * inter
    w1, w3 = gate_up[j].chunk(2, dim=0)
    return w1, down[j], w3


def router_weight(t, layer):
    name = f"model.layers.{layer}.block_sparse_moe.gate.weight"  # else Mixtral v5's and DeepSeek's name
    return t[name] if name in t else t[f"model.layers.{layer}.mlp.gate.weight"]


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def mlp(x, t, p):
    """A SwiGLU MLP under prefix p (DeepseekMLP / LlamaMLP): down(silu(gate x) * up x)."""
    g, u = x @ t[p + "gate_proj.weight"].T, x @ t[p + "up_proj.weight"].T
    return (torch.nn.functional.silu(g) * u) @ t[p + "down_proj.weight"].T


def forward(c, t, tokens):
    deepseek = c["model_type"] == "deepseek"
    H, nh = c["hidden_size"], c["num_attention_heads"]
    nkv = c.get("num_key_value_heads") or nh
    hd = H // nh
    if deepseek:
        E, k, inter = c["n_routed_experts"], c["num_experts_per_tok"], c["moe_intermediate_size"]
        eps, theta = c.get("rms_norm_eps", 1e-6), c.get("rope_theta", 10000.0)
    else:
        E, k, inter = c.get("num_local_experts", 8), c.get("num_experts_per_tok", 2), c["intermediate_size"]
        eps, theta = c.get("rms_norm_eps", 1e-5), c.get("rope_theta", 1e6)
    T = len(tokens)
    h = t["model.embed_tokens.weight"][torch.tensor(tokens)]  # [T, H]
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # [T, hd]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    chosen = {}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = rms_norm(h, t[p + "input_layernorm.weight"], eps)
        q = (x @ t[p + "self_attn.q_proj.weight"].T).view(T, nh, hd).transpose(0, 1)
        kk = (x @ t[p + "self_attn.k_proj.weight"].T).view(T, nkv, hd).transpose(0, 1)
        v = (x @ t[p + "self_attn.v_proj.weight"].T).view(T, nkv, hd).transpose(0, 1)
        q, kk = q * cos + rotate_half(q) * sin, kk * cos + rotate_half(kk) * sin
        kk, v = kk.repeat_interleave(nh // nkv, dim=0), v.repeat_interleave(nh // nkv, dim=0)  # repeat_kv
        scores = q @ kk.transpose(1, 2) / hd ** 0.5 + mask
        attn = torch.softmax(scores, dim=-1) @ v  # [nh, T, hd]
        h = h + attn.transpose(0, 1).reshape(T, H) @ t[p + "self_attn.o_proj.weight"].T
        x = rms_norm(h, t[p + "post_attention_layernorm.weight"], eps)
        if deepseek and not (i >= c.get("first_k_dense_replace", 0) and i % c.get("moe_layer_freq", 1) == 0):
            h = h + mlp(x, t, p + "mlp.")  # a dense layer
            continue
        probs = torch.softmax(x @ router_weight(t, i).T, dim=-1)  # [T, E]
        weights, experts = torch.topk(probs, k, dim=-1)
        if not deepseek:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        elif k > 1 and c.get("norm_topk_prob", False):
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        chosen[i] = experts
        out = torch.zeros_like(x)
        for j in range(E):
            w1, w2, w3 = expert_weights(t, i, j, E, inter)
            y = (torch.nn.functional.silu(x @ w1.T) * (x @ w3.T)) @ w2.T
            gate = (weights * (experts == j)).sum(dim=-1, keepdim=True)  # 0 where j was not chosen
            out = out + gate * y
        if deepseek and c.get("n_shared_experts"):
            out = out + mlp(x, t, p + "mlp.shared_experts.")  # ungated
        h = h + out
    h = rms_norm(h, t["model.norm.weight"], eps)
    head = t["model.embed_tokens.weight"] if c.get("tie_word_embeddings", False) else t["lm_head.weight"]
    return h @ head.T, chosen


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    try:
        with open(os.path.join(a.model, "config.json")) as fh:
            c = json.load(fh)
        if c.get("model_type") not in ("mixtral", "deepseek"):
            raise OracleError(f"{a.model}/config.json: model_type {c.get('model_type')!r}, expected mixtral or deepseek")
        logits, chosen = forward(c, load_folder(a.model), [int(x) for x in a.tokens.split(",")])
        out = [("logits", logits.numpy())]
        out += [(f"experts.{i}", e.numpy().astype(np.int64)) for i, e in chosen.items()]
        write_safetensors(a.out, out, {})
    except (OracleError, KeyError, AssertionError) as e:
        print(f"hf_reference: {e!r}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
