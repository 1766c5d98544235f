// Hugging Face config.json onto moelab's Config: Mixtral-8x7B's own file maps onto the settings it means, and every
// field moelab cannot honour is refused with its name, none ignored.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hf/hf_config.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab::hf {
namespace {

using testing::error_of;
using testing::TempDir;
using testing::write_all;

// mistralai/Mixtral-8x7B-v0.1's config.json, as published.
const std::string kMixtral8x7B = R"({
  "architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 32768, "model_type": "mixtral", "num_attention_heads": 32, "num_experts_per_tok": 2,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 8, "output_router_logits": false,
  "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.02, "sliding_window": null,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.36.0.dev0",
  "use_cache": true, "vocab_size": 32000})";

HfConfig read(const TempDir& dir, const std::string& text) {
  write_all(dir.file("config.json"), text);
  return read_hf_config(dir.file("config.json"));
}

// The config with `field` replaced (or added) as "field": value.
std::string with(const std::string& field, const std::string& value) {
  std::string text = kMixtral8x7B;
  const std::string key = "\"" + field + "\":";
  const auto at = text.find(key);
  if (at == std::string::npos) return text.substr(0, text.size() - 1) + ", " + key + " " + value + "}";
  const auto end = text.find_first_of(",}", text.find_first_not_of(' ', at + key.size()) + 1);
  return text.substr(0, at + key.size()) + " " + value + text.substr(end);
}

TEST(HfConfig, Mixtral8x7BMapsOntoItsSettings) {
  TempDir dir;
  const HfConfig hf = read(dir, kMixtral8x7B);
  EXPECT_EQ(hf.model_type, "mixtral");
  const Config& c = hf.config;
  EXPECT_EQ(c.model.vocab_size, 32000);
  EXPECT_EQ(c.model.d_model, 4096);
  EXPECT_EQ(c.model.n_layers, 32);
  EXPECT_EQ(c.model.n_heads, 32);
  EXPECT_EQ(c.model.n_kv_heads, 8);
  EXPECT_EQ(c.model.rope_theta, 1e6);
  EXPECT_EQ(c.model.rms_eps, 1e-5);
  EXPECT_EQ(c.model.max_seq_len, 32768);
  EXPECT_FALSE(c.model.tie_embeddings);
  EXPECT_EQ(c.moe.n_experts, 8);
  EXPECT_EQ(c.moe.expert_hidden, 14336);
  EXPECT_EQ(c.moe.first_dense_layers, 0);
  EXPECT_EQ(c.moe.n_shared_experts, 0);
  EXPECT_EQ(c.routing.router, RouterKind::Learned);
  EXPECT_EQ(c.routing.gating, Gating::Softmax);
  EXPECT_EQ(c.routing.rule, SelectionRule::TopK);
  EXPECT_EQ(c.routing.top_k, 2);
  EXPECT_TRUE(c.routing.renormalize);
  EXPECT_EQ(c.routing.load_balance_coef, 0.02);
  EXPECT_EQ(c.source, dir.file("config.json"));
  EXPECT_EQ(hf.unused, (std::vector<std::string>{"architectures", "attention_dropout", "bos_token_id", "eos_token_id",
                                                 "model_type", "output_router_logits", "sliding_window", "torch_dtype",
                                                 "transformers_version", "use_cache"}));
}

// transformers v5 writes the RoPE base inside rope_parameters; fields left out take MixtralConfig's defaults.
TEST(HfConfig, RopeParametersAndDefaults) {
  TempDir dir;
  const HfConfig hf = read(dir, R"({"model_type": "mixtral", "vocab_size": 100, "hidden_size": 64,
      "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 96, "num_hidden_layers": 2,
      "rope_parameters": {"rope_type": "default", "rope_theta": 5000.0}, "head_dim": 16})");
  EXPECT_EQ(hf.config.model.rope_theta, 5000.0);
  EXPECT_EQ(hf.config.model.rms_eps, 1e-5);
  EXPECT_EQ(hf.config.moe.n_experts, 8);
  EXPECT_EQ(hf.config.routing.top_k, 2);
  EXPECT_EQ(hf.config.model.max_seq_len, 131072);
}

