#include "model/memory_estimate.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "model/param_count.h"
#include "model/param_table.h"
#include "routing/selection_rule.h"

namespace moelab {

namespace {

// A parameter table entry: its ParamSpec, the heap blocks of its name and shape, and the model's pointers to it.
constexpr double kBytesPerTensor = 256;

// Layers from first_dense_layers on, every moe_every-th, less those dense_layers names: counted, not looped over
// (n_layers may be absurd; dense_layers is a short list).
double moe_layer_count(const MoeConfig& moe, int64_t n_layers) {
  if (n_layers <= moe.first_dense_layers) return 0;
  double count = static_cast<double>((n_layers - moe.first_dense_layers - 1) / moe.moe_every + 1);
  MoeConfig rhythm_only = moe;
  rhythm_only.dense_layers.clear();
  for (const int64_t layer : moe.dense_layers)
    if (layer < n_layers && is_moe_layer(rhythm_only, layer)) count -= 1;
  return count;
}

// Routed experts a token reaches, roughly: k for a rule that gives every token k, else one (top_p keeps at least
// one, expert choice about one per token).
double slots_per_token(const RoutingConfig& r) {
  return routing::selection_rule(r.rule).k_slots_per_token ? static_cast<double>(r.top_k) : 1.0;
}

std::string format_count(double n) {
  if (n < 1e12) return human_count(static_cast<int64_t>(n));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2g", n);
  return buf;
}

}  // namespace

MemoryEstimate estimate_memory(const Config& cfg, MemoryUse use) {
  const ModelConfig& m = cfg.model;
  const MoeConfig& moe = cfg.moe;
  const double d = static_cast<double>(m.d_model), V = static_cast<double>(m.vocab_size);
  const double L = static_cast<double>(m.n_layers), E = static_cast<double>(moe.n_experts);
  const double H = static_cast<double>(m.n_heads), Hkv = static_cast<double>(attention_kv_heads(m));
  const double head_dim = static_cast<double>(attention_head_dim(m));
  const double q = H * head_dim, kv = Hkv * head_dim;  // query and key/value widths
  const double qk_norm_gains = m.qk_norm == QkNorm::None ? 0 : m.qk_norm == QkNorm::PerHead ? 2 * head_dim : q + kv;
  const double qk_norm_tensors = m.qk_norm == QkNorm::None ? 0 : 2;
  const double h = static_cast<double>(moe.expert_hidden);
  const double hs = static_cast<double>(moe.n_shared_experts) *
                    static_cast<double>(moe.shared_expert_hidden > 0 ? moe.shared_expert_hidden : moe.expert_hidden);
  const double h_dense =
      moe.dense_hidden > 0 ? static_cast<double>(moe.dense_hidden) : h * static_cast<double>(cfg.routing.top_k);
  const double moe_layers = moe_layer_count(moe, m.n_layers), dense_layers = L - moe_layers;
  const bool router = cfg.routing.router != RouterKind::Hash, bias = cfg.routing.bias_update_rate > 0;
  const double shared_gate = hs > 0 && moe.shared_expert_gate ? 1 : 0;

  // The same tensors as ParamTable, counted by formula.
  MemoryEstimate e;
  const double head = m.tie_embeddings ? 0 : V * d;
  e.params = V * d + L * (2 * d + 2 * q * d + 2 * kv * d + (m.qkv_bias ? q + 2 * kv : 0) + qk_norm_gains) + d + head +
             moe_layers * ((router ? E * d : 0) + (bias ? E : 0) + 3 * E * h * d + 3 * hs * d + shared_gate * d) +
             dense_layers * 3 * h_dense * d;
  e.tensors = 1 + L * (6 + (m.qkv_bias ? 3 : 0) + qk_norm_tensors) + 1 + (m.tie_embeddings ? 0 : 1) +
              moe_layers * ((router ? 1 : 0) + (bias ? 1 : 0) + 3 * E + (hs > 0 ? 3 + shared_gate : 0)) +
              dense_layers * 3;
  e.table_bytes = e.tensors * kBytesPerTensor;
  if (use == MemoryUse::Count) return e;

  const bool bf16 = cfg.train.precision == Precision::Bf16;
  const bool gradients = use == MemoryUse::Model || use == MemoryUse::Training;
  e.bytes_per_param = (gradients ? 8 : 4) + (bf16 ? 2 : 0);
  e.per_param_meaning = gradients ? "weights, gradients" : "weights";
  if (bf16) e.per_param_meaning += ", bf16 weights";
  if (use == MemoryUse::Model || use == MemoryUse::InferenceModel) return e;

  // Floats per token of one pass, from the buffers of model.cpp (Model::Layer, Model::Workspace) and
  // moe_ffn.h: the residual stream, attention's q/k/v/context, the experts' slots and SwiGLU rows, the logits.
  const double N = static_cast<double>(cfg.train.batch_size) * static_cast<double>(cfg.train.seq_len);
  const double k = slots_per_token(cfg.routing);
  double per_token = 0;
  if (use == MemoryUse::Training) {
    e.bytes_per_param += 8;
    e.per_param_meaning += ", two AdamW moments";
    // The residual stream, the norms' outputs, q, k, v, the context, the log-sum-exps, the rstds; a q/k norm's
    // inputs and rstds; clip_qkv's masks (a byte per element of q, k, v).
    const double layer = 4 * d + 2 * q + 2 * kv + H + 2 + (qk_norm_tensors > 0 ? q + kv + H + Hkv : 0) +
                         (m.clip_qkv > 0 ? (q + 2 * kv) / 4 : 0);
    const double moe_layer = k * (2 * d + 3 * h) + 3 * E + (hs > 0 ? 3 * hs + d + shared_gate : 0);
    // The workspace: the final norm, the residual and sublayer gradients, attention's d_ctx, d_q, d_k, d_v (and a
    // q/k norm's input gradients), the expert and shared-gate scratch, the logits.
    per_token = L * layer + moe_layers * moe_layer + dense_layers * 3 * h_dense +
                (V + 7 * d + 2 * q + 2 * kv + (qk_norm_tensors > 0 ? q + kv : 0) + shared_gate * d + 6 * h + 2 * k * d +
                 3 * E + (dense_layers > 0 ? 3 * h_dense : 0));
  } else {
    const double layer = 4 * d + 2 * q + 2 * kv + 2 + (qk_norm_tensors > 0 ? q + kv + H + Hkv : 0) +
                         (m.clip_qkv > 0 ? (q + 2 * kv) / 4 : 0);
    const double moe_layer = k * 2 * d + 3 * E + (hs > 0 ? 3 * hs + d + shared_gate : 0);
    per_token = L * layer + moe_layers * moe_layer + dense_layers * 3 * h_dense + (V + 3 * d + 3 * h);
  }
  e.activation_bytes = 4 * N * per_token;
  return e;
}

bool inference_packing_fits(const Config& cfg) {
  if (cfg.train.precision == Precision::Bf16) return false;  // a bf16 model reads its rounded copy, never packed
  const double machine = static_cast<double>(machine_memory_bytes());
  const MemoryEstimate e = estimate_memory(cfg, MemoryUse::Inference);
  return machine <= 0 || e.total_bytes() + 4 * e.params <= machine;
}

int64_t machine_memory_bytes() {
  // Read once: every Model checks it, and tests build thousands.
  static const int64_t total = [] {
    std::ifstream in("/proc/meminfo");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string key, unit;
      int64_t kib = 0;
      if (fields >> key >> kib >> unit && key == "MemTotal:" && unit == "kB") return kib * 1024;
    }
    return int64_t{0};
  }();
  return total;
}

