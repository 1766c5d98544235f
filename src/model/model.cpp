#include "model/model.h"

#include <cmath>
#include <cstring>
#include <functional>

#include "backend/cpu/gemm_bf16.h"
#include "core/error.h"
#include "core/op_profile.h"
#include "core/rng.h"
#include "model/memory_estimate.h"
#include "ops/cross_entropy.h"
#include "ops/embedding.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"

namespace moelab {

namespace {

// Adds b into a elementwise: a[i] += b[i].
void add_into(float* a, const float* b, int64_t n) {
  profile::Scope p("bwd residual_add", 0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

// out[i] = a[i] + b[i]: a residual connection.
void add_to(float* out, const float* a, const float* b, int64_t n) {
  profile::Scope p("fwd residual_add", 0);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

AttentionShape attention_shape(const Config& cfg, int64_t B, int64_t T) {
  const auto& m = cfg.model;
  AttentionShape s{B, T, m.d_model, m.n_heads, attention_kv_heads(m), attention_head_dim(m), m.rope_theta, m.rms_eps};
  s.qk_norm = m.qk_norm, s.qkv_bias = m.qkv_bias, s.clip_qkv = m.clip_qkv;
  return s;
}

MoeFfnShape moe_ffn_shape(const Config& cfg, int64_t B, int64_t T) {
  const auto& r = cfg.routing;
  MoeFfnShape s{B, T, cfg.model.d_model, cfg.moe.n_experts, cfg.moe.expert_hidden};
  s.gating = r.gating, s.rule = r.rule, s.granularity = r.granularity;
  s.top_k = r.top_k, s.renormalize = r.renormalize, s.top_p = r.top_p, s.max_k = r.max_k;
  s.capacity_factor = r.capacity_factor;
  s.hash_router = r.router == RouterKind::Hash;
  s.shared_hidden = shared_experts_hidden(cfg.moe);
  s.shared_gate = cfg.moe.shared_expert_gate;
  return s;
}

cpu::GemmPrecision gemm_precision_of(const Config& cfg) {
  return cfg.train.precision == Precision::Bf16 ? cpu::GemmPrecision::Bf16 : cpu::GemmPrecision::F32;
}

// The config, once its parameter table and buffers are known to fit in this machine's memory: checked before the
// members that allocate them are built (a config.json of absurd sizes must not end in the OOM killer).
const Config& fits_in_memory(const Config& cfg, ModelUse use) {
  check_memory_fits(cfg, use == ModelUse::Training ? MemoryUse::Model : MemoryUse::InferenceModel);
  return cfg;
}

}  // namespace

// One transformer block: its weights (pointers into the flat buffers) and what its forward saved.
struct Model::Layer {
  bool moe = false;
  AttentionWeights<float> attn_w{};
  AttentionGrads<float> attn_g{};
  const float* ffn_norm_w = nullptr;  // [d]
  float* ffn_norm_g = nullptr;        // [d]
  MoeFfnWeights<float> moe_w;
  float* selection_bias = nullptr;  // [E] loss-free balancing: the one weight moved outside the optimizer
  MoeFfnGrads<float> moe_g;
  SwigluMlpWeights<float> dense_w{};
  SwigluMlpGrads<float> dense_g{};
  int64_t dense_hidden = 0;

  std::vector<float> x_in;   // [N,d] residual stream entering the block
  std::vector<float> x_mid;  // [N,d] residual stream after the attention sublayer
  AttentionActivations<float> attn;
  std::vector<float> ffn_normed;  // [N,d]
  std::vector<float> ffn_rstd;    // [N]
  MoeFfnActivations<float> moe_act;
  std::vector<float> dense_g_act, dense_u_act, dense_act;  // [N,h_dense]
  MoeAuxLosses aux;
};

// Buffers shared across layers: the final norm, logits, and backward scratch (one layer at a time).
struct Model::Workspace {
  int64_t B = 0, T = 0;
  std::vector<int32_t> inputs, targets;  // [N]
  std::vector<float> x_final;            // [N,d] residual stream after the last block
  std::vector<float> final_normed;       // [N,d]
  std::vector<float> final_rstd;         // [N]
  std::vector<float> logits;             // [N,V]; backward turns it into d_logits in place
  std::vector<float> row_loss;           // [N]
  std::vector<float> sub_out;            // [N,d] a sublayer's output before it joins the residual
  std::vector<float> d_resid;            // [N,d] gradient of the residual stream
  std::vector<float> d_sub;              // [N,d]
  std::vector<float> d_normed;           // [N,d]
  AttentionScratch<float> attn_scratch;
  MoeFfnScratch<float> moe_scratch;
  std::vector<float> d_act, d_g, d_u;  // [N,h_dense]
  bool backward_ready = false;         // the last forward had targets and ran outside InferenceMode
  Losses losses;
};

Model::Model(const Config& cfg, ModelUse use)
    : cfg_(fits_in_memory(cfg, use)),
      use_(use),
      table_(cfg),
      params_(table_.total_numel(), 0.0f),
      grads_(use == ModelUse::Training ? table_.total_numel() : 0, 0.0f),
      grad_squares_(grads_.data()),
      ws_(std::make_unique<Workspace>()) {
  MOELAB_ASSERT(cfg.model.vocab_size > 0, "vocab_size must be resolved before building a model");
  if (use == ModelUse::Inference) pack_for_inference_ = inference_packing_fits(cfg);
  auto p = [&](const std::string& n) { return params_.data() + table_.find(n).offset; };
  auto g = [&](const std::string& n) { return grads_.empty() ? nullptr : grads_.data() + table_.find(n).offset; };
  for (int64_t i = 0; i < cfg.model.n_layers; ++i) {
    auto layer = std::make_unique<Layer>();
    const std::string pre = "model.layers." + std::to_string(i) + ".";
    const std::string a = pre + "self_attn.";
    layer->attn_w = {p(pre + "input_layernorm.weight"), p(a + "q_proj.weight"), p(a + "k_proj.weight"),
                     p(a + "v_proj.weight"), p(a + "o_proj.weight")};
    layer->attn_g = {g(pre + "input_layernorm.weight"), g(a + "q_proj.weight"), g(a + "k_proj.weight"),
                     g(a + "v_proj.weight"), g(a + "o_proj.weight")};
    if (cfg.model.qk_norm != QkNorm::None) {
      layer->attn_w.q_norm = p(a + "q_norm.weight"), layer->attn_w.k_norm = p(a + "k_norm.weight");
      layer->attn_g.q_norm = g(a + "q_norm.weight"), layer->attn_g.k_norm = g(a + "k_norm.weight");
    }
    if (cfg.model.qkv_bias) {
      layer->attn_w.bq = p(a + "q_proj.bias"), layer->attn_w.bk = p(a + "k_proj.bias");
      layer->attn_w.bv = p(a + "v_proj.bias");
      layer->attn_g.bq = g(a + "q_proj.bias"), layer->attn_g.bk = g(a + "k_proj.bias");
      layer->attn_g.bv = g(a + "v_proj.bias");
    }
    layer->ffn_norm_w = p(pre + "post_attention_layernorm.weight");
    layer->ffn_norm_g = g(pre + "post_attention_layernorm.weight");
    layer->moe = is_moe_layer(cfg.moe, i);
    if (layer->moe) {
      const std::string m = pre + "block_sparse_moe.";
      const bool has_router = cfg.routing.router != RouterKind::Hash;
      layer->moe_w.router = has_router ? p(m + "gate.weight") : nullptr;
      layer->moe_g.router = has_router && router_is_trained(cfg.routing) ? g(m + "gate.weight") : nullptr;
      for (int64_t j = 0; j < cfg.moe.n_experts; ++j) {
        const std::string e = m + "experts." + std::to_string(j) + ".";
        layer->moe_w.experts.push_back({p(e + "w1.weight"), p(e + "w3.weight"), p(e + "w2.weight")});
        layer->moe_g.experts.push_back({g(e + "w1.weight"), g(e + "w3.weight"), g(e + "w2.weight")});
      }
      if (cfg.routing.bias_update_rate > 0) {
        layer->selection_bias = p(m + "e_score_correction_bias");
        layer->moe_w.selection_bias = layer->selection_bias;
      }
      if (shared_experts_hidden(cfg.moe) > 0) {
        const std::string s = m + "shared_experts.";
        layer->moe_w.shared = {p(s + "gate_proj.weight"), p(s + "up_proj.weight"), p(s + "down_proj.weight")};
        layer->moe_g.shared = {g(s + "gate_proj.weight"), g(s + "up_proj.weight"), g(s + "down_proj.weight")};
        if (cfg.moe.shared_expert_gate) {
          layer->moe_w.shared_gate = p(m + "shared_expert_gate.weight");
          layer->moe_g.shared_gate = g(m + "shared_expert_gate.weight");
        }
      }
    } else {
      layer->dense_hidden = dense_ffn_hidden(cfg);
      layer->dense_w = {p(pre + "mlp.gate_proj.weight"), p(pre + "mlp.up_proj.weight"),
                        p(pre + "mlp.down_proj.weight")};
      layer->dense_g = {g(pre + "mlp.gate_proj.weight"), g(pre + "mlp.up_proj.weight"),
                        g(pre + "mlp.down_proj.weight")};
    }
    n_moe_layers_ += layer->moe;
    layers_.push_back(std::move(layer));
  }
}

Model::~Model() = default;

Model::InferenceMode::InferenceMode(Model& model) : model_(model) { ++model_.inference_depth_; }
Model::InferenceMode::~InferenceMode() {
  if (--model_.inference_depth_ == 0) model_.compute_caches_.drop_packed();
}

void Model::check_weights_may_change() const {
  MOELAB_ASSERT(inference_depth_ == 0, "the weights are frozen inside Model::InferenceMode");
}

void Model::check_trains() const {
  MOELAB_ASSERT(use_ == ModelUse::Training, "a model built for inference has no gradients");
}

std::vector<float>& Model::mutable_params() {
  check_weights_may_change();
  compute_caches_.weights_changed();
  return params_;
}

std::vector<float>& Model::grads() {
  check_trains();
  grads_zero_ = false;
  grad_squares_.forget();
  return grads_;
}

double Model::grad_norm() const { return grad_squares_.norm(static_cast<int64_t>(grads_.size())); }

Model::OptimizerAccess Model::optimizer_access() {
  check_weights_may_change();
  check_trains();
  const bool bf16 = gemm_precision_of(cfg_) == cpu::GemmPrecision::Bf16;
  grads_zero_ = true;
  grad_squares_.forget();
  // Current as a whole: tensors the optimizer skips (frozen ones) must be current too.
  uint16_t* mirror =
      bf16 ? compute_caches_.current_mirror(params_.data(), static_cast<int64_t>(params_.size())) : nullptr;
  return {params_.data(), grads_.data(), mirror};
}

cpu::ComputeContext Model::compute_context(bool forward_only) {
  // The weights cannot change until the InferenceMode ends: an f32 forward may pack them once for every GEMM after.
  return compute_caches_.context(params_.data(), static_cast<int64_t>(params_.size()), gemm_precision_of(cfg_),
                                 forward_only && pack_for_inference_);
}

void Model::init_params(uint64_t seed) {
  check_weights_may_change();
  compute_caches_.weights_changed();
  for (const auto& spec : table_.specs()) {
    float* w = params_.data() + spec.offset;
    if (spec.init != ParamInit::Normal) {
      std::fill(w, w + spec.numel, spec.init == ParamInit::Ones ? 1.0f : 0.0f);
      continue;
    }
    Rng rng(seed, name_hash(spec.name));
    for (int64_t i = 0; i < spec.numel; ++i) w[i] = static_cast<float>(rng.normal() * cfg_.model.init_std);
  }
}

void Model::resample_routers(uint64_t seed, int64_t step) {
  check_weights_may_change();
  if (cfg_.routing.router != RouterKind::Resampled) return;
  compute_caches_.weights_changed();
  for (const auto& spec : table_.specs()) {
    if (spec.group != ParamGroup::Router || spec.init != ParamInit::Normal) continue;  // router matrices only
    float* w = params_.data() + spec.offset;
    Rng rng(seed, name_hash(spec.name) ^ splitmix64(static_cast<uint64_t>(step) + 1));
    for (int64_t i = 0; i < spec.numel; ++i) w[i] = static_cast<float>(rng.normal() * cfg_.model.init_std);
  }
}

void Model::update_selection_bias() {
  check_weights_may_change();
  const double rate = cfg_.routing.bias_update_rate;
  if (rate <= 0) return;
  // A current bf16 mirror stays current: E entries per layer, where a stale one would cost a pass over every weight.
  uint16_t* mirror = compute_caches_.mirror_if_current();
  for (auto& l : layers_) {
    if (!l->moe) continue;
    const auto& plan = l->moe_act.plan;
    const int64_t E = cfg_.moe.n_experts;
    const double mean_load = static_cast<double>(plan.n_slots()) / E;
    float* bias = l->selection_bias;
    for (int64_t e = 0; e < E; ++e) {
      const double load = static_cast<double>(plan.expert_rows(e));
      if (load > mean_load)
        bias[e] -= static_cast<float>(rate);
      else if (load < mean_load)
        bias[e] += static_cast<float>(rate);
      if (mirror) mirror[bias - params_.data() + e] = cpu::to_bf16(bias[e]);
    }
  }
}

void Model::zero_grads() {
  check_trains();
  if (grads_zero_) return;
  grads_zero_ = true;
  grad_squares_.forget();
  float* g = grads_.data();
  const int64_t n = static_cast<int64_t>(grads_.size());
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
  for (int64_t i = 0; i < n; ++i) g[i] = 0.0f;
}

const float* Model::logits() const { return ws_->logits.data(); }
const std::vector<float>& Model::row_losses() const { return ws_->row_loss; }

std::vector<Model::LayerRouting> Model::layer_routing() const {
  const bool sequence = cfg_.routing.granularity == Granularity::Sequence;
  const bool hash = cfg_.routing.router == RouterKind::Hash;
  std::vector<LayerRouting> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = *layers_[i];
    if (!l.moe) continue;
    out.push_back({static_cast<int64_t>(i), sequence ? &l.moe_act.route_plan : &l.moe_act.plan, &l.moe_act.plan,
                   hash ? nullptr : l.moe_act.router_probs.data(), l.aux.dropped, l.ffn_normed.data()});
  }
  return out;
}

Losses Model::forward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T) {
  const bool inference = inference_depth_ > 0;
  const cpu::ComputeContext ctx = compute_context(inference);
  const auto& m = cfg_.model;
  const int64_t N = B * T, d = m.d_model, V = m.vocab_size;
  auto& ws = *ws_;
  ws.B = B, ws.T = T;
  ws.inputs.assign(inputs, inputs + N);
  // What backward reads is kept only where a backward may follow: outside InferenceMode, in a model that trains.
  const bool keep_for_backward = !inference && use_ == ModelUse::Training;
  ws.backward_ready = targets != nullptr && keep_for_backward;
  if (targets) ws.targets.assign(targets, targets + N);
  ws.sub_out.resize(N * d);

  const float* embed = param("model.embed_tokens.weight");
  const AttentionShape shape = attention_shape(cfg_, B, T);
  const MoeFfnShape moe_shape = moe_ffn_shape(cfg_, B, T);

  layers_[0]->x_in.resize(N * d);
  {
    profile::Scope p("fwd embedding", 0);
    ops::embedding_forward(layers_[0]->x_in.data(), ws.inputs.data(), embed, N, d);
  }
  // Block by block: x_in -> x_mid = x_in + attn(x_in) -> next x_in = x_mid + ffn(x_mid).
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& L = *layers_[i];
    L.x_mid.resize(N * d);
    attention_block_forward(ctx, ws.sub_out.data(), L.attn, L.x_in.data(), L.attn_w, shape, keep_for_backward);
    add_to(L.x_mid.data(), L.x_in.data(), ws.sub_out.data(), N * d);

    L.ffn_normed.resize(N * d);
    L.ffn_rstd.resize(N);
    {
      profile::Scope p("fwd ffn_norm", 0);
      ops::rmsnorm_forward(L.ffn_normed.data(), L.ffn_rstd.data(), L.x_mid.data(), L.ffn_norm_w, N, d, m.rms_eps);
    }
    if (L.moe) {
      MoeFfnShape layer_shape = moe_shape;
      layer_shape.hash_seed = splitmix64(i + 1);  // a fixed table per layer, independent of the training seed
      L.aux = moe_ffn_forward(ctx, ws.sub_out.data(), L.moe_act, ws.moe_scratch, L.ffn_normed.data(), ws.inputs.data(),
                              L.moe_w, layer_shape, keep_for_backward);
    } else {
      const int64_t h = L.dense_hidden;
      L.dense_g_act.resize(N * h), L.dense_u_act.resize(N * h), L.dense_act.resize(N * h);
      swiglu_mlp_forward(ctx, ws.sub_out.data(), L.dense_g_act.data(), L.dense_u_act.data(), L.dense_act.data(),
                         L.ffn_normed.data(), L.dense_w, N, d, h);
    }
    std::vector<float>& next = i + 1 < layers_.size() ? layers_[i + 1]->x_in : ws.x_final;
    next.resize(N * d);
    add_to(next.data(), L.x_mid.data(), ws.sub_out.data(), N * d);
  }

