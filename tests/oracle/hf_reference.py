#!/usr/bin/python3
"""An independent PyTorch reference of Hugging Face MoE models, written from their modeling code and nothing of
moelab. Supported model_types, and where each one's rules come from:

  mixtral    MixtralForCausalLM, transformers' models/mixtral/modeling_mixtral.py.
  deepseek   the original DeepSeekMoE, DeepseekForCausalLM, deepseek-ai/deepseek-moe-16b's modeling_deepseek.py.
  olmoe      OlmoeForCausalLM, transformers' models/olmoe/modeling_olmoe.py (and modular_olmoe.py): q_norm and
             k_norm over the whole q and k widths, then clip_qkv; every layer MoE, no shared expert.
  qwen2_moe  Qwen2MoeForCausalLM, models/qwen2_moe/modeling_qwen2_moe.py (and modular_qwen2_moe.py): q/k/v biases
             (qkv_bias), MoE layers by decoder_sparse_step and mlp_only_layers, a sigmoid-gated shared expert.
  qwen3_moe  Qwen3MoeForCausalLM, models/qwen3_moe/modeling_qwen3_moe.py (and modular_qwen3_moe.py): q_norm and
             k_norm per head, head_dim from the config (heads * head_dim may differ from hidden_size), MoE layers
             as Qwen2-MoE, no shared expert.

For olmoe, qwen2_moe and qwen3_moe, keys a config.json leaves out take the defaults of transformers' configuration
class (OlmoeConfig, Qwen2MoeConfig, Qwen3MoeConfig), RoPE theta is read as transformers v4 writes it (rope_theta) or
v5 (rope_parameters.rope_theta), and RoPE scaling or a sliding window shorter than the sequence is refused.

It reads the model folder itself (config.json; model.safetensors or the shards of model.safetensors.index.json; F32,
F16 or BF16; experts per expert, block_sparse_moe.experts.j.w1/w2/w3 or mlp.experts.j.{gate,up,down}_proj, or fused
as transformers v5 writes them, mlp.experts.gate_up_proj [E, 2I, H] = cat(gate, up) along dim 1 and
mlp.experts.down_proj [E, H, I]) and computes the logits of one token sequence (positions 0..T-1, eager attention,
no cache) and the experts each MoE layer chooses for each token. All of it in float64, softmaxes included: where
transformers computes the router's softmax (and eager attention's) in float32, this keeps float64.

  /usr/bin/python3 tests/oracle/hf_reference.py --model DIR --tokens 3,17,5 --out OUT.safetensors

OUT holds logits [T, V] (F64) and, per MoE layer i, experts.i [T, k] (I64, in the order top-k returns them).
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
    """(gate, down, up) of expert j: mlp.experts.j.{gate,down,up}_proj (DeepSeek, OLMoE, Qwen),
    Mixtral's w1/w2/w3, or fused as transformers v5 writes Mixtral's, OLMoE's and Qwen's."""
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
    name = f"model.layers.{layer}.block_sparse_moe.gate.weight"  # else the name of Mixtral v5, DeepSeek, OLMoE, Qwen
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


ARCHITECTURES = ("mixtral", "deepseek", "olmoe", "qwen2_moe", "qwen3_moe")

# The defaults of transformers' OlmoeConfig, Qwen2MoeConfig and Qwen3MoeConfig for the keys read here: a config.json
# that transformers wrote holds them all, a hand-written one may not.
DEFAULTS = {
    "olmoe": {"hidden_size": 2048, "intermediate_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 16,
              "num_key_value_heads": None, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "attention_bias": False,
              "clip_qkv": None, "num_experts": 64, "num_experts_per_tok": 8, "norm_topk_prob": False,
              "tie_word_embeddings": False},
    "qwen2_moe": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 24, "num_attention_heads": 16,
                  "num_key_value_heads": 16, "head_dim": None, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                  "qkv_bias": True, "decoder_sparse_step": 1, "mlp_only_layers": None, "moe_intermediate_size": 1408,
                  "num_experts": 60, "num_experts_per_tok": 4, "norm_topk_prob": False, "tie_word_embeddings": False,
                  "use_sliding_window": False, "sliding_window": 4096},
    "qwen3_moe": {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 24, "num_attention_heads": 32,
                  "num_key_value_heads": 4, "head_dim": None, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                  "attention_bias": False, "decoder_sparse_step": 1, "mlp_only_layers": None,
                  "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8, "norm_topk_prob": False,
                  "tie_word_embeddings": False, "use_sliding_window": False, "sliding_window": 4096},
}


def setting(c, key):
    """config.json's value, null included (clip_qkv, num_key_value_heads may be null), else the class default."""
    if key == "num_experts" and key not in c and "num_local_experts" in c:
        return c["num_local_experts"]  # the other name the configs' attribute_map gives it
    return c[key] if key in c else DEFAULTS[c["model_type"]][key]


