#!/usr/bin/python3
"""Writes a Hugging Face model folder with the layer shapes of a real MoE model and random BF16 weights, for
measuring what opening, evaluating and analysing a model of that size costs (docs/import.md, 'Measured').

  /usr/bin/python3 bench/make_hf_model.py --shape mixtral --layers 2 --tokenizer TOKENIZER_DIR --out DIR

--shape mixtral: Mixtral-8x7B's layers (d 4096, 32 heads of 128 with 8 key/value heads, 8 experts of hidden 14336,
top-2 renormalised, vocabulary 32000); --shape olmoe: OLMoE-1B-7B's (d 2048, 16 heads, q/k norms over the whole
projection, 64 experts of hidden 1024, top-8 raw, vocabulary 50304). --layers keeps only the first N layers. The
weights are N(0, 0.02^2) (norm gains 1), rounded to BF16, in shards of at most --shard-gb GB with
model.safetensors.index.json. --tokenizer copies a folder's tokenizer.json and tokenizer_config.json beside them (a
vocabulary up to the model's), so that `moelab eval --text` and `moelab analyze report --text` can read text.
Needs only python3-numpy; the safetensors files are written by hand.
"""
import argparse
import json
import os
import shutil

import numpy as np

SHAPES = {
    "mixtral": {"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
                "num_key_value_heads": 8, "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000,
                "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "rope_theta": 1e6},
    "olmoe": {"model_type": "olmoe", "hidden_size": 2048, "intermediate_size": 1024, "num_attention_heads": 16,
              "num_key_value_heads": 16, "num_experts": 64, "num_experts_per_tok": 8, "norm_topk_prob": False,
              "vocab_size": 50304, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0},
}


def tensor_shapes(c, layers):
    """(name, shape, is_gain) of every tensor, in the architecture's names."""
    d, V, H, Hkv = c["hidden_size"], c["vocab_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd, inter = d // H, c["intermediate_size"]
    olmoe = c["model_type"] == "olmoe"
    E = c["num_experts"] if olmoe else c["num_local_experts"]
    out = [("model.embed_tokens.weight", (V, d), False)]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (d,), True), (p + "post_attention_layernorm.weight", (d,), True),
                (p + "self_attn.q_proj.weight", (H * hd, d), False), (p + "self_attn.k_proj.weight", (Hkv * hd, d), False),
                (p + "self_attn.v_proj.weight", (Hkv * hd, d), False), (p + "self_attn.o_proj.weight", (d, H * hd), False)]
        if olmoe:
            out += [(p + "self_attn.q_norm.weight", (H * hd,), True), (p + "self_attn.k_norm.weight", (Hkv * hd,), True)]
            moe, names = p + "mlp.", ("gate_proj", "up_proj", "down_proj")
        else:
            moe, names = p + "block_sparse_moe.", ("w1", "w3", "w2")
        out.append((moe + "gate.weight", (E, d), False))
        for j in range(E):
            e = f"{moe}experts.{j}."
            out += [(e + names[0] + ".weight", (inter, d), False), (e + names[1] + ".weight", (inter, d), False),
                    (e + names[2] + ".weight", (d, inter), False)]
    out += [("model.norm.weight", (d,), True), ("lm_head.weight", (V, d), False)]
    return out


def bf16_bytes(shape, is_gain, rng):
    """N(0, 0.02^2) (or ones for a gain) as BF16, rounded to nearest even."""
    if is_gain:
        values = np.ones(shape, dtype=np.float32)
    else:
        values = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
    bits = values.view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def write_shard(path, entries, rng):
    """entries: (name, shape, is_gain); the header first, then each tensor generated and written in turn."""
    header, offset = {}, 0
    for name, shape, _ in entries:
        size = 2 * int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for name, shape, is_gain in entries:
            f.write(bf16_bytes(shape, is_gain, rng))
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer", help="a folder holding tokenizer.json and tokenizer_config.json to copy")
    ap.add_argument("--shard-gb", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.layers < 1:
        ap.error("--layers must be at least 1")
    c = dict(SHAPES[a.shape], num_hidden_layers=a.layers, tie_word_embeddings=False, torch_dtype="bfloat16")
    os.makedirs(a.out, exist_ok=True)
    shards, current, size = [], [], 0
    for entry in tensor_shapes(c, a.layers):
        bytes_ = 2 * int(np.prod(entry[1]))
        if current and size + bytes_ > a.shard_gb * 1e9:
            shards.append(current)
            current, size = [], 0
        current.append(entry)
        size += bytes_
    shards.append(current)
    rng = np.random.default_rng(a.seed)
    weight_map = {}
    for k, entries in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write_shard(os.path.join(a.out, name), entries, rng)
        weight_map.update({e[0]: name for e in entries})
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    if a.tokenizer:
        for file in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(a.tokenizer, file), os.path.join(a.out, file))
    print(f"{a.out}: {sum(2 * int(np.prod(e[1])) for s in shards for e in s) / 1e9:.2f} GB in {len(shards)} shards")


if __name__ == "__main__":
    main()
