#include "hf/hf_config.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/error.h"
#include "data/read_file.h"
#include "model/config.h"

namespace moelab::hf {
namespace {

using json = nlohmann::json;

// Fields of transformers' PretrainedConfig and of the files it writes that never change a forward pass: token ids
// (the tokenizer's business), the dtype the weights were saved in (the safetensors headers say it per tensor),
// transformers' bookkeeping, and switches of generation, output and fine-tuning heads.
const std::set<std::string>& bookkeeping_fields() {
  static const std::set<std::string> fields = {"_name_or_path",
                                               "add_cross_attention",
                                               "architectures",
                                               "auto_map",
                                               "bos_token_id",
                                               "chunk_size_feed_forward",
                                               "cross_attention_hidden_size",
                                               "decoder_start_token_id",
                                               "dtype",
                                               "eos_token_id",
                                               "finetuning_task",
                                               "id2label",
                                               "is_decoder",
                                               "is_encoder_decoder",
                                               "label2id",
                                               "model_type",
                                               "output_attentions",
                                               "output_hidden_states",
                                               "pad_token_id",
                                               "prefix",
                                               "problem_type",
                                               "pruned_heads",
                                               "return_dict",
                                               "sep_token_id",
                                               "task_specific_params",
                                               "tf_legacy_loss",
                                               "tie_encoder_decoder",
                                               "tokenizer_class",
                                               "torch_dtype",
                                               "torchscript",
                                               "transformers_version",
                                               "use_bfloat16",
                                               "use_cache"};
  return fields;
}

// The fields of one config.json, each taken at most once; finish() refuses any left over.
class Fields {
 public:
  Fields(const json& j, std::string path, std::string model_type)
      : j_(j), path_(std::move(path)), model_type_(std::move(model_type)) {}

  bool has(const std::string& key) const { return j_.contains(key) && !j_[key].is_null(); }

  int64_t integer(const std::string& key, std::optional<int64_t> fallback = std::nullopt) {
    const json* v = take(key, fallback.has_value());
    if (!v) return *fallback;
    if (!v->is_number_integer()) wrong_type(key, "an integer", *v);
    return v->get<int64_t>();
  }
  double number(const std::string& key, std::optional<double> fallback = std::nullopt) {
    const json* v = take(key, fallback.has_value());
    if (!v) return *fallback;
    if (!v->is_number()) wrong_type(key, "a number", *v);
    return v->get<double>();
  }
  bool boolean(const std::string& key, std::optional<bool> fallback = std::nullopt) {
    const json* v = take(key, fallback.has_value());
    if (!v) return *fallback;
    if (!v->is_boolean()) wrong_type(key, "true or false", *v);
    return v->get<bool>();
  }
  std::string string(const std::string& key, std::optional<std::string> fallback = std::nullopt) {
    const json* v = take(key, fallback.has_value());
    if (!v) return *fallback;
    if (!v->is_string()) wrong_type(key, "a string", *v);
    return v->get<std::string>();
  }
  std::vector<int64_t> integers(const std::string& key) {  // absent or null: empty
    const json* v = take(key, true);
    std::vector<int64_t> out;
    if (!v) return out;
    if (!v->is_array()) wrong_type(key, "a list of integers", *v);
    for (const json& x : *v) {
      if (!x.is_number_integer()) wrong_type(key, "a list of integers", *v);
      out.push_back(x.get<int64_t>());
    }
    return out;
  }
  std::vector<std::string> strings(const std::string& key) {  // absent or null: empty
    const json* v = take(key, true);
    std::vector<std::string> out;
    if (!v) return out;
    if (!v->is_array()) wrong_type(key, "a list of strings", *v);
    for (const json& x : *v) {
      if (!x.is_string()) wrong_type(key, "a list of strings", *v);
      out.push_back(x.get<std::string>());
    }
    return out;
  }
  // The field's object (absent or null: nullptr).
  const json* object(const std::string& key) {
    const json* v = take(key, true);
    if (v && !v->is_object()) wrong_type(key, "an object", *v);
    return v;
  }
  // A field that must be absent or null: what it would configure, moelab does not compute.
  void require_absent(const std::string& key, const std::string& why) {
    const json* v = take(key, true);
    if (v) refuse(key, *v, why);
  }
  // A field known not to change the forward pass.
  void unused(const std::string& key) {
    if (j_.contains(key)) take(key, true), unused_.push_back(key);
  }
  [[noreturn]] void refuse(const std::string& key, const json& value, const std::string& why) const {
    throw_error("file ", path_, ": field '", key, "' = ", value.dump(), ": ", why);
  }

