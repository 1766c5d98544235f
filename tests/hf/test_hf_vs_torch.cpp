// Imported models against an independent reference: tests/oracle/hf_reference.py, PyTorch in float64 written from
// the architectures' modeling code, reads the same folder itself. Logits within 1e-4 relative and the same experts
// for every token in every MoE layer: Mixtral in per-expert BF16 shards and in the fused F32 layout, the original
// DeepSeekMoE with raw and renormalised routing weights, OLMoE (whole-width q/k norms, clip_qkv), Qwen2-MoE (q/k/v
// biases, a gated shared expert, a dense layer) and Qwen3-MoE (per-head q/k norms, heads wider than hidden_size /
// heads), each per expert and fused.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "hf/hf_config.h"
#include "hf/hf_oracle.h"
#include "hf/hf_weights.h"
#include "hf/tiny_mixtral.h"
#include "io/safetensors.h"
#include "io/safetensors_folder.h"
#include "model/model.h"
#include "support/gradcheck.h"
#include "support/temp_dir.h"

namespace moelab::hf {
namespace {

using namespace tiny_mixtral;

const std::vector<int32_t> kTokens = {3, 17, 5, 39, 0, 22, 8, 11, 17, 17, 30, 2};

void expect_matches_oracle(const testing::TempDir& dir) {
  const std::string model_dir = dir.path().string();
  const HfConfig hf = read_hf_config(model_dir + "/config.json");
  Model model(hf.config);
  load_hf_weights(SafetensorsFolder::open(model_dir), hf.model_type, model);
  const int64_t T = static_cast<int64_t>(kTokens.size()), V = hf.config.model.vocab_size;
  model.forward(kTokens.data(), nullptr, 1, T);
  const std::vector<float> logits(model.logits(), model.logits() + T * V);

  testing::TempDir out;
  const SafetensorsFile oracle = run_hf_oracle(model_dir, kTokens, out);
  EXPECT_LT(testing::max_rel_error(logits, read_f64(oracle, "logits")), 1e-4);

  const int64_t k = hf.config.routing.top_k;
  for (const Model::LayerRouting& layer : model.layer_routing()) {
    const TensorInfo& info = oracle.info("experts." + std::to_string(layer.layer));
    std::vector<int64_t> chosen(info.nbytes / sizeof(int64_t));
    oracle.read("experts." + std::to_string(layer.layer), DType::I64, info.shape, chosen.data());
    const auto& plan = *layer.token_plan;
    for (int64_t t = 0; t < T; ++t) {
      const std::set<int64_t> want(chosen.begin() + t * k, chosen.begin() + (t + 1) * k);
      std::set<int64_t> got;
      for (int32_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s) got.insert(plan.slot_expert[s]);
      EXPECT_EQ(got, want) << "layer " << layer.layer << " token " << t;
    }
  }
}

// A tiny Mixtral folder in the layout `write` stores (one of tiny_mixtral's), against the reference.
template <typename Write>
void check_layout(Write write) {
  testing::TempDir dir;
  testing::write_all(dir.file("config.json"), kConfig);
  const Model shape_of(read_hf_config(dir.file("config.json")).config);
  write(dir, shape_of, random_weights(shape_of));
  expect_matches_oracle(dir);
}

TEST(HfMixtralVsTorch, PerExpertBf16Shards) { check_layout(write_per_expert); }

TEST(HfMixtralVsTorch, FusedF32Experts) { check_layout(write_fused); }

// A tiny original DeepSeekMoE: a dense first layer, then MoE layers of 6 experts, top-3, with two ungated shared
// experts; the routing weights raw or renormalised.
std::string deepseek_config(bool norm_topk_prob) {
  return std::string(R"({"model_type": "deepseek", "vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 3,
      "num_attention_heads": 4, "num_key_value_heads": 4, "intermediate_size": 20, "moe_intermediate_size": 8,
      "n_routed_experts": 6, "n_shared_experts": 2, "num_experts_per_tok": 3, "first_k_dense_replace": 1,
      "moe_layer_freq": 1, "scoring_func": "softmax", "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
      "rope_theta": 10000.0, "norm_topk_prob": )") +
         (norm_topk_prob ? "true" : "false") + "}";
}

// `name` with the first occurrence of each `from` replaced by its `to`, in order.
std::string renamed(const std::string& name, const std::vector<std::pair<std::string, std::string>>& renames) {
  std::string out = name;
  for (const auto& [from, to] : renames)
    if (const auto at = out.find(from); at != std::string::npos) out.replace(at, from.size(), to);
  return out;
}

// DeepSeek's names for moelab's MoE tensors, written out here rather than taken from the importer.
std::string deepseek_name(const std::string& name) {
  static const std::vector<std::pair<std::string, std::string>> renames = {
      {".block_sparse_moe.gate.", ".mlp.gate."},
      {".block_sparse_moe.shared_experts.", ".mlp.shared_experts."},
      {".block_sparse_moe.experts.", ".mlp.experts."},
      {".w1.weight", ".gate_proj.weight"},
      {".w3.weight", ".up_proj.weight"},
      {".w2.weight", ".down_proj.weight"}};
  return renamed(name, renames);
}

void check_deepseek(bool norm_topk_prob, DType dtype) {
  testing::TempDir dir;
  testing::write_all(dir.file("config.json"), deepseek_config(norm_topk_prob));
  const HfConfig hf = read_hf_config(dir.file("config.json"));
  ASSERT_EQ(hf.config.moe.first_dense_layers, 1);
  ASSERT_EQ(hf.config.routing.renormalize, norm_topk_prob);
  const Model shape_of(hf.config);
  write_renamed(dir, shape_of, random_weights(shape_of), deepseek_name, dtype);
  expect_matches_oracle(dir);
}

TEST(HfDeepseekVsTorch, RawWeightsBf16) { check_deepseek(false, DType::BF16); }

TEST(HfDeepseekVsTorch, RenormalisedWeightsF32) { check_deepseek(true, DType::F32); }

// The names OLMoE and Qwen give moelab's MoE tensors, written out here rather than taken from the importer.
std::string qwen_name(const std::string& name) {
  static const std::vector<std::pair<std::string, std::string>> renames = {
      {".block_sparse_moe.gate.", ".mlp.gate."},
      {".block_sparse_moe.shared_experts.", ".mlp.shared_expert."},
      {".block_sparse_moe.shared_expert_gate.", ".mlp.shared_expert_gate."},
      {".block_sparse_moe.experts.", ".mlp.experts."},
      {".w1.weight", ".gate_proj.weight"},
      {".w3.weight", ".up_proj.weight"},
      {".w2.weight", ".down_proj.weight"}};
  return renamed(name, renames);
}

// A tiny model of `config` (an OLMoE or Qwen config.json), per expert in `dtype` or fused in F32, against the
// reference; `expect` checks what the config mapped to.
template <typename Expect>
void check_qwen_like(const std::string& config, bool fused, DType dtype, Expect expect) {
  testing::TempDir dir;
  testing::write_all(dir.file("config.json"), config);
  const HfConfig hf = read_hf_config(dir.file("config.json"));
  expect(hf.config);
  const Model shape_of(hf.config);
  if (fused)
    write_fused_renamed(dir, shape_of, random_weights(shape_of), qwen_name);
  else
    write_renamed(dir, shape_of, random_weights(shape_of), qwen_name, dtype);
  expect_matches_oracle(dir);
}

// OLMoE: q/k norms over the whole projection, raw top-3, and clip_qkv 0.3: the random weights (at most 0.5) give
// normalised q and k of RMS up to 0.5 and v of RMS about 0.5, so that many values are clamped and many are not.
const std::string kOlmoe = R"({"model_type": "olmoe", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 8,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "num_experts": 6,
    "num_experts_per_tok": 3, "norm_topk_prob": false, "clip_qkv": 0.3, "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "attention_bias": false, "pad_token_id": 1})";

void expect_olmoe(const Config& c) {
  EXPECT_EQ(c.model.qk_norm, QkNorm::Whole);
  EXPECT_EQ(c.model.clip_qkv, 0.3);
  EXPECT_FALSE(c.routing.renormalize);
  EXPECT_EQ(c.routing.top_k, 3);
}

TEST(HfOlmoeVsTorch, PerExpertBf16) { check_qwen_like(kOlmoe, false, DType::BF16, expect_olmoe); }

TEST(HfOlmoeVsTorch, FusedF32) { check_qwen_like(kOlmoe, true, DType::F32, expect_olmoe); }

// Qwen2-MoE: q/k/v biases, a shared expert under its sigmoid gate, layer 1 dense by mlp_only_layers, renormalised.
const std::string kQwen2Moe = R"({"model_type": "qwen2_moe", "vocab_size": 40, "hidden_size": 16,
    "intermediate_size": 20, "moe_intermediate_size": 8, "shared_expert_intermediate_size": 12,
    "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "num_experts": 6,
    "num_experts_per_tok": 2, "norm_topk_prob": true, "decoder_sparse_step": 1, "mlp_only_layers": [1],
    "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "use_sliding_window": false,
    "sliding_window": 32, "max_window_layers": 2, "router_aux_loss_coef": 0.001})";