  ws.final_normed.resize(N * d);
  ws.final_rstd.resize(N);
  {
    profile::Scope p("fwd final_norm", 0);
    ops::rmsnorm_forward(ws.final_normed.data(), ws.final_rstd.data(), ws.x_final.data(), param("model.norm.weight"), N,
                         d, m.rms_eps);
  }
  const float* head = m.tie_embeddings ? embed : param("lm_head.weight");
  ws.logits.resize(N * V);
  {
    profile::Scope p("fwd lm_head", 2.0 * N * d * V);
    ops::linear_forward(ctx, ws.logits.data(), ws.final_normed.data(), head, N, d, V);
  }

  Losses out;
  if (targets) {
    ws.row_loss.resize(N);
    profile::Scope p("fwd cross_entropy", 0);
    const double sum = ops::cross_entropy_forward(ws.row_loss.data(), ws.logits.data(), ws.targets.data(), N, V);
    for (int64_t j = 0; j < N; ++j) out.n_targets += ws.targets[j] >= 0;
    out.ce = out.n_targets > 0 ? sum / out.n_targets : 0.0;
    for (const auto& l : layers_) {
      if (!l->moe) continue;
      out.load_balance += l->aux.load_balance, out.z_loss += l->aux.z_loss, out.entropy += l->aux.entropy;
    }
    if (n_moe_layers_ > 0) {
      out.load_balance /= n_moe_layers_, out.z_loss /= n_moe_layers_, out.entropy /= n_moe_layers_;
    }
    const auto& r = cfg_.routing;
    out.total = out.ce + r.load_balance_coef * out.load_balance + r.z_loss_coef * out.z_loss +
                r.dynamic_loss_coef * out.entropy;
  }
  ws.losses = out;
  return out;
}

void Model::backward(double scale) {
  const cpu::ComputeContext ctx = compute_context(false);
  auto& ws = *ws_;
  check_trains();
  MOELAB_ASSERT(ws.backward_ready, "backward needs a forward with targets, outside Model::InferenceMode");
  const bool grads_were_zero = grads_zero_;
  grads_zero_ = false;
  const auto& m = cfg_.model;
  const int64_t B = ws.B, T = ws.T, N = B * T, d = m.d_model, V = m.vocab_size;
  const AttentionShape shape = attention_shape(cfg_, B, T);
  const MoeFfnShape moe_shape = moe_ffn_shape(cfg_, B, T);
  // The aux losses enter the objective as coefficient x mean over MoE layers.
  const double per_layer = n_moe_layers_ ? scale / n_moe_layers_ : 0.0;
  const MoeAuxCoefficients coef{per_layer * cfg_.routing.load_balance_coef, per_layer * cfg_.routing.z_loss_coef,
                                per_layer * cfg_.routing.dynamic_loss_coef};

  // Loss -> logits (in place) -> LM head -> final norm.
  const int64_t n_targets = ws.losses.n_targets;
  {
    profile::Scope p("bwd cross_entropy", 0);
    ops::cross_entropy_backward(ws.logits.data(), ws.logits.data(), ws.targets.data(), N, V,
                                n_targets > 0 ? scale / n_targets : 0.0);
  }
  const float* embed = param("model.embed_tokens.weight");
  float* d_embed = grads_.data() + table_.find("model.embed_tokens.weight").offset;
  const float* head = m.tie_embeddings ? embed : param("lm_head.weight");
  float* d_head = m.tie_embeddings ? d_embed : grads_.data() + table_.find("lm_head.weight").offset;
  ws.d_normed.resize(N * d), ws.d_resid.resize(N * d), ws.d_sub.resize(N * d);
  {
    profile::Scope p("bwd lm_head", 4.0 * N * d * V);
    ops::linear_backward(ctx, ws.d_normed.data(), d_head, ws.logits.data(), ws.final_normed.data(), head, N, d, V);
  }
  {
    profile::Scope p("bwd final_norm", 0);
    ops::rmsnorm_backward(ws.d_resid.data(), grads_.data() + table_.find("model.norm.weight").offset,
                          ws.d_normed.data(), ws.x_final.data(), param("model.norm.weight"), ws.final_rstd.data(), N,
                          d);
  }

  for (size_t i = layers_.size(); i-- > 0;) {
    Layer& L = *layers_[i];
    // FFN sublayer: next = x_mid + ffn(norm(x_mid)).
    if (L.moe) {
      moe_ffn_backward(ctx, ws.d_normed.data(), L.moe_g, ws.moe_scratch, ws.d_resid.data(), L.ffn_normed.data(),
                       L.moe_act, L.moe_w, moe_shape, {coef, grads_were_zero, &grad_squares_});
    } else {
      const int64_t h = L.dense_hidden;
      ws.d_act.resize(N * h), ws.d_g.resize(N * h), ws.d_u.resize(N * h);
      swiglu_mlp_backward(
          ctx, ws.d_normed.data(), L.dense_g, {ws.d_act.data(), ws.d_g.data(), ws.d_u.data()}, ws.d_resid.data(),
          {L.ffn_normed.data(), L.dense_g_act.data(), L.dense_u_act.data(), L.dense_act.data()}, L.dense_w, {N, d, h});
    }
    {
      profile::Scope p("bwd ffn_norm", 0);
      ops::rmsnorm_backward(ws.d_sub.data(), L.ffn_norm_g, ws.d_normed.data(), L.x_mid.data(), L.ffn_norm_w,
                            L.ffn_rstd.data(), N, d);
    }
    add_into(ws.d_resid.data(), ws.d_sub.data(), N * d);  // now d/dx_mid
    // Attention sublayer: x_mid = x_in + attn(x_in).
    attention_block_backward(ctx, ws.d_sub.data(), L.attn_g, ws.attn_scratch, ws.d_resid.data(), L.x_in.data(), L.attn,
                             L.attn_w, shape);
    add_into(ws.d_resid.data(), ws.d_sub.data(), N * d);  // now d/dx_in
  }
  profile::Scope p("bwd embedding", 0);
  ops::embedding_backward(d_embed, ws.d_resid.data(), ws.inputs.data(), N, d);
}

}  // namespace moelab