  // Takes the bookkeeping fields, then refuses any field not taken; returns the unused ones, sorted.
  std::vector<std::string> finish() {
    for (const auto& [key, value] : j_.items())
      if (bookkeeping_fields().count(key) && !taken_.count(key)) unused(key);
    std::vector<std::string> unknown;
    for (const auto& [key, value] : j_.items())
      if (!taken_.count(key)) unknown.push_back(key);
    if (!unknown.empty()) {
      std::string list;
      for (const auto& k : unknown) list += (list.empty() ? "'" : ", '") + k + "'";
      throw_error("file ", path_, ": field", unknown.size() > 1 ? "s " : " ", list, " of a ", model_type_, " config ",
                  unknown.size() > 1 ? "are" : "is",
                  " not known to moelab: refused rather than ignored, as it may change what the model computes");
    }
    std::sort(unused_.begin(), unused_.end());
    return unused_;
  }

 private:
  // The value, or nullptr when absent or null (then allowed only where the field is optional).
  const json* take(const std::string& key, bool optional) {
    taken_.insert(key);
    if (!has(key)) {
      if (!optional) throw_error("file ", path_, ": missing field '", key, "'");
      return nullptr;
    }
    return &j_[key];
  }
  [[noreturn]] void wrong_type(const std::string& key, const char* expected, const json& found) const {
    throw_error("file ", path_, ": field '", key, "' must be ", expected, ", found ", found.dump());
  }