def rope_theta(c):
    """Theta as transformers v5 writes it (rope_parameters) or v4 (rope_theta); any RoPE scaling is refused."""
    rp = c.get("rope_parameters")
    scaling = rp if isinstance(rp, dict) else c.get("rope_scaling")
    if isinstance(scaling, dict) and scaling.get("rope_type", scaling.get("type", "default")) != "default":
        raise OracleError(f"config.json: RoPE {scaling!r}: only the default RoPE is supported")
    if isinstance(rp, dict) and "rope_theta" in rp:
        return float(rp["rope_theta"])
    return float(setting(c, "rope_theta"))


def linear(x, t, name, bias):
    """nn.Linear: x W^T, plus name.bias where the config gives the layer one (then the folder must hold it)."""
    y = x @ t[name + ".weight"].T
    return y + t[name + ".bias"] if bias else y


def is_moe_layer(c, i):
    """Whether layer i is sparse: DeepSeek by first_k_dense_replace and moe_layer_freq, Qwen by mlp_only_layers and
    decoder_sparse_step (Qwen2MoeDecoderLayer, Qwen3MoeDecoderLayer); every Mixtral and OLMoE layer is."""
    arch = c["model_type"]
    if arch == "deepseek":
        return i >= c.get("first_k_dense_replace", 0) and i % c.get("moe_layer_freq", 1) == 0
    if arch in ("qwen2_moe", "qwen3_moe"):
        return (i not in (setting(c, "mlp_only_layers") or []) and setting(c, "num_experts") > 0
                and (i + 1) % setting(c, "decoder_sparse_step") == 0)
    return True


