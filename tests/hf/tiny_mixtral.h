// A tiny Mixtral model folder for the import tests: its config.json, random weights (rounded to bf16, so that
// BF16 and F32 files hold the same values), and the two layouts a checkpoint may store them in.
#pragma once

#include <gtest/gtest.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/cpu/bf16.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "support/gradcheck.h"
#include "support/temp_dir.h"

namespace moelab::hf::tiny_mixtral {

inline std::string config_text(int64_t vocab_size = 40) {
  return R"({"model_type": "mixtral", "vocab_size": )" + std::to_string(vocab_size) + R"(, "hidden_size": 16,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 24,
    "num_local_experts": 4, "num_experts_per_tok": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16"})";
}
inline const std::string kConfig = config_text();
constexpr int64_t E = 4, I = 24, H = 16;

// Every tensor of the model (by moelab's names, which are Mixtral's), random and rounded to bf16 so that BF16 and
// F32 files hold the same values.
inline std::map<std::string, std::vector<float>> random_weights(const Model& model) {
  std::map<std::string, std::vector<float>> w;
  uint64_t seed = 1;
  for (const ParamSpec& spec : model.table().specs()) {
    std::vector<float> v = testing::to_float(testing::random_vector(spec.numel, seed++, 0.5));
    for (float& x : v) x = cpu::from_bf16(cpu::to_bf16(x));
    w[spec.name] = v;
  }
  return w;
}

inline std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out;
  for (float x : v) out.push_back(cpu::to_bf16(x));
  return out;
}

// A SentencePiece BPE tokenizer.model made as Llama's and Mistral's are: no normalisation (spaces and newlines kept;
// a newline becomes the byte piece <0x0A>), a dummy space before the text, byte fallback, ids 0 <unk>, 1 <s>,
// 2 </s>.
inline std::string llama_like_tokenizer_model(int64_t vocab_size) {
  std::vector<std::string> sentences;
  for (int r = 0; r < 4; ++r)
    for (const char* s : {"The jury said it did find that the election was conducted well.",
                          "The House passed the bill on Sunday, and the governor signed it.",
                          "Who will pay for it? We do not think the plan is wise.", "My dog ate the pie at noon."})
      sentences.emplace_back(s);
  const std::unordered_map<std::string, std::string> options = {{"model_type", "bpe"},
                                                                {"vocab_size", std::to_string(vocab_size)},
                                                                {"byte_fallback", "true"},
                                                                {"normalization_rule_name", "identity"},
                                                                {"add_dummy_prefix", "true"},
                                                                {"remove_extra_whitespaces", "false"},
                                                                {"unk_id", "0"},
                                                                {"bos_id", "1"},
                                                                {"eos_id", "2"},
                                                                {"pad_id", "-1"},
                                                                {"minloglevel", "2"}};
  struct Feed : sentencepiece::SentenceIterator {
    explicit Feed(const std::vector<std::string>& s) : s_(s) {}
    bool done() const override { return i_ >= s_.size(); }
    const std::string& value() const override { return s_[i_]; }
    void Next() override { ++i_; }
    sentencepiece::util::Status status() const override { return {}; }
    const std::vector<std::string>& s_;
    size_t i_ = 0;
  } feed(sentences);
  std::string model;
  EXPECT_TRUE(sentencepiece::SentencePieceTrainer::Train(options, &feed, &model).ok());
  return model;
}

// Per-expert layout, BF16, the layers split over two shards with an index.
inline void write_per_expert(const testing::TempDir& dir, const Model& model,
                             const std::map<std::string, std::vector<float>>& w) {
  std::vector<std::vector<uint16_t>> storage;
  std::vector<TensorView> shard[2];
  std::string weight_map;
  for (const ParamSpec& spec : model.table().specs()) {
    storage.push_back(to_bf16(w.at(spec.name)));
    const int s = spec.name.rfind("model.layers.1.", 0) == 0 || spec.name == "lm_head.weight" ? 1 : 0;
    shard[s].push_back({spec.name, DType::BF16, spec.shape, storage.back().data()});
    weight_map += std::string(weight_map.empty() ? "" : ",") + "\"" + spec.name + "\":\"model-0000" +
                  std::to_string(s + 1) + "-of-00002.safetensors\"";
  }
  write_safetensors(dir.file("model-00001-of-00002.safetensors"), shard[0], {{"format", "pt"}});
  write_safetensors(dir.file("model-00002-of-00002.safetensors"), shard[1], {{"format", "pt"}});
  testing::write_all(dir.file("model.safetensors.index.json"), R"({"metadata":{},"weight_map":{)" + weight_map + "}}");
  testing::write_all(dir.file("config.json"), kConfig);
}