// The fields and sizes of DeepSeekMoE-16B's config.json (remote code DeepseekForCausalLM).
const std::string kDeepseekMoe16B = R"({
  "architectures": ["DeepseekForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "auto_map": {"AutoConfig": "configuration_deepseek.DeepseekConfig"}, "aux_loss_alpha": 0.001,
  "bos_token_id": 100000, "eos_token_id": 100001, "first_k_dense_replace": 1, "hidden_act": "silu",
  "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 10944, "max_position_embeddings": 4096,
  "model_type": "deepseek", "moe_intermediate_size": 1408, "moe_layer_freq": 1, "n_routed_experts": 64,
  "n_shared_experts": 2, "norm_topk_prob": false, "num_attention_heads": 16, "num_experts_per_tok": 6,
  "num_hidden_layers": 28, "num_key_value_heads": 16, "pretraining_tp": 1, "rms_norm_eps": 1e-06,
  "rope_scaling": null, "rope_theta": 10000, "scoring_func": "softmax", "seq_aux": true,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.36.0", "use_cache": true,
  "vocab_size": 102400})";

TEST(HfConfig, DeepseekMoe16BMapsOntoItsSettings) {
  TempDir dir;
  const Config c = read(dir, kDeepseekMoe16B).config;
  EXPECT_EQ(c.model.d_model, 2048);
  EXPECT_EQ(c.model.n_layers, 28);
  EXPECT_EQ(c.model.n_kv_heads, 16);
  EXPECT_EQ(c.model.rms_eps, 1e-6);
  EXPECT_EQ(c.moe.n_experts, 64);
  EXPECT_EQ(c.moe.expert_hidden, 1408);
  EXPECT_EQ(c.moe.dense_hidden, 10944);
  EXPECT_EQ(c.moe.first_dense_layers, 1);
  EXPECT_EQ(c.moe.moe_every, 1);
  EXPECT_EQ(c.moe.n_shared_experts, 2);
  EXPECT_EQ(c.moe.shared_expert_hidden, 1408);
  EXPECT_EQ(c.routing.top_k, 6);
  EXPECT_FALSE(c.routing.renormalize);
  EXPECT_EQ(c.routing.load_balance_coef, 0.001);
}

// With one expert per token DeepSeek does not normalise even under norm_topk_prob: the weight stays the raw
// probability, so moelab's renormalize must stay off.
TEST(HfConfig, DeepseekNormalisesOnlyAboveOneExpert) {
  TempDir dir;
  std::string text = kDeepseekMoe16B;
  text.replace(text.find("\"num_experts_per_tok\": 6"), 24, "\"num_experts_per_tok\": 1");
  text.replace(text.find("\"norm_topk_prob\": false"), 23, "\"norm_topk_prob\": true");
  EXPECT_FALSE(read(dir, text).config.routing.renormalize);
}

struct Refusal {
  const char* what;
  std::string text;
  const char* expected;  // a piece of the error, after "file <path>: "
};

std::string deepseek_with(const std::string& field, const std::string& value) {
  std::string text = kDeepseekMoe16B;
  const std::string key = "\"" + field + "\": ";
  const auto at = text.find(key) + key.size();
  return text.substr(0, at) + value + text.substr(text.find_first_of(",}", at));
}