std::string format_gigabytes(double bytes) {
  char buf[48];
  const double gb = bytes / 1e9;
  std::snprintf(buf, sizeof buf, gb < 1e5 ? "%.1f GB" : "%.2g GB", gb);
  return buf;
}

void check_memory_fits(const Config& cfg, MemoryUse use) {
  const double machine = static_cast<double>(machine_memory_bytes());
  const MemoryEstimate e = estimate_memory(cfg, use);
  if (machine <= 0 || e.total_bytes() <= machine) return;
  static constexpr const char* kPurpose[] = {"to list its parameter tensors", "to hold its model",
                                             "to hold its model for inference", "to evaluate", "to train"};
  std::ostringstream what;
  if (use == MemoryUse::Count) {
    what << format_count(e.tensors) << " tensors";
  } else {
    what << format_count(e.params) << " parameters x " << e.bytes_per_param << " bytes for " << e.per_param_meaning;
    if (e.activation_bytes > 0)
      what << ", and about " << format_gigabytes(e.activation_bytes)
           << " of activations for batch_size x seq_len = " << cfg.train.batch_size << " x " << cfg.train.seq_len
           << " tokens";
  }
  throw_error("config ", cfg.source, ": this config needs about ", format_gigabytes(e.total_bytes()), " ",
              kPurpose[static_cast<int>(use)], ": ", what.str(), "; this machine has ", format_gigabytes(machine),
              " (MemTotal in /proc/meminfo). Check the sizes: model.d_model = ", cfg.model.d_model,
              ", model.n_layers = ", cfg.model.n_layers, ", moe.n_experts = ", cfg.moe.n_experts,
              ", moe.expert_hidden = ", cfg.moe.expert_hidden, ", model.vocab_size = ", cfg.model.vocab_size,
              ", train.seq_len = ", cfg.train.seq_len, ", train.batch_size = ", cfg.train.batch_size);
}

}  // namespace moelab