def forward(c, t, tokens):
    arch = c["model_type"]
    deepseek = arch == "deepseek"
    T = len(tokens)
    qkv_bias = o_bias = False
    clip = None
    if arch in ("mixtral", "deepseek"):
        H, nh = c["hidden_size"], c["num_attention_heads"]
        nkv = c.get("num_key_value_heads") or nh
        hd = H // nh
        if deepseek:
            E, k, inter = c["n_routed_experts"], c["num_experts_per_tok"], c["moe_intermediate_size"]
            eps, theta = c.get("rms_norm_eps", 1e-6), c.get("rope_theta", 10000.0)
        else:
            E, k, inter = c.get("num_local_experts", 8), c.get("num_experts_per_tok", 2), c["intermediate_size"]
            eps, theta = c.get("rms_norm_eps", 1e-5), c.get("rope_theta", 1e6)
        tie, n_layers = c.get("tie_word_embeddings", False), c["num_hidden_layers"]
    else:
        H, nh = setting(c, "hidden_size"), setting(c, "num_attention_heads")
        nkv = setting(c, "num_key_value_heads") or nh  # OlmoeConfig: None means one per query head
        # OLMoE sizes q_norm and k_norm from hidden_size // heads; Qwen's attention takes config.head_dim where set
        # (Qwen3-MoE's may differ from hidden_size // heads: q_proj is then [heads * head_dim, hidden]).
        hd = H // nh if arch == "olmoe" else (setting(c, "head_dim") or H // nh)
        E, k = setting(c, "num_experts"), setting(c, "num_experts_per_tok")
        inter = setting(c, "intermediate_size" if arch == "olmoe" else "moe_intermediate_size")
        eps, theta = setting(c, "rms_norm_eps"), rope_theta(c)
        tie, n_layers = setting(c, "tie_word_embeddings"), setting(c, "num_hidden_layers")
        if arch == "qwen2_moe":
            qkv_bias = setting(c, "qkv_bias")  # o_proj never has one
        else:
            qkv_bias = o_bias = setting(c, "attention_bias")
        if arch == "olmoe":
            clip = setting(c, "clip_qkv")
        else:
            # A window as long as the sequence masks nothing that causality does not; a shorter one would need which
            # layers slide, a rule that has changed between transformers versions.
            window = setting(c, "sliding_window")
            if setting(c, "use_sliding_window") and window and T > window:
                raise OracleError(f"config.json: sliding_window {window} is shorter than the {T} tokens")
    h = t["model.embed_tokens.weight"][torch.tensor(tokens)]  # [T, H]
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # [T, hd]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    chosen = {}
    for i in range(n_layers):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        x = rms_norm(h, t[p + "input_layernorm.weight"], eps)
        q, kk, v = (linear(x, t, a + n, qkv_bias) for n in ("q_proj", "k_proj", "v_proj"))
        if arch == "olmoe":  # one RMSNorm over the whole q (k) width, before the split into heads; then the clip
            q, kk = rms_norm(q, t[a + "q_norm.weight"], eps), rms_norm(kk, t[a + "k_norm.weight"], eps)
            if clip is not None:
                q, kk, v = q.clamp(-clip, clip), kk.clamp(-clip, clip), v.clamp(-clip, clip)
        q, kk, v = q.view(T, nh, hd), kk.view(T, nkv, hd), v.view(T, nkv, hd)
        if arch == "qwen3_moe":  # an RMSNorm over each head's head_dim, one weight for all heads
            q, kk = rms_norm(q, t[a + "q_norm.weight"], eps), rms_norm(kk, t[a + "k_norm.weight"], eps)
        q, kk, v = q.transpose(0, 1), kk.transpose(0, 1), v.transpose(0, 1)
        q, kk = q * cos + rotate_half(q) * sin, kk * cos + rotate_half(kk) * sin
        kk, v = kk.repeat_interleave(nh // nkv, dim=0), v.repeat_interleave(nh // nkv, dim=0)  # repeat_kv
        scores = q @ kk.transpose(1, 2) / hd ** 0.5 + mask
        attn = torch.softmax(scores, dim=-1) @ v  # [nh, T, hd]
        h = h + linear(attn.transpose(0, 1).reshape(T, nh * hd), t, a + "o_proj", o_bias)
        x = rms_norm(h, t[p + "post_attention_layernorm.weight"], eps)
        if not is_moe_layer(c, i):
            h = h + mlp(x, t, p + "mlp.")  # a dense layer (Qwen's of intermediate_size)
            continue
        probs = torch.softmax(x @ router_weight(t, i).T, dim=-1)  # [T, E]
        weights, experts = torch.topk(probs, k, dim=-1)
        if arch == "mixtral":
            weights = weights / weights.sum(dim=-1, keepdim=True)
        elif deepseek:
            if k > 1 and c.get("norm_topk_prob", False):
                weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        elif setting(c, "norm_topk_prob"):  # OLMoE's and Qwen's: a plain division, no epsilon
            weights = weights / weights.sum(dim=-1, keepdim=True)
        chosen[i] = experts
        out = torch.zeros_like(x)
        for j in range(E):
            w1, w2, w3 = expert_weights(t, i, j, E, inter)
            y = (torch.nn.functional.silu(x @ w1.T) * (x @ w3.T)) @ w2.T
            gate = (weights * (experts == j)).sum(dim=-1, keepdim=True)  # 0 where j was not chosen
            out = out + gate * y
        if deepseek and c.get("n_shared_experts"):
            out = out + mlp(x, t, p + "mlp.shared_experts.")  # ungated
        if arch == "qwen2_moe":  # one shared expert, scaled per token by sigmoid(shared_expert_gate x)
            g = torch.sigmoid(x @ t[p + "mlp.shared_expert_gate.weight"].T)  # [T, 1]
            out = out + g * mlp(x, t, p + "mlp.shared_expert.")
        h = h + out
    h = rms_norm(h, t["model.norm.weight"], eps)
    head = t["model.embed_tokens.weight"] if tie else t["lm_head.weight"]
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
        if c.get("model_type") not in ARCHITECTURES:
            raise OracleError(f"{a.model}/config.json: model_type {c.get('model_type')!r}, expected one of "
                              + ", ".join(ARCHITECTURES))
        logits, chosen = forward(c, load_folder(a.model), [int(x) for x in a.tokens.split(",")])
        out = [("logits", logits.numpy())]
        out += [(f"experts.{i}", e.numpy().astype(np.int64)) for i, e in chosen.items()]
        write_safetensors(a.out, out, {})
    except (OracleError, KeyError, AssertionError) as e:
        print(f"hf_reference: {e!r}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