// The fields of allenai/OLMoE-1B-7B-0924's and Qwen/Qwen3-30B-A3B's config.json.
const std::string kOlmoe1B7B = R"({"architectures": ["OlmoeForCausalLM"], "attention_bias": false,
  "attention_dropout": 0.0, "clip_qkv": null, "eos_token_id": 50279, "hidden_act": "silu", "hidden_size": 2048,
  "initializer_range": 0.02, "intermediate_size": 1024, "max_position_embeddings": 4096, "model_type": "olmoe",
  "norm_topk_prob": false, "num_attention_heads": 16, "num_experts": 64, "num_experts_per_tok": 8,
  "num_hidden_layers": 16, "num_key_value_heads": 16, "output_router_logits": false, "pad_token_id": 1,
  "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0, "router_aux_loss_coef": 0.01,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.43.0.dev0",
  "use_cache": true, "vocab_size": 50304})";
const std::string kQwen3_30B = R"({"architectures": ["Qwen3MoeForCausalLM"], "attention_bias": false,
  "attention_dropout": 0.0, "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645,
  "head_dim": 128, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
  "intermediate_size": 6144, "max_position_embeddings": 40960, "max_window_layers": 48, "mlp_only_layers": [],
  "model_type": "qwen3_moe", "moe_intermediate_size": 768, "norm_topk_prob": true, "num_attention_heads": 32,
  "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48, "num_key_value_heads": 4,
  "output_router_logits": false, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000.0,
  "router_aux_loss_coef": 0.001, "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})";

// `text` with `field` set to `value` (added when absent).
std::string replaced(const std::string& text, const std::string& field, const std::string& value) {
  nlohmann::json j = nlohmann::json::parse(text);
  j[field] = nlohmann::json::parse(value);
  return j.dump();
}

TEST(HfConfig, OlmoeAndQwen3MoeMapOntoTheirSettings) {
  TempDir dir;
  const Config olmoe = read(dir, kOlmoe1B7B).config;
  EXPECT_EQ(olmoe.model.qk_norm, QkNorm::Whole);
  EXPECT_EQ(olmoe.model.clip_qkv, 0.0);
  EXPECT_FALSE(olmoe.model.qkv_bias);
  EXPECT_EQ(olmoe.moe.n_experts, 64);
  EXPECT_EQ(olmoe.moe.expert_hidden, 1024);
  EXPECT_EQ(olmoe.routing.top_k, 8);
  EXPECT_FALSE(olmoe.routing.renormalize);
  EXPECT_EQ(olmoe.routing.load_balance_coef, 0.01);
  const Config qwen3 = read(dir, kQwen3_30B).config;
  EXPECT_EQ(qwen3.model.qk_norm, QkNorm::PerHead);
  EXPECT_EQ(qwen3.model.head_dim, 128);
  EXPECT_EQ(qwen3.model.n_heads * qwen3.model.head_dim, 4096) << "wider than hidden_size";
  EXPECT_EQ(qwen3.model.n_kv_heads, 4);
  EXPECT_EQ(qwen3.moe.n_experts, 128);
  EXPECT_EQ(qwen3.moe.expert_hidden, 768);
  EXPECT_EQ(qwen3.moe.n_shared_experts, 0);
  EXPECT_EQ(qwen3.moe.first_dense_layers, 0);
  EXPECT_TRUE(qwen3.moe.dense_layers.empty());
  EXPECT_TRUE(qwen3.routing.renormalize);
  EXPECT_EQ(qwen3.model.rope_theta, 1e6);
}