// Every tensor in F32 in one file, the routed experts fused as transformers v5 writes them:
// LAYER.mlp.experts.gate_up_proj [E, 2I, H] (each expert's gate rows, then its up rows) and
// LAYER.mlp.experts.down_proj [E, H, I]; every other tensor under the name `rename` gives it.
template <typename Rename>
void write_fused_renamed(const testing::TempDir& dir, const Model& model,
                         const std::map<std::string, std::vector<float>>& w, Rename rename) {
  const int64_t n_experts = model.config().moe.n_experts, inter = model.config().moe.expert_hidden,
                hidden = model.config().model.d_model;
  std::map<std::string, std::vector<float>> tensors;
  std::map<std::string, std::vector<int64_t>> shapes;
  const std::string experts = ".block_sparse_moe.experts.";
  for (const ParamSpec& spec : model.table().specs()) {
    const auto at = spec.name.find(experts);
    if (at == std::string::npos) {
      tensors[rename(spec.name)] = w.at(spec.name), shapes[rename(spec.name)] = spec.shape;
      continue;
    }
    const std::string layer = spec.name.substr(0, at);
    std::vector<float>& gate_up = tensors[layer + ".mlp.experts.gate_up_proj"];
    std::vector<float>& down = tensors[layer + ".mlp.experts.down_proj"];
    gate_up.resize(n_experts * 2 * inter * hidden), down.resize(n_experts * hidden * inter);
    shapes[layer + ".mlp.experts.gate_up_proj"] = {n_experts, 2 * inter, hidden};
    shapes[layer + ".mlp.experts.down_proj"] = {n_experts, hidden, inter};
    const std::string e = spec.name.substr(at + experts.size());
    const int64_t j = std::stoll(e);
    const std::vector<float>& v = w.at(spec.name);
    if (e.ends_with("w1.weight")) std::copy(v.begin(), v.end(), gate_up.begin() + j * 2 * inter * hidden);
    if (e.ends_with("w3.weight")) std::copy(v.begin(), v.end(), gate_up.begin() + (j * 2 * inter + inter) * hidden);
    if (e.ends_with("w2.weight")) std::copy(v.begin(), v.end(), down.begin() + j * hidden * inter);
  }
  std::vector<TensorView> views;
  for (const auto& [name, v] : tensors) views.push_back({name, DType::F32, shapes[name], v.data()});
  write_safetensors(dir.file("model.safetensors"), views, {{"format", "pt"}});
}

// Mixtral fused (transformers v5): the router as mlp.gate.weight, the experts fused.
inline void write_fused(const testing::TempDir& dir, const Model& model,
                        const std::map<std::string, std::vector<float>>& w) {
  write_fused_renamed(dir, model, w, [](const std::string& name) {
    const std::string router = ".block_sparse_moe.gate.weight";
    const auto at = name.find(router);
    return at == std::string::npos ? name : name.substr(0, at) + ".mlp.gate.weight";
  });
  testing::write_all(dir.file("config.json"), kConfig);
}

// Every tensor under the name `rename` gives it, in `dtype` (F32 or BF16), one file.
template <typename Rename>
void write_renamed(const testing::TempDir& dir, const Model& model, const std::map<std::string, std::vector<float>>& w,
                   Rename rename, DType dtype) {
  std::vector<std::vector<uint16_t>> halves;
  std::vector<TensorView> views;
  for (const ParamSpec& spec : model.table().specs()) {
    const void* data = w.at(spec.name).data();
    if (dtype == DType::BF16) halves.push_back(to_bf16(w.at(spec.name))), data = halves.back().data();
    views.push_back({rename(spec.name), dtype, spec.shape, data});
  }
  write_safetensors(dir.file("model.safetensors"), views, {{"format", "pt"}});
}

}  // namespace moelab::hf::tiny_mixtral
