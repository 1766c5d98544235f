#include "model/param_table.h"

#include <algorithm>

#include "core/error.h"

namespace moelab {

bool is_moe_layer(const MoeConfig& moe, int64_t layer) {
  return layer >= moe.first_dense_layers && (layer - moe.first_dense_layers) % moe.moe_every == 0 &&
         std::find(moe.dense_layers.begin(), moe.dense_layers.end(), layer) == moe.dense_layers.end();
}

int64_t attention_head_dim(const ModelConfig& model) {
  return model.head_dim > 0 ? model.head_dim : model.d_model / model.n_heads;
}

int64_t attention_kv_heads(const ModelConfig& model) { return model.n_kv_heads > 0 ? model.n_kv_heads : model.n_heads; }

int64_t shared_experts_hidden(const MoeConfig& moe) {
  return moe.n_shared_experts * (moe.shared_expert_hidden > 0 ? moe.shared_expert_hidden : moe.expert_hidden);
}

bool router_is_trained(const RoutingConfig& routing) { return routing.router == RouterKind::Learned; }

int64_t dense_ffn_hidden(const Config& cfg) {
  return cfg.moe.dense_hidden > 0 ? cfg.moe.dense_hidden : cfg.moe.expert_hidden * cfg.routing.top_k;
}

ParamTable::ParamTable(const Config& cfg) {
  const auto& m = cfg.model;
  const int64_t d = m.d_model, V = m.vocab_size;
  const int64_t head_dim = attention_head_dim(m), q_width = m.n_heads * head_dim;
  const int64_t kv_width = attention_kv_heads(m) * head_dim;
  add("model.embed_tokens.weight", {V, d}, ParamInit::Normal, ParamGroup::Embedding);
  for (int64_t i = 0; i < m.n_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {d}, ParamInit::Ones, ParamGroup::Norm);
    add(p + "self_attn.q_proj.weight", {q_width, d}, ParamInit::Normal, ParamGroup::Attention);
    add(p + "self_attn.k_proj.weight", {kv_width, d}, ParamInit::Normal, ParamGroup::Attention);
    add(p + "self_attn.v_proj.weight", {kv_width, d}, ParamInit::Normal, ParamGroup::Attention);
    add(p + "self_attn.o_proj.weight", {d, q_width}, ParamInit::Normal, ParamGroup::Attention);
    if (m.qkv_bias) {  // decayed with the attention matrices
      add(p + "self_attn.q_proj.bias", {q_width}, ParamInit::Zeros, ParamGroup::Attention);
      add(p + "self_attn.k_proj.bias", {kv_width}, ParamInit::Zeros, ParamGroup::Attention);
      add(p + "self_attn.v_proj.bias", {kv_width}, ParamInit::Zeros, ParamGroup::Attention);
    }
    if (m.qk_norm != QkNorm::None) {
      const bool per_head = m.qk_norm == QkNorm::PerHead;
      add(p + "self_attn.q_norm.weight", {per_head ? head_dim : q_width}, ParamInit::Ones, ParamGroup::Norm);
      add(p + "self_attn.k_norm.weight", {per_head ? head_dim : kv_width}, ParamInit::Ones, ParamGroup::Norm);
    }
    add(p + "post_attention_layernorm.weight", {d}, ParamInit::Ones, ParamGroup::Norm);
    if (is_moe_layer(cfg.moe, i)) {
      const int64_t h = cfg.moe.expert_hidden;
      if (cfg.routing.router != RouterKind::Hash)  // a hash router is a fixed table, not a weight
        add(p + "block_sparse_moe.gate.weight", {cfg.moe.n_experts, d}, ParamInit::Normal, ParamGroup::Router,
            router_is_trained(cfg.routing));
      if (cfg.routing.bias_update_rate > 0)  // loss-free balancing: moved by load, not by gradient (DeepSeek-V3 name)
        add(p + "block_sparse_moe.e_score_correction_bias", {cfg.moe.n_experts}, ParamInit::Zeros, ParamGroup::Router,
            /*trainable=*/false);
      for (int64_t j = 0; j < cfg.moe.n_experts; ++j) {
        const std::string e = p + "block_sparse_moe.experts." + std::to_string(j) + ".";
        add(e + "w1.weight", {h, d}, ParamInit::Normal, ParamGroup::Expert);
        add(e + "w2.weight", {d, h}, ParamInit::Normal, ParamGroup::Expert);
        add(e + "w3.weight", {h, d}, ParamInit::Normal, ParamGroup::Expert);
      }
      if (const int64_t hs = shared_experts_hidden(cfg.moe); hs > 0) {  // DeepSeekMoE names
        const std::string s = p + "block_sparse_moe.shared_experts.";
        add(s + "gate_proj.weight", {hs, d}, ParamInit::Normal, ParamGroup::SharedExpert);
        add(s + "up_proj.weight", {hs, d}, ParamInit::Normal, ParamGroup::SharedExpert);
        add(s + "down_proj.weight", {d, hs}, ParamInit::Normal, ParamGroup::SharedExpert);
        if (cfg.moe.shared_expert_gate)  // Qwen2-MoE's name
          add(p + "block_sparse_moe.shared_expert_gate.weight", {1, d}, ParamInit::Normal, ParamGroup::SharedExpert);
      }
    } else {
      const int64_t h = dense_ffn_hidden(cfg);
      add(p + "mlp.gate_proj.weight", {h, d}, ParamInit::Normal, ParamGroup::DenseFfn);
      add(p + "mlp.up_proj.weight", {h, d}, ParamInit::Normal, ParamGroup::DenseFfn);
      add(p + "mlp.down_proj.weight", {d, h}, ParamInit::Normal, ParamGroup::DenseFfn);
    }
  }
  add("model.norm.weight", {d}, ParamInit::Ones, ParamGroup::Norm);
  if (!m.tie_embeddings) add("lm_head.weight", {V, d}, ParamInit::Normal, ParamGroup::LmHead);
}

void ParamTable::add(std::string name, std::vector<int64_t> shape, ParamInit init, ParamGroup group, bool trainable) {
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  specs_.push_back({std::move(name), std::move(shape), init, group, total_, numel, trainable});
  total_ += numel;
}

const ParamSpec& ParamTable::find(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return s;
  throw_error("no parameter named '", name, "' in this model");
}

bool decays(const TrainConfig& train, ParamGroup group) {
  switch (group) {
    case ParamGroup::Norm:
      return train.decay_norms;
    case ParamGroup::Router:
      return train.decay_router;
    case ParamGroup::Embedding:
    case ParamGroup::LmHead:
      return train.decay_embeddings;
    case ParamGroup::Attention:
    case ParamGroup::Expert:
    case ParamGroup::SharedExpert:
    case ParamGroup::DenseFfn:
      return true;
  }
  return true;
}

}  // namespace moelab
