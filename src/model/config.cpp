#include "model/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "model/memory_estimate.h"
#include "routing/selection_rule.h"

namespace moelab {
namespace {

namespace fs = std::filesystem;

struct SectionDoc {
  std::string_view name;
  std::string_view doc;
};

// Tables of the TOML file (and objects of config.json), in order, with what each configures.
constexpr SectionDoc kSections[] = {
    {"data", "Where the tokenized corpus is."},
    {"model", "The decoder-only transformer (LLaMA style: RMSNorm, RoPE attention, SwiGLU feed-forward)."},
    {"moe", "Which layers are Mixture-of-Experts layers, and the size of their experts."},
    {"routing", "How a token is assigned to experts, and the auxiliary losses that shape the router."},
    {"train", "Optimisation, schedule, evaluation, checkpoints and logging."},
};

// Section and key are spelled once, as the C++ member names: the TOML, --set and JSON names cannot drift from the
// struct, and a renamed member fails to compile here.
// clang-format off
#define MOELAB_FIELD(section, key, ...) \
  ConfigField { #section, #key, [](Config& c) { return field_ref(&c.section.key); }, __VA_ARGS__ }
#define MOELAB_PATH_FIELD(section, key, doc) MOELAB_FIELD(section, key, doc, /*path=*/true)
// clang-format on

std::vector<ConfigField> make_fields() {
  return {
      MOELAB_PATH_FIELD(data, dir,
                        "A folder written by `moelab data`: meta.json, the token files and tokenizer.model."),

      MOELAB_FIELD(model, vocab_size,
                   "Vocabulary size. 0 takes it from the data folder's meta.json (the usual choice); a nonzero value "
                   "must match the tokenizer."),
      MOELAB_FIELD(model, d_model,
                   "Width of the residual stream. Attention parameters and compute grow as d_model^2, expert "
                   "parameters as d_model * expert_hidden."),
      MOELAB_FIELD(model, n_layers, "Transformer blocks. Time per step grows linearly with depth."),
      MOELAB_FIELD(model, n_heads,
                   "Attention heads. The head size d_model / n_heads must be a whole, even number (RoPE rotates pairs "
                   "of dimensions)."),
      MOELAB_FIELD(model, n_kv_heads,
                   "Key/value heads. 0 means n_heads (plain multi-head attention); a divisor of n_heads gives "
                   "grouped-query attention: smaller K/V projections and generation cache, usually a small quality "
                   "cost."),
      MOELAB_FIELD(model, head_dim,
                   "Width of one attention head; 0 means d_model / n_heads. Another value decouples the attention "
                   "width n_heads * head_dim from d_model (Qwen3). Must be even (RoPE rotates pairs of dimensions)."),
      MOELAB_FIELD(model, qk_norm,
                   "An RMSNorm (with its own gains) of the queries and keys before RoPE, which keeps attention logits "
                   "from growing: per_head normalises each head's vector (Qwen3), whole each token's whole query or "
                   "key projection (OLMoE); none (LLaMA, Mixtral)."),
      MOELAB_FIELD(model, qkv_bias, "The query, key and value projections have biases (Qwen2); the output one never."),
      MOELAB_FIELD(model, clip_qkv,
                   "> 0: queries, keys and values are clamped to [-clip_qkv, clip_qkv] after their projection (and "
                   "norm), a guard against loss spikes (OLMoE); 0: no clamp."),
      MOELAB_FIELD(model, rope_theta,
                   "RoPE base. A larger base stretches the longest rotary wavelength, which suits longer contexts."),
      MOELAB_FIELD(model, rms_eps,
                   "Added to the mean square inside RMSNorm; keeps the division finite for near-zero activations."),
      MOELAB_FIELD(model, init_std,
                   "Every weight matrix starts as N(0, init_std^2); norm gains start at 1. Larger values learn faster "
                   "early on and risk instability."),
      MOELAB_FIELD(
          model, tie_embeddings,
          "The LM head shares the token embedding matrix: vocab_size * d_model fewer parameters; untied (as in "
          "Mixtral) usually trains slightly better."),
      MOELAB_FIELD(model, max_seq_len,
                   "Longest context the model is used with. train.seq_len may not exceed it; generation truncates its "
                   "context to it."),

      MOELAB_FIELD(moe, n_experts,
                   "Routed experts per MoE layer. More experts add parameters, not compute per token (compute follows "
                   "routing.top_k)."),
      MOELAB_FIELD(moe, expert_hidden,
                   "SwiGLU intermediate size of one expert (704 = 2.75 * 256, the ratio of the papers' models)."),
      MOELAB_FIELD(moe, first_dense_layers,
                   "The first layers use a dense SwiGLU FFN instead of experts (DeepSeekMoE keeps layer 0 dense). "
                   "Setting it to model.n_layers gives a dense baseline."),
      MOELAB_FIELD(
          moe, moe_every,
          "After first_dense_layers, every moe_every-th layer is MoE and the others dense: 1 makes every layer "
          "MoE (as in the papers), 2 alternates (GShard, Switch)."),
      MOELAB_FIELD(moe, dense_hidden,
                   "Intermediate size of dense FFN layers. 0 means expert_hidden * routing.top_k, which gives a dense "
                   "layer the compute of one MoE layer's active experts."),
      MOELAB_FIELD(moe, n_shared_experts,
                   "Experts that every token of a MoE layer uses in addition to its routed experts (DeepSeekMoE): "
                   "they hold what all tokens need, so routed experts can specialise. Stored as one SwiGLU of hidden "
                   "size n_shared_experts * shared_expert_hidden, which computes the same sum."),
      MOELAB_FIELD(moe, shared_expert_hidden, "Hidden size of one shared expert; 0 means moe.expert_hidden."),
      MOELAB_FIELD(moe, shared_expert_gate,
                   "Scale the shared experts' output per token by sigmoid(w . x), with w a learned vector of d_model "
                   "(Qwen2-MoE): the model learns how much of the shared path each token takes."),
      MOELAB_FIELD(moe, dense_layers,
                   "Layer indices (from 0) that use a dense SwiGLU FFN even where first_dense_layers and moe_every "
                   "make them MoE (Qwen's mlp_only_layers)."),

      MOELAB_FIELD(routing, router,
                   "Where router weights come from: learned (trained like every weight), frozen (random, never "
                   "updated), resampled (redrawn every step: paper 1's random baseline), hash (a fixed token-id to "
                   "expert table, no router)."),
      MOELAB_FIELD(routing, gating,
                   "Scores from router logits: softmax over all experts, or sigmoid (each expert scored on its own)."),
      MOELAB_FIELD(
          routing, rule,
          "Which experts a token uses: top_k (the k most probable), top_p (the fewest whose probability passes "
          "p: paper 2's dynamic routing), expert_choice (each expert picks its tokens; this sees other tokens "
          "of the batch and so breaks causality), top_k_then_softmax (the k largest router logits, weighted by a "
          "softmax over those k alone: GPT-OSS; the same as top_k with renormalize under softmax gating)."),
      MOELAB_FIELD(routing, top_k,
                   "Experts per token under rule = top_k or top_k_then_softmax: expert compute per token grows "
                   "linearly with it (1: Switch, "
                   "2: Mixtral)."),
      MOELAB_FIELD(routing, renormalize,
                   "Divide the k kept probabilities by their sum so the weights add to 1 (Mixtral), or keep the raw "
                   "softmax probabilities (Switch, DeepSeekMoE). Read by rule = top_k only (top_k_then_softmax "
                   "always normalises its weights)."),
      MOELAB_FIELD(routing, top_p,
                   "Threshold of rule = top_p (paper 2): a token keeps its most probable experts up to and including "
                   "the first at which their cumulative probability exceeds top_p, at least one. Lower means fewer "
                   "experts per token; paper 2 uses 0.4."),
      MOELAB_FIELD(routing, max_k,
                   "Under rule = top_p, at most this many experts per token (bounds the worst-case compute); 0: no "
                   "cap, as in paper 2."),
      MOELAB_FIELD(routing, granularity,
                   "What a routing decision sees: token (its own hidden state), sequence (the mean over the whole "
                   "sequence, which looks ahead of the token), prefix (the running mean up to the token: causal)."),
      MOELAB_FIELD(
          routing, capacity_factor,
          "0: dropless, every token reaches its experts. cf > 0 caps each expert at ceil(cf * T * k / E) "
          "token slots per batch and drops the overflow (lowest router probability first; the residual "
          "carries a dropped token on): bounded load, at the cost of dropped tokens. Works with rule = top_k "
          "with renormalize = false and token or prefix granularity; under expert_choice it sets each expert's "
          "capacity (default 1)."),
      MOELAB_FIELD(routing, load_balance_coef,
                   "Weight of the Switch load-balance loss E * sum_i f_i * P_i, averaged over MoE layers. Too small "
                   "lets routing collapse onto few experts; too large forces uniform routing. 0 disables it."),
      MOELAB_FIELD(routing, z_loss_coef,
                   "Weight of the router z-loss (mean squared logsumexp of the router logits, ST-MoE), averaged over "
                   "MoE layers; keeps logits small and training stable. 0 disables it."),
      MOELAB_FIELD(routing, dynamic_loss_coef,
                   "Weight of paper 2's dynamic loss: the mean entropy of the routing distribution, averaged over "
                   "MoE layers. It makes the router confident, so that top_p keeps fewer experts (paper 2: 1e-4). "
                   "0 disables it."),
      MOELAB_FIELD(routing, bias_update_rate,
                   "Loss-free load balancing (DeepSeek-V3): a per-expert bias is added to the router scores for "
                   "choosing the top-k experts only (the weights stay the unbiased scores), and after every step "
                   "moves by this amount against each expert's load error (down when over-loaded, up when "
                   "under-loaded). Balances without a gradient term that competes with the language-model loss. "
                   "0 disables it; DeepSeek-V3 uses 1e-3."),

      MOELAB_FIELD(train, seq_len,
                   "Tokens per training sequence, at most model.max_seq_len. Attention cost grows as seq_len^2."),
      MOELAB_FIELD(train, batch_size, "Sequences per micro-batch. Activation memory grows with batch_size * seq_len."),
      MOELAB_FIELD(train, grad_accum,
                   "Micro-batches whose gradients are summed before each optimizer step: an effective batch of "
                   "batch_size * grad_accum sequences without the memory of one large batch."),
      MOELAB_FIELD(train, steps, "Optimizer steps. Tokens trained on: steps * grad_accum * batch_size * seq_len."),
      MOELAB_FIELD(train, lr, "Peak learning rate of AdamW, reached at the end of warmup."),
      MOELAB_FIELD(
          train, min_lr_ratio,
          "The cosine schedule decays from lr to lr * min_lr_ratio at the last step: 0 decays to zero, 1 keeps "
          "the rate constant after warmup."),
      MOELAB_FIELD(train, warmup_steps,
                   "Linear warmup from lr / warmup_steps up to lr over this many steps (at most train.steps); avoids "
                   "large early updates while Adam's moment estimates are still noisy."),
      MOELAB_FIELD(
          train, weight_decay,
          "Decoupled weight decay (AdamW) of weight matrices; the decay_* switches extend it to other tensors."),
      MOELAB_FIELD(train, beta1, "AdamW decay rate of the gradient's running mean."),
      MOELAB_FIELD(train, beta2,
                   "AdamW decay rate of the squared gradient's running mean; 0.95 (not 0.999) adapts faster to changes "
                   "of gradient scale, the usual choice for language models."),
      MOELAB_FIELD(train, adam_eps, "Added to AdamW's denominator; keeps updates finite for tiny gradients."),
      MOELAB_FIELD(train, decay_norms,
                   "Weight-decay the RMSNorm gains too (usually off: decay pulls gains towards 0, not their start 1)."),
      MOELAB_FIELD(train, decay_router, "Weight-decay the router weights, which keeps router logits small."),
      MOELAB_FIELD(train, decay_embeddings, "Weight-decay the token embedding and the untied LM head."),
      MOELAB_FIELD(train, grad_clip,
                   "Scale gradients down when their global norm exceeds this value, which guards against loss spikes; "
                   "0 disables clipping."),
      MOELAB_FIELD(train, seed,
                   "Seed of every random draw (initialisation, batches, sampling). The same config, seed and thread "
                   "count reproduce a run bit for bit."),
      MOELAB_FIELD(train, eval_every, "Steps between validation evaluations; 0: only at the end."),
      MOELAB_FIELD(train, eval_tokens,
                   "Validation tokens scored by each evaluation during training; 0: the whole validation split. "
                   "Fewer is faster and noisier. The evaluation after the last step always scores the whole split."),
      MOELAB_FIELD(train, checkpoint_every, "Steps between checkpoints; 0: only at the end."),
      MOELAB_FIELD(train, log_every, "Steps between metrics lines."),
      MOELAB_PATH_FIELD(train, out_dir, "Folder for the run's checkpoints, metrics and config.json."),
      MOELAB_FIELD(train, threads,
                   "OpenMP threads; 0: all cores. Runs are bit-identical only under the same thread count."),
      MOELAB_FIELD(
          train, precision,
          "Precision of the matrix multiplies of the model's forward and backward: f32, or bf16 (inputs "
          "rounded to bf16, products accumulated in f32 by oneDNN's AMX / AVX-512 BF16 kernels; weights, "
          "gradients, activations and the optimizer stay f32; attention's per-head products stay f32). "
          "On a CPU with AMX it trains 1.6x (small shape) to 1.9x (large) as fast as f32 (docs/performance.md)."),
  };
}

#undef MOELAB_PATH_FIELD
#undef MOELAB_FIELD

// A value read from TOML or JSON, before it is checked against the field it is meant for.
struct Value {
  // An integer is int64_t unless it only fits uint64_t (JSON); std::monostate: a type no field takes.
  std::variant<int64_t, uint64_t, double, bool, std::string, std::vector<int64_t>, std::monostate> v;
  std::string type;  // "an integer", "a table", ...
  std::string text;  // the value as written, for messages
};

Value from_toml(const toml::node& n) {
  std::ostringstream os;
  n.visit([&](const auto& x) { os << x; });
  switch (n.type()) {
    case toml::node_type::integer:
      return {n.as_integer()->get(), "an integer", os.str()};
    case toml::node_type::floating_point:
      return {n.as_floating_point()->get(), "a float", os.str()};
    case toml::node_type::boolean:
      return {n.as_boolean()->get(), "a boolean", os.str()};
    case toml::node_type::string:
      return {n.as_string()->get(), "a string", os.str()};
    case toml::node_type::table:
      return {std::monostate{}, "a table", os.str()};
    case toml::node_type::array: {
      std::vector<int64_t> integers;
      for (const toml::node& item : *n.as_array()) {
        if (!item.is_integer()) return {std::monostate{}, "an array of other than integers", os.str()};
        integers.push_back(item.as_integer()->get());
      }
      return {integers, "an array of integers", os.str()};
    }
    case toml::node_type::date:
      return {std::monostate{}, "a date", os.str()};
    case toml::node_type::time:
      return {std::monostate{}, "a time", os.str()};
    default:
      return {std::monostate{}, "a date-time", os.str()};
  }
}

Value from_json(const nlohmann::json& j) {
  const std::string text = j.dump();
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return {static_cast<int64_t>(u), "an integer", text};
    return {u, "an integer", text};
  }
  if (j.is_number_integer()) return {j.get<int64_t>(), "an integer", text};
  if (j.is_number_float()) return {j.get<double>(), "a float", text};
  if (j.is_boolean()) return {j.get<bool>(), "a boolean", text};
  if (j.is_string()) return {j.get<std::string>(), "a string", text};
  if (j.is_object()) return {std::monostate{}, "an object", text};
  if (j.is_array()) {
    std::vector<int64_t> integers;
    for (const auto& item : j) {
      if (!item.is_number_integer() ||
          (item.is_number_unsigned() &&
           item.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
        return {std::monostate{}, "an array of other than integers", text};
      integers.push_back(item.get<int64_t>());
    }
    return {integers, "an array of integers", text};
  }
  return {std::monostate{}, "null", text};
}

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;  // C++20 deduces this by itself; clang 14 (the fuzz build) needs it spelled

// Stores `value` into the field, or throws "<where>: key 'train.lr': expected a float, found a string ('x')" (for a
// design: "<where>: routing.rule = 'topk' is not a valid value (did you mean 'top_k'?); valid values: ...").
void assign(Config& cfg, const ConfigField& field, const Value& value, const std::string& where) {
  auto mismatch = [&](std::string_view expected) {
    throw_error(where, ": key '", field.name(), "': expected ", expected, ", found ", value.type, " (", value.text,
                ")");
  };
  std::visit(Overloaded{
                 [&](int64_t* p) {
                   if (auto* i = std::get_if<int64_t>(&value.v))
                     *p = *i;
                   else if (std::holds_alternative<uint64_t>(value.v))
                     mismatch("an integer that fits 64 bits signed");
                   else
                     mismatch("an integer");
                 },
                 [&](uint64_t* p) {
                   if (auto* i = std::get_if<int64_t>(&value.v); i && *i >= 0)
                     *p = static_cast<uint64_t>(*i);
                   else if (auto* u = std::get_if<uint64_t>(&value.v))
                     *p = *u;
                   else
                     mismatch("a non-negative integer");
                 },
                 [&](double* p) {
                   if (auto* d = std::get_if<double>(&value.v))
                     *p = *d;
                   else if (auto* i = std::get_if<int64_t>(&value.v))
                     *p = static_cast<double>(*i);
                   else if (auto* u = std::get_if<uint64_t>(&value.v))
                     *p = static_cast<double>(*u);
                   else
                     mismatch("a float");
                 },
                 [&](bool* p) {
                   if (auto* b = std::get_if<bool>(&value.v))
                     *p = *b;
                   else
                     mismatch("a boolean");
                 },
                 [&](std::string* p) {
                   if (auto* s = std::get_if<std::string>(&value.v))
                     *p = *s;
                   else
                     mismatch("a string");
                 },
                 [&](std::vector<int64_t>* p) {
                   if (auto* list = std::get_if<std::vector<int64_t>>(&value.v))
                     *p = *list;
                   else
                     mismatch("an array of integers");
                 },
                 [&](ChoiceRef p) {
                   const auto* s = std::get_if<std::string>(&value.v);
                   if (!s) mismatch("a string");
                   p.set(p.field, design_index(p.names, *s, where + ": " + field.name()));
                 },
             },
             field.ref(cfg));
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for the closest candidate within edit distance 2, else "".
std::string suggestion(std::string_view name, const std::vector<std::string>& candidates) {
  const std::string* best = nullptr;
  size_t best_distance = 3;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(name, c);
    if (d < best_distance) best = &c, best_distance = d;
  }
  return best ? " (did you mean '" + *best + "'?)" : "";
}

bool is_section(std::string_view name) {
  return std::any_of(std::begin(kSections), std::end(kSections), [&](const auto& s) { return s.name == name; });
}

const ConfigField* find_field(std::string_view section, std::string_view key) {
  for (const auto& f : config_fields())
    if (f.section == section && f.key == key) return &f;
  return nullptr;
}

[[noreturn]] void unknown_section(const std::string& where, std::string_view section) {
  std::vector<std::string> names;
  std::string list;
  for (const auto& s : kSections) {
    names.emplace_back(s.name);
    list += (list.empty() ? "" : ", ") + std::string(s.name);
  }
  throw_error(where, ": unknown table '", section, "'", suggestion(section, names), " (tables: ", list, ")");
}

// An unknown "section.key": suggest the same key in another section, or the closest full name.
[[noreturn]] void unknown_key(const std::string& where, std::string_view section, std::string_view key) {
  const std::string name = section.empty() ? std::string(key) : std::string(section) + "." + std::string(key);
  for (const auto& f : config_fields())
    if (f.key == key) throw_error(where, ": unknown key '", name, "' (did you mean '", f.name(), "'?)");
  std::vector<std::string> names;
  for (const auto& f : config_fields()) names.push_back(f.name());
  throw_error(where, ": unknown key '", name, "'", suggestion(name, names));
}

std::string toml_where(const std::string& path, const toml::source_region& src) {
  return "config " + path + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}

// Shortest text that reads back to the same double, always with a '.' or an exponent so it reads as a float.
std::string format_double(double v) {
  char buf[64];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  std::string s(buf, end);
  if (std::isfinite(v) && s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string format_value(const ConfigFieldRef& ref) {
  return std::visit(Overloaded{
                        [](const int64_t* p) { return std::to_string(*p); },
                        [](const uint64_t* p) { return std::to_string(*p); },
                        [](const double* p) { return format_double(*p); },
                        [](const bool* p) { return std::string(*p ? "true" : "false"); },
                        [](const std::string* p) { return "\"" + *p + "\""; },
                        [](const std::vector<int64_t>* p) {
                          std::string list = "[";
                          for (const int64_t x : *p) list.append(list.size() > 1 ? ", " : "").append(std::to_string(x));
                          return list + "]";
                        },
                        [](ChoiceRef p) { return std::string(1, '"').append(p.name()).append(1, '"'); },
                    },
                    ref);
}

const char* type_name(const ConfigFieldRef& ref) {
  return std::visit(Overloaded{
                        [](const int64_t*) { return "integer"; },
                        [](const uint64_t*) { return "integer >= 0"; },
                        [](const double*) { return "float"; },
                        [](const bool*) { return "boolean"; },
                        [](const std::string*) { return "string"; },
                        [](const std::vector<int64_t>*) { return "array of integers"; },
                        [](ChoiceRef) { return "string"; },
                    },
                    ref);
}

// Reading a field of a const Config: the table's accessors take Config& so one accessor serves reading and writing;
// the pointer obtained here is only read.
ConfigFieldRef read_ref(const ConfigField& f, const Config& cfg) { return f.ref(const_cast<Config&>(cfg)); }

std::string join(const std::vector<std::string_view>& items, std::string_view quote) {
  std::string s;
  for (const auto& item : items)
    s += (s.empty() ? "" : ", ") + std::string(quote) + std::string(item) + std::string(quote);
  return s;
}

// A path as the config file at `config_path` means it: a relative one names a place beside that file. The result
// stays relative when both are ("configs/x.toml" and "../data/brown" give "data/brown").
std::string read_against_folder_of(const std::string& config_path, const std::string& value) {
  if (value.empty() || fs::path(value).is_absolute()) return value;
  return (fs::path(config_path).parent_path() / value).lexically_normal().string();
}

// "`data.dir`, `train.out_dir`": the path fields, for the reference's rule on paths.
std::string path_field_names() {
  std::string names;
  for (const auto& f : config_fields())
    if (f.path) names += (names.empty() ? "`" : ", `") + f.name() + "`";
  return names;
}

// "'softmax' or 'sigmoid'": designs as a message lists them.
template <class Design>
std::string names_of(const std::vector<Design>& designs) {
  std::string s;
  for (size_t i = 0; i < designs.size(); ++i)
    s += std::string(i == 0                    ? ""
                     : i + 1 == designs.size() ? " or "
                                               : ", ") +
         "'" + std::string(name_of(designs[i])) + "'";
  return s;
}

// The names of the selection rules whose registry row satisfies `keep`, as names_of lists them.
template <class Keep>
std::string rules_where(Keep keep) {
  std::vector<SelectionRule> rules;
  for (size_t i = 0; i < DesignNames<SelectionRule>::names.size(); ++i)
    if (keep(routing::selection_rule(static_cast<SelectionRule>(i)))) rules.push_back(static_cast<SelectionRule>(i));
  return names_of(rules);
}

}  // namespace

size_t design_index(std::span<const std::string_view> names, std::string_view name, const std::string& what) {
  const auto at = std::find(names.begin(), names.end(), name);
  if (at != names.end()) return static_cast<size_t>(at - names.begin());
  throw_error(what, " = '", name, "' is not a valid value",
              suggestion(name, std::vector<std::string>(names.begin(), names.end())),
              "; valid values: ", join({names.begin(), names.end()}, "'"));
}

const std::vector<ConfigField>& config_fields() {
  static const std::vector<ConfigField> fields = make_fields();
  return fields;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  if (!std::ifstream(path)) throw_error("config ", path, ": cannot open (", std::strerror(errno), ")");
  // A folder opens as an empty stream and would parse as an empty file: a run of every default.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw_error("config ", path, ": is a folder, expected a TOML config file");
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw_error(toml_where(path, e.source()), ": ", e.description());
  }
  Config cfg;
  cfg.source = path;
  for (const auto& [section_key, section_node] : root) {
    const std::string_view section = section_key.str();
    if (!is_section(section)) {
      if (section_node.is_table()) unknown_section(toml_where(path, section_key.source()), section);
      unknown_key(toml_where(path, section_key.source()), "", section);
    }
    const toml::table* table = section_node.as_table();
    if (!table)
      throw_error(toml_where(path, section_key.source()), ": '", section, "' must be a table ([", section, "]), found ",
                  from_toml(section_node).type);
    for (const auto& [key, node] : *table) {
      const ConfigField* field = find_field(section, key.str());
      if (!field) unknown_key(toml_where(path, key.source()), section, key.str());
      assign(cfg, *field, from_toml(node), toml_where(path, node.source()));
      if (field->path) {
        std::string& value = *std::get<std::string*>(field->ref(cfg));
        value = read_against_folder_of(path, value);
      }
    }
  }
  apply_overrides(cfg, overrides);
  return cfg;
}

void apply_overrides(Config& cfg, const std::vector<std::string>& overrides) {
  auto trim = [](std::string_view s) {
    const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string_view::npos ? std::string_view{} : s.substr(b, e - b + 1);
  };
  for (const std::string& item : overrides) {
    const std::string where = "--set " + item;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) throw_error(where, ": expected section.key=value");
    const std::string_view name = trim(std::string_view(item).substr(0, eq));
    const std::string_view text = trim(std::string_view(item).substr(eq + 1));
    const size_t dot = name.find('.');
    const std::string_view section = dot == std::string_view::npos ? std::string_view{} : name.substr(0, dot);
    const std::string_view key = dot == std::string_view::npos ? name : name.substr(dot + 1);
    const ConfigField* field = find_field(section, key);
    if (!field) unknown_key(where, section, key);

    const std::string raw(text);
    Value value{raw, "a string", std::string("'").append(raw).append("'")};  // quoted as toml++ prints strings
    try {
      const toml::table parsed = toml::parse(std::string("v = ").append(raw));
      if (parsed.size() == 1 && parsed.contains("v")) value = from_toml(*parsed.get("v"));
    } catch (const toml::parse_error&) {
      // Not a TOML value: a bare word, taken as the string it spells.
    }
    const ConfigFieldRef ref = field->ref(cfg);
    const bool text_field = std::holds_alternative<std::string*>(ref) || std::holds_alternative<ChoiceRef>(ref);
    if (text_field && !std::holds_alternative<std::string>(value.v))
      throw_error(where, ": key '", field->name(), "': expected a string, found ", value.type, " (", value.text,
                  "); quote it to pass it as a string: ", field->name(), "='\"", text, "\"'");
    assign(cfg, *field, value, where);
  }
}

void validate(const Config& cfg) {
  const std::string where = "config " + cfg.source;
  auto check = [&](bool ok, const auto&... parts) {
    if (!ok) throw_error(where, ": ", parts...);
  };
  auto at_least = [&](std::string_view name, int64_t v, int64_t lo) {
    check(v >= lo, name, " = ", v, " must be at least ", lo);
  };
  auto positive = [&](std::string_view name, double v) { check(v > 0, name, " = ", v, " must be > 0"); };
  auto non_negative = [&](std::string_view name, double v) { check(v >= 0, name, " = ", v, " must be >= 0"); };

  // Generic rule from the table: numbers finite. (A design holds a valid value by its type.)
  for (const auto& f : config_fields()) {
    const ConfigFieldRef ref = read_ref(f, cfg);
    if (const auto* d = std::get_if<double*>(&ref))
      check(std::isfinite(**d), f.name(), " = ", format_double(**d), " must be a finite number");
  }

  check(!cfg.data.dir.empty(), "data.dir must not be empty");

  const ModelConfig& m = cfg.model;
  at_least("model.vocab_size", m.vocab_size, 0);
  at_least("model.d_model", m.d_model, 1);
  at_least("model.n_layers", m.n_layers, 1);
  at_least("model.n_heads", m.n_heads, 1);
  at_least("model.head_dim", m.head_dim, 0);
  if (m.head_dim == 0) {
    check(m.d_model % m.n_heads == 0, "model.d_model = ", m.d_model,
          " must be divisible by model.n_heads = ", m.n_heads, " (or model.head_dim set)");
    check((m.d_model / m.n_heads) % 2 == 0, "model.d_model / model.n_heads = ", m.d_model / m.n_heads,
          " (the head size) must be even: RoPE rotates pairs of dimensions");
  } else {
    check(m.head_dim % 2 == 0, "model.head_dim = ", m.head_dim, " must be even: RoPE rotates pairs of dimensions");
  }
  non_negative("model.clip_qkv", m.clip_qkv);
  check(m.n_kv_heads >= 0 && m.n_kv_heads <= m.n_heads, "model.n_kv_heads = ", m.n_kv_heads,
        " must be between 0 (= n_heads) and model.n_heads = ", m.n_heads);
  check(m.n_kv_heads == 0 || m.n_heads % m.n_kv_heads == 0, "model.n_heads = ", m.n_heads,
        " must be divisible by model.n_kv_heads = ", m.n_kv_heads);
  positive("model.rope_theta", m.rope_theta);
  positive("model.rms_eps", m.rms_eps);
  positive("model.init_std", m.init_std);
  at_least("model.max_seq_len", m.max_seq_len, 1);

  const MoeConfig& e = cfg.moe;
  at_least("moe.n_experts", e.n_experts, 1);
  at_least("moe.expert_hidden", e.expert_hidden, 1);
  check(e.first_dense_layers >= 0 && e.first_dense_layers <= m.n_layers,
        "moe.first_dense_layers = ", e.first_dense_layers, " must be between 0 and model.n_layers = ", m.n_layers);
  at_least("moe.moe_every", e.moe_every, 1);
  at_least("moe.dense_hidden", e.dense_hidden, 0);
  at_least("moe.n_shared_experts", e.n_shared_experts, 0);
  at_least("moe.shared_expert_hidden", e.shared_expert_hidden, 0);
  check(!e.shared_expert_gate || e.n_shared_experts > 0,
        "moe.shared_expert_gate = true needs shared experts to gate (moe.n_shared_experts > 0)");
  for (size_t i = 0; i < e.dense_layers.size(); ++i) {
    const int64_t layer = e.dense_layers[i];
    check(layer >= 0 && layer < m.n_layers, "moe.dense_layers[", i, "] = ", layer,
          " must be a layer index between 0 and model.n_layers - 1 = ", m.n_layers - 1);
    check(std::count(e.dense_layers.begin(), e.dense_layers.end(), layer) == 1, "moe.dense_layers names layer ", layer,
          " more than once");
  }

  const RoutingConfig& r = cfg.routing;
  check(r.top_k >= 1 && r.top_k <= e.n_experts, "routing.top_k = ", r.top_k,
        " must be between 1 and moe.n_experts = ", e.n_experts);
  non_negative("routing.capacity_factor", r.capacity_factor);
  // What the rule combines with, from its registry row (routing/selection_rule.h).
  const routing::SelectionRuleInfo& rule = routing::selection_rule(r.rule);
  const std::string rule_is = "routing.rule = '" + std::string(name_of(r.rule)) + "'";
  check(std::find(rule.gatings.begin(), rule.gatings.end(), r.gating) != rule.gatings.end(), rule_is,
        " needs routing.gating = ", names_of(rule.gatings), ": ", rule.gating_reason);
  check(std::find(rule.granularities.begin(), rule.granularities.end(), r.granularity) != rule.granularities.end(),
        rule_is, " does not combine with routing.granularity = '", name_of(r.granularity),
        "': ", rule.granularity_reason);
  if (r.capacity_factor > 0) {
    check(
        rule.capacity != routing::CapacityUse::None, "routing.capacity_factor = ", r.capacity_factor,
        " needs routing.rule = ", rules_where([](const auto& x) { return x.capacity == routing::CapacityUse::Drops; }),
        " (capacity ceil(cf * T * k / E) assumes k slots per token) or ",
        rules_where([](const auto& x) { return x.capacity == routing::CapacityUse::Sets; }),
        " (it sets each expert's capacity), found '", name_of(r.rule), "'");
    if (rule.capacity == routing::CapacityUse::Drops) {
      check(r.granularity != Granularity::Sequence, "routing.capacity_factor = ", r.capacity_factor,
            " does not combine with routing.granularity = 'sequence' (a whole sequence shares one expert set)");
      check(!r.renormalize, "routing.capacity_factor = ", r.capacity_factor, " needs routing.renormalize = false: ",
            "weights renormalised over the k chosen experts keep a dropped expert in their denominator, so dropping "
            "would change what the weights mean");
    }
  }
  if (r.gating == Gating::Sigmoid)
    check(r.dynamic_loss_coef == 0, "routing.dynamic_loss_coef = ", r.dynamic_loss_coef,
          " needs routing.gating = 'softmax': the dynamic loss is the entropy of the routing distribution");
  if (r.router == RouterKind::Hash) {
    check(r.granularity == Granularity::Token,
          "routing.router = 'hash' routes by token id: it needs routing.granularity = "
          "'token', found '",
          name_of(r.granularity), "'");
    check(r.rule == SelectionRule::TopK,
          "routing.router = 'hash' picks routing.top_k experts per token id: it needs "
          "routing.rule = 'top_k', found '",
          name_of(r.rule), "'");
  }
  non_negative("routing.load_balance_coef", r.load_balance_coef);
  non_negative("routing.z_loss_coef", r.z_loss_coef);
  non_negative("routing.dynamic_loss_coef", r.dynamic_loss_coef);
  non_negative("routing.bias_update_rate", r.bias_update_rate);
  if (r.bias_update_rate > 0) {
    check(rule.takes_selection_bias && r.router != RouterKind::Hash, "routing.bias_update_rate = ", r.bias_update_rate,
          " (loss-free balancing) biases a top-k choice: it needs routing.rule = ",
          rules_where([](const auto& x) { return x.takes_selection_bias; }), " and a router other than 'hash'");
  }
  check(r.top_p > 0 && r.top_p <= 1, "routing.top_p = ", r.top_p, " must be in (0, 1]");
  check(r.max_k >= 0 && r.max_k <= e.n_experts, "routing.max_k = ", r.max_k,
        " must be between 0 (no cap) and moe.n_experts = ", e.n_experts);

  const TrainConfig& t = cfg.train;
  at_least("train.seq_len", t.seq_len, 1);
  check(t.seq_len <= m.max_seq_len, "train.seq_len = ", t.seq_len,
        " must not exceed model.max_seq_len = ", m.max_seq_len);
  at_least("train.batch_size", t.batch_size, 1);
  at_least("train.grad_accum", t.grad_accum, 1);
  at_least("train.steps", t.steps, 1);
  positive("train.lr", t.lr);
  check(t.min_lr_ratio >= 0 && t.min_lr_ratio <= 1, "train.min_lr_ratio = ", t.min_lr_ratio,
        " must be between 0 and 1");
  check(t.warmup_steps >= 0 && t.warmup_steps <= t.steps, "train.warmup_steps = ", t.warmup_steps,
        " must be between 0 and train.steps = ", t.steps);
  non_negative("train.weight_decay", t.weight_decay);
  check(t.beta1 >= 0 && t.beta1 < 1, "train.beta1 = ", t.beta1, " must be in [0, 1)");
  check(t.beta2 >= 0 && t.beta2 < 1, "train.beta2 = ", t.beta2, " must be in [0, 1)");
  positive("train.adam_eps", t.adam_eps);
  non_negative("train.grad_clip", t.grad_clip);
  at_least("train.eval_every", t.eval_every, 0);
  at_least("train.eval_tokens", t.eval_tokens, 0);
  at_least("train.checkpoint_every", t.checkpoint_every, 0);
  at_least("train.log_every", t.log_every, 1);
  check(!t.out_dir.empty(), "train.out_dir must not be empty");
  at_least("train.threads", t.threads, 0);
  check(t.eval_tokens != 1, "train.eval_tokens = 1 scores no token (a target needs the token before it); use 0 (the ",
        "whole split) or at least 2");

  // Sizes no machine holds, whose products would overflow the int64 sizes and offsets of the code: refused here,
  // whatever the machine (check_memory_fits compares sane sizes with this machine's memory).
  constexpr double kMaxCount = 0x1p62;
  const double bytes = estimate_memory(cfg, MemoryUse::Training).total_bytes();
  check(bytes < kMaxCount, "these sizes need about ", format_gigabytes(bytes),
        " of memory, more than a 64-bit size can count: model.d_model = ", m.d_model, ", model.n_layers = ", m.n_layers,
        ", model.vocab_size = ", m.vocab_size, ", moe.n_experts = ", e.n_experts,
        ", moe.expert_hidden = ", e.expert_hidden, ", moe.dense_hidden = ", e.dense_hidden,
        ", moe.n_shared_experts = ", e.n_shared_experts, ", train.seq_len = ", t.seq_len,
        ", train.batch_size = ", t.batch_size);
  const double tokens = static_cast<double>(t.steps) * static_cast<double>(t.grad_accum) *
                        static_cast<double>(t.batch_size) * static_cast<double>(t.seq_len);
  check(tokens < kMaxCount, "train.steps x train.grad_accum x train.batch_size x train.seq_len = ", t.steps, " x ",
        t.grad_accum, " x ", t.batch_size, " x ", t.seq_len, " training tokens: more than a 64-bit count can hold");
}

nlohmann::json config_to_json(const Config& cfg) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : config_fields()) {
    nlohmann::json& slot = j[std::string(f.section)][std::string(f.key)];
    std::visit(Overloaded{[&](const auto* p) { slot = *p; }, [&](ChoiceRef p) { slot = std::string(p.name()); }},
               read_ref(f, cfg));
  }
  return j;
}

Config config_from_json(const nlohmann::json& j, const std::string& source) {
  const std::string where = "config " + source;
  if (!j.is_object()) throw_error(where, ": expected a JSON object of sections, found ", j.type_name());
  Config cfg;
  cfg.source = source;
  for (const auto& [section, body] : j.items()) {
    if (!is_section(section)) {
      if (body.is_object()) unknown_section(where, section);
      unknown_key(where, "", section);
    }
    if (!body.is_object()) throw_error(where, ": '", section, "' must be an object, found ", body.type_name());
    for (const auto& [key, value] : body.items()) {
      const ConfigField* field = find_field(section, key);
      if (!field) unknown_key(where, section, key);
      assign(cfg, *field, from_json(value), where);
    }
  }
  return cfg;
}

Config with_absolute_paths(Config cfg) {
  for (const auto& f : config_fields()) {
    if (!f.path) continue;
    std::string& value = *std::get<std::string*>(f.ref(cfg));
    std::error_code ec;  // no current directory (it was removed): the path stays as it is
    fs::path absolute = value.empty() ? fs::path() : fs::absolute(value, ec).lexically_normal();
    if (ec || absolute.empty()) continue;
    if (!absolute.has_filename() && absolute.has_relative_path()) absolute = absolute.parent_path();  // "runs/x/"
    value = absolute.string();
  }
  return cfg;
}

bool same_settings(const Config& a, const Config& b) {
  const Config x = with_absolute_paths(a), y = with_absolute_paths(b);
  return std::all_of(config_fields().begin(), config_fields().end(), [&](const ConfigField& f) {
    return std::visit(Overloaded{[&](auto* px) { return *px == *std::get<decltype(px)>(read_ref(f, y)); },
                                 [&](ChoiceRef px) { return px.name() == std::get<ChoiceRef>(read_ref(f, y)).name(); }},
                      read_ref(f, x));
  });
}

std::string config_reference_markdown() {
  const Config defaults;
  std::ostringstream md;
  md << "# Run configuration\n\n"
     << "<!-- Generated from the field table in src/model/config.cpp; do not edit by hand. After changing the table,\n"
     << "     regenerate with: MOELAB_UPDATE_DOCS=1 moelab_tests --gtest_filter='ConfigDoc.*' -->\n\n"
     << "A run is described by one TOML file with the tables below (`configs/brown-tiny.toml` is the default run).\n"
     << "A key left out keeps its default. An unknown table or key, or a value of the wrong type, is an error that\n"
     << "names the file, line and key (with a suggestion for a near-miss such as `train.lrr`). An integer may be\n"
     << "given for a float; a float is not accepted for an integer.\n\n"
     << "Any field can be overridden on the command line with `--set section.key=value` (repeatable). The value is\n"
     << "read as a TOML value (`3e-4`, `true`, `\"text\"`); a bare word that is not TOML is taken as a string, so\n"
     << "`--set routing.rule=top_k` needs no quotes.\n\n"
     << "A path (" << path_field_names() << ") written in a config file is read against the folder of that file,\n"
     << "so the file works from any directory: `configs/brown-tiny.toml` writes `dir = \"../data/brown\"`, the\n"
     << "repository's `data/brown`. A path given with `--set`, or a default, is read against the current directory,\n"
     << "as any path typed on a command line is. An absolute path is taken as it is.\n\n"
     << "After loading, the whole configuration is validated (for example: `model.d_model` divisible by\n"
     << "`model.n_heads` with an even head size, `1 <= routing.top_k <= moe.n_experts`,\n"
     << "`train.warmup_steps <= train.steps`). Every checkpoint stores the configuration as `config.json`, with the\n"
     << "same sections and key names and every path absolute, so that `moelab eval`, `generate` and `analyze` find\n"
     << "its data folder from any directory; for a run moved to another machine, `--data DIR` names the folder.\n";
  for (const auto& s : kSections) {
    md << "\n## [" << s.name << "]\n\n"
       << s.doc << "\n\n"
       << "| key | type | default | meaning |\n|---|---|---|---|\n";
    for (const auto& f : config_fields()) {
      if (f.section != s.name) continue;
      const ConfigFieldRef ref = read_ref(f, defaults);
      md << "| `" << f.key << "` | " << (f.path ? "path" : type_name(ref)) << " | `" << format_value(ref) << "` | "
         << f.doc;
      if (const auto* design = std::get_if<ChoiceRef>(&ref))
        md << " One of " << join({design->names.begin(), design->names.end()}, "`") << ".";
      md << " |\n";
    }
  }
  return md.str();
}

}  // namespace moelab