  const json& j_;
  std::string path_, model_type_;
  std::set<std::string> taken_;
  std::vector<std::string> unused_;
};

// rope_theta (transformers v4) or rope_parameters {rope_type, rope_theta} (v5); only unscaled RoPE.
double rope_theta(Fields& f, double fallback) {
  f.require_absent("rope_scaling", "scaled RoPE (linear, dynamic, YaRN, ...) is not implemented");
  double theta = f.number("rope_theta", fallback);
  if (const json* p = f.object("rope_parameters")) {
    // The type first: a scaled RoPE's own keys would otherwise be reported as unknown.
    if (p->contains("rope_type") && (*p)["rope_type"] != "default")
      f.refuse("rope_parameters", *p, "only rope_type \"default\" (unscaled) is implemented");
    for (const auto& [key, value] : p->items()) {
      if (key == "rope_type") {
        continue;
      } else if (key == "rope_theta") {
        if (!value.is_number()) f.refuse("rope_parameters", *p, "rope_theta must be a number");
        theta = value.get<double>();
      } else {
        f.refuse("rope_parameters", *p, "unknown key '" + key + "' (only rope_type and rope_theta are implemented)");
      }
    }
  }
  return theta;
}

// The defaults of an architecture's config class for the fields every Llama-style decoder has.
struct DecoderDefaults {
  int64_t vocab_size, hidden_size, num_hidden_layers, num_attention_heads;
  int64_t num_key_value_heads;  // 0: as many as the attention heads
  int64_t max_position_embeddings;
  double rms_norm_eps, rope_theta;
};

// The fields of a pre-RMSNorm decoder with RoPE, (grouped-query) attention and SwiGLU MLPs, onto moelab's model.
void map_decoder(Fields& f, const DecoderDefaults& d, ModelConfig& m) {
  m.vocab_size = f.integer("vocab_size", d.vocab_size);
  m.d_model = f.integer("hidden_size", d.hidden_size);
  m.n_layers = f.integer("num_hidden_layers", d.num_hidden_layers);
  m.n_heads = f.integer("num_attention_heads", d.num_attention_heads);
  m.n_kv_heads = f.integer("num_key_value_heads", d.num_key_value_heads > 0 ? d.num_key_value_heads : m.n_heads);
  if (const std::string act = f.string("hidden_act", "silu"); act != "silu")
    f.refuse("hidden_act", act, "moelab's experts are SwiGLU (silu)");
  m.max_seq_len = f.integer("max_position_embeddings", d.max_position_embeddings);
  m.init_std = f.number("initializer_range", 0.02);
  m.rms_eps = f.number("rms_norm_eps", d.rms_norm_eps);
  m.tie_embeddings = f.boolean("tie_word_embeddings", false);
  m.rope_theta = rope_theta(f, d.rope_theta);
  f.unused("attention_dropout");  // training only
}

// head_dim, which transformers' Mixtral, Qwen2-MoE and Qwen3-MoE read when it is set (null or absent: hidden_size /
// num_attention_heads).
void map_head_dim(Fields& f, ModelConfig& m) {
  if (f.has("head_dim"))
    m.head_dim = f.integer("head_dim");
  else
    f.unused("head_dim");
}

// Sliding-window attention, which Qwen's configs switch on with use_sliding_window (and place with
// max_window_layers or layer_types): moelab's attention is full, so only a config that leaves it off is mapped.
void refuse_sliding_window(Fields& f) {
  if (f.boolean("use_sliding_window", false))
    f.refuse("use_sliding_window", true, "sliding-window attention is not implemented");
  f.unused("sliding_window"), f.unused("max_window_layers");  // read only when use_sliding_window is true
  for (const std::string& type : f.strings("layer_types"))
    if (type != "full_attention")
      f.refuse("layer_types", type, "only full_attention layers are implemented (no sliding windows)");
}

// Mixtral (transformers' MixtralConfig; defaults are that class's): pre-RMSNorm decoder with RoPE and grouped-query
// attention, every layer an MoE of SwiGLU experts, softmax router, top-k, the k weights renormalised to sum to 1.
// moelab's tensor names are Mixtral's.
Config map_mixtral(Fields& f) {
  Config c;
  auto& m = c.model;
  map_decoder(f, {32000, 4096, 32, 32, 8, 4096 * 32, 1e-5, 1e6}, m);
  map_head_dim(f, m);
  if (f.has("sliding_window")) {
    const int64_t window = f.integer("sliding_window");
    if (window < m.max_seq_len)
      f.refuse("sliding_window", window,
               "sliding-window attention is not implemented (a window at least max_position_embeddings long is)");
  } else {
    f.unused("sliding_window");
  }
  f.unused("router_jitter_noise");   // training only: noise on the router's input
  f.unused("output_router_logits");  // what the forward returns, not what it computes

  auto& moe = c.moe;
  moe.n_experts = f.integer("num_local_experts", 8);
  moe.expert_hidden = f.integer("intermediate_size", 14336);
  auto& r = c.routing;
  r.router = RouterKind::Learned;
  r.gating = Gating::Softmax;
  r.rule = SelectionRule::TopK;
  r.top_k = f.integer("num_experts_per_tok", 2);
  r.renormalize = true;
  r.load_balance_coef = f.number("router_aux_loss_coef", 0.001);
  r.z_loss_coef = 0.0;  // Mixtral trains without one
  return c;
}

// The original DeepSeekMoE (deepseek-ai/deepseek-moe-16b, remote code DeepseekForCausalLM; defaults are its
// DeepseekConfig's): Llama attention; the first first_k_dense_replace layers, and those off the moe_layer_freq
// rhythm, are dense SwiGLU MLPs of intermediate_size; the others route each token to num_experts_per_tok of
// n_routed_experts experts by softmax, the weights raw unless norm_topk_prob (and k > 1), and add n_shared_experts
// ungated shared experts, fused into one MLP of n_shared_experts x moe_intermediate_size.
Config map_deepseek(Fields& f) {
  Config c;
  map_decoder(f, {102400, 4096, 30, 32, 0, 2048, 1e-6, 10000.0}, c.model);
  if (f.boolean("attention_bias", false)) f.refuse("attention_bias", true, "moelab's attention has no biases");
  f.unused("pretraining_tp");  // splits the same products into slices: the same model
  f.unused("seq_aux");         // training only: the balance loss per sequence instead of per batch
  if (const std::string score = f.string("scoring_func", "softmax"); score != "softmax")
    f.refuse("scoring_func", score, "this architecture is implemented with softmax scores only");

  auto& moe = c.moe;
  if (!f.has("n_routed_experts")) f.refuse("n_routed_experts", nullptr, "a model without routed experts is not an MoE");
  moe.n_experts = f.integer("n_routed_experts");
  moe.expert_hidden = f.integer("moe_intermediate_size", 1407);
  moe.dense_hidden = f.integer("intermediate_size", 11008);
  moe.first_dense_layers = f.integer("first_k_dense_replace", 0);
  const int64_t freq = f.integer("moe_layer_freq", 1);
  // DeepSeek's MoE layers are i >= first_k_dense_replace with i % moe_layer_freq == 0; moelab's are
  // i >= first_dense_layers with (i - first_dense_layers) % moe_every == 0: the same layers when freq divides first.
  if (freq < 1 || moe.first_dense_layers % freq != 0)
    f.refuse("moe_layer_freq", freq,
             "moelab places MoE layers every moe_layer_freq layers from the first one after "
             "the dense ones; first_k_dense_replace must then be a multiple of it");
  moe.moe_every = freq;
  moe.n_shared_experts = f.has("n_shared_experts") ? f.integer("n_shared_experts") : 0;
  if (!f.has("n_shared_experts")) f.unused("n_shared_experts");
  moe.shared_expert_hidden = moe.expert_hidden;
  auto& r = c.routing;
  r.router = RouterKind::Learned;
  r.gating = Gating::Softmax;
  r.rule = SelectionRule::TopK;
  r.top_k = f.integer("num_experts_per_tok", 2);
  r.renormalize = f.boolean("norm_topk_prob", false) && r.top_k > 1;  // one expert's weight is its raw probability
  r.load_balance_coef = f.number("aux_loss_alpha", 0.001);
  r.z_loss_coef = 0.0;
  return c;
}

// The routing of OLMoE and Qwen-MoE: a softmax router (mlp.gate), top num_experts_per_tok, the weights raw unless
// norm_topk_prob, SwiGLU experts of moe_intermediate_size (OLMoE: intermediate_size).
void map_softmax_top_k(Fields& f, Config& c, int64_t experts, int64_t k, double aux_loss_coef) {
  c.moe.n_experts = f.integer("num_experts", experts);
  if (c.moe.n_experts < 1) f.refuse("num_experts", c.moe.n_experts, "a model without routed experts is not an MoE");
  auto& r = c.routing;
  r.router = RouterKind::Learned;
  r.gating = Gating::Softmax;
  r.rule = SelectionRule::TopK;
  r.top_k = f.integer("num_experts_per_tok", k);
  r.renormalize = f.boolean("norm_topk_prob", false);
  r.load_balance_coef = f.number("router_aux_loss_coef", aux_loss_coef);
  r.z_loss_coef = 0.0;
  f.unused("output_router_logits");  // what the forward returns, not what it computes
}

// Qwen's MoE layer placement: layer i is MoE when (i + 1) % decoder_sparse_step == 0 and i is not in
// mlp_only_layers; the others are dense SwiGLU MLPs of intermediate_size.
void map_qwen_layers(Fields& f, Config& c, int64_t dense_hidden) {
  const int64_t step = f.integer("decoder_sparse_step", 1);
  if (step < 1) f.refuse("decoder_sparse_step", step, "must be at least 1");
  c.moe.first_dense_layers = std::min(step - 1, c.model.n_layers);  // i = step-1, 2*step-1, ...
  c.moe.moe_every = step;
  c.moe.dense_layers = f.integers("mlp_only_layers");
  c.moe.dense_hidden = f.integer("intermediate_size", dense_hidden);
}

// OLMoE (transformers' OlmoeConfig; defaults are that class's): Llama attention whose queries and keys are each
// RMS-normalised over their whole projection (q_norm [hidden], k_norm [kv heads x head size]) and then, with
// clip_qkv, q, k and v clamped; every layer an MoE of intermediate_size experts, softmax top-k, raw weights unless
// norm_topk_prob.
Config map_olmoe(Fields& f) {
  Config c;
  map_decoder(f, {50304, 2048, 16, 16, 0, 4096, 1e-5, 10000.0}, c.model);
  if (f.boolean("attention_bias", false))
    f.refuse("attention_bias", true, "moelab's attention output projection has no bias");
  c.model.qk_norm = QkNorm::Whole;
  if (f.has("clip_qkv")) {
    c.model.clip_qkv = f.number("clip_qkv");
    if (c.model.clip_qkv <= 0) f.refuse("clip_qkv", c.model.clip_qkv, "must be > 0 (or null: no clamp)");
  } else {
    f.unused("clip_qkv");
  }
  c.moe.expert_hidden = f.integer("intermediate_size", 2048);
  map_softmax_top_k(f, c, 64, 8, 0.01);
  return c;
}

// Qwen2-MoE (transformers' Qwen2MoeConfig): Llama attention with q/k/v biases (qkv_bias); MoE layers as
// map_qwen_layers places them, softmax top-k over num_experts experts of moe_intermediate_size, plus one shared
// expert of shared_expert_intermediate_size whose output is scaled per token by sigmoid(shared_expert_gate . x).
Config map_qwen2_moe(Fields& f) {
  Config c;
  map_decoder(f, {151936, 2048, 24, 16, 16, 32768, 1e-6, 10000.0}, c.model);
  map_head_dim(f, c.model);
  refuse_sliding_window(f);
  c.model.qkv_bias = f.boolean("qkv_bias", true);
  map_qwen_layers(f, c, 5632);
  c.moe.expert_hidden = f.integer("moe_intermediate_size", 1408);
  c.moe.n_shared_experts = 1;
  c.moe.shared_expert_hidden = f.integer("shared_expert_intermediate_size", 5632);
  if (c.moe.shared_expert_hidden < 1)
    f.refuse("shared_expert_intermediate_size", c.moe.shared_expert_hidden, "must be at least 1");
  c.moe.shared_expert_gate = true;
  map_softmax_top_k(f, c, 60, 4, 0.001);
  return c;
}

// Qwen3-MoE (transformers' Qwen3MoeConfig): Llama attention whose queries and keys are RMS-normalised per head
// (q_norm, k_norm [head_dim]), heads head_dim wide; MoE layers as map_qwen_layers places them, softmax top-k over
// num_experts experts of moe_intermediate_size, no shared expert.
Config map_qwen3_moe(Fields& f) {
  Config c;
  map_decoder(f, {151936, 2048, 24, 32, 4, 32768, 1e-6, 10000.0}, c.model);
  map_head_dim(f, c.model);
  refuse_sliding_window(f);
  if (f.boolean("attention_bias", false))
    f.refuse("attention_bias", true, "moelab's attention output projection has no bias");
  c.model.qk_norm = QkNorm::PerHead;
  map_qwen_layers(f, c, 6144);
  c.moe.expert_hidden = f.integer("moe_intermediate_size", 768);
  map_softmax_top_k(f, c, 128, 8, 0.001);
  return c;
}

using Mapper = Config (*)(Fields&);
const std::map<std::string, Mapper>& mappers() {
  static const std::map<std::string, Mapper> m = {{"deepseek", map_deepseek},
                                                  {"mixtral", map_mixtral},
                                                  {"olmoe", map_olmoe},
                                                  {"qwen2_moe", map_qwen2_moe},
                                                  {"qwen3_moe", map_qwen3_moe}};
  return m;
}

}  // namespace

const std::vector<std::string>& supported_model_types() {
  static const std::vector<std::string> types = [] {
    std::vector<std::string> t;
    for (const auto& [name, mapper] : mappers()) t.push_back(name);
    return t;
  }();
  return types;
}

HfConfig read_hf_config(const std::string& path) {
  const std::string text = data::read_file_bytes(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw_error("file ", path, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) throw_error("file ", path, ": expected a JSON object, found ", j.type_name());
  if (!j.contains("model_type") || !j["model_type"].is_string())
    throw_error("file ", path, ": no string field 'model_type': not a Hugging Face model config");
  HfConfig out;
  out.model_type = j["model_type"].get<std::string>();
  const auto it = mappers().find(out.model_type);
  if (it == mappers().end()) {
    std::string known;
    for (const auto& t : supported_model_types()) known += (known.empty() ? "" : ", ") + t;
    throw_error("file ", path, ": model_type '", out.model_type, "' is not supported (supported: ", known, ")");
  }
  Fields fields(j, path, out.model_type);
  out.config = it->second(fields);
  out.unused = fields.finish();
  out.config.source = path;
  out.config.train.seq_len = std::min(out.config.train.seq_len, out.config.model.max_seq_len);
  validate(out.config);
  return out;
}

bool is_hf_model_dir(const std::string& dir) {
  const std::filesystem::path config = std::filesystem::path(dir) / "config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(config, ec)) return false;
  try {
    const json j = json::parse(data::read_file_bytes(config.string()));
    return j.is_object() && j.contains("model_type");
  } catch (const std::exception&) {
    return false;  // not ours to judge here: whoever reads the file reports what is wrong with it
  }
}

}  // namespace moelab::hf