TEST(HfConfig, EveryFieldMoelabCannotHonourIsRefusedByName) {
  const std::vector<Refusal> cases = {
      {"not JSON", "{", "not valid JSON"},
      {"not an object", "[]", "expected a JSON object, found array"},
      {"no model_type", R"({"vocab_size": 3})", "no string field 'model_type': not a Hugging Face model config"},
      {"unknown architecture", with("model_type", R"("jamba")"),
       "model_type 'jamba' is not supported (supported: deepseek, mixtral, olmoe, qwen2_moe, qwen3_moe)"},
      {"string for integer", with("hidden_size", R"("4096")"),
       "field 'hidden_size' must be an integer, found \"4096\""},
      {"float for integer", with("num_local_experts", "8.0"), "field 'num_local_experts' must be an integer"},
      {"string for number", with("rms_norm_eps", R"("1e-5")"), "field 'rms_norm_eps' must be a number"},
      {"number for bool", with("tie_word_embeddings", "0"), "field 'tie_word_embeddings' must be true or false"},
      {"gelu experts", with("hidden_act", R"("gelu")"), "field 'hidden_act' = \"gelu\": moelab's experts are SwiGLU"},
      {"odd heads", with("head_dim", "127"), "model.head_dim = 127 must be even"},
      {"sliding window", with("sliding_window", "4096"), "field 'sliding_window' = 4096: sliding-window attention"},
      {"rope scaling", with("rope_scaling", R"({"type": "linear", "factor": 2.0})"), "field 'rope_scaling'"},
      {"yarn parameters", with("rope_parameters", R"({"rope_type": "yarn", "factor": 4.0})"),
       "only rope_type \"default\""},
      {"unknown field", with("attention_bias", "true"),
       "field 'attention_bias' of a mixtral config is not known to moelab: refused rather than ignored"},
      {"two unknown fields", with("qk_norm", "true").substr(0, with("qk_norm", "true").size() - 1) + R"(, "x": 1})",
       "fields 'qk_norm', 'x' of a mixtral config are not known to moelab"},
      {"inconsistent values", with("num_key_value_heads", "5"), "n_kv_heads"},
      {"sigmoid DeepSeek scores", deepseek_with("scoring_func", R"("sigmoid")"),
       "field 'scoring_func' = \"sigmoid\": this architecture is implemented with softmax scores only"},
      {"MoE layers off moelab's rhythm", deepseek_with("moe_layer_freq", "2"),
       "field 'moe_layer_freq' = 2: moelab places MoE layers"},
      {"attention biases", deepseek_with("attention_bias", "true"), "field 'attention_bias' = true"},
      {"OLMoE output bias", replaced(kOlmoe1B7B, "attention_bias", "true"),
       "field 'attention_bias' = true: moelab's attention output projection has no bias"},
      {"OLMoE clip of 0", replaced(kOlmoe1B7B, "clip_qkv", "0"), "field 'clip_qkv' = 0.0: must be > 0"},
      {"Qwen sliding windows", replaced(kQwen3_30B, "use_sliding_window", "true"),
       "field 'use_sliding_window' = true: sliding-window attention is not implemented"},
      {"Qwen sliding layer", replaced(kQwen3_30B, "layer_types", R"(["full_attention", "sliding_attention"])"),
       "field 'layer_types' = \"sliding_attention\": only full_attention layers"},
      {"Qwen layer list of floats", replaced(kQwen3_30B, "mlp_only_layers", "[1.5]"),
       "field 'mlp_only_layers' must be a list of integers, found [1.5]"},
      {"Qwen dense layer out of range", replaced(kQwen3_30B, "mlp_only_layers", "[48]"),
       "moe.dense_layers[0] = 48 must be a layer index between 0 and model.n_layers - 1 = 47"},
      {"Qwen sparse step 0", replaced(kQwen3_30B, "decoder_sparse_step", "0"),
       "field 'decoder_sparse_step' = 0: must be at least 1"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    const std::string err = error_of([&] { read(dir, c.text); });
    EXPECT_CONTAINS(err, dir.file("config.json") + ": ") << " case: " << c.what;
    EXPECT_CONTAINS(err, c.expected) << " case: " << c.what;
  }
}

TEST(HfConfig, TellsHuggingFaceFoldersFromMoelabCheckpoints) {
  TempDir dir;
  EXPECT_FALSE(is_hf_model_dir(dir.path().string()));
  write_all(dir.file("config.json"), R"({"model": {"d_model": 256}})");  // a moelab checkpoint's
  EXPECT_FALSE(is_hf_model_dir(dir.path().string()));
  write_all(dir.file("config.json"), kMixtral8x7B);
  EXPECT_TRUE(is_hf_model_dir(dir.path().string()));
}

}  // namespace
}  // namespace moelab::hf