void expect_qwen2_moe(const Config& c) {
  EXPECT_TRUE(c.model.qkv_bias);
  EXPECT_TRUE(c.moe.shared_expert_gate);
  EXPECT_EQ(c.moe.shared_expert_hidden, 12);
  EXPECT_EQ(c.moe.dense_layers, std::vector<int64_t>{1});
  EXPECT_EQ(c.moe.dense_hidden, 20);
  EXPECT_TRUE(c.routing.renormalize);
}

TEST(HfQwen2MoeVsTorch, PerExpertBf16) { check_qwen_like(kQwen2Moe, false, DType::BF16, expect_qwen2_moe); }

TEST(HfQwen2MoeVsTorch, FusedF32) { check_qwen_like(kQwen2Moe, true, DType::F32, expect_qwen2_moe); }

// Qwen3-MoE: per-head q/k norms, heads 8 wide (4 x 8 = 32, not hidden_size 16), MoE every second layer
// (decoder_sparse_step 2: layers 1 and 3), raw weights, the theta in transformers v5's rope_parameters.
const std::string kQwen3Moe = R"({"model_type": "qwen3_moe", "vocab_size": 40, "hidden_size": 16,
    "intermediate_size": 20, "moe_intermediate_size": 8, "num_hidden_layers": 4, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 8, "num_experts": 6, "num_experts_per_tok": 2, "norm_topk_prob": false,
    "decoder_sparse_step": 2, "mlp_only_layers": [], "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000.0}, "attention_bias": false,
    "use_sliding_window": false, "sliding_window": null, "tie_word_embeddings": true})";

void expect_qwen3_moe(const Config& c) {
  EXPECT_EQ(c.model.qk_norm, QkNorm::PerHead);
  EXPECT_EQ(c.model.head_dim, 8);
  EXPECT_EQ(c.model.rope_theta, 1000.0);
  EXPECT_EQ(c.moe.first_dense_layers, 1);
  EXPECT_EQ(c.moe.moe_every, 2);
  EXPECT_FALSE(c.routing.renormalize);
}

TEST(HfQwen3MoeVsTorch, PerExpertF32) { check_qwen_like(kQwen3Moe, false, DType::F32, expect_qwen3_moe); }

TEST(HfQwen3MoeVsTorch, FusedF32) { check_qwen_like(kQwen3Moe, true, DType::F32, expect_qwen3_moe); }

}  // namespace
}  // namespace moelab::hf
