#include "analysis/expert_weights.h"

#include <string>

namespace moelab::analysis {

std::vector<ExpertWeights> moe_expert_weights(const Model& model) {
  const Config& cfg = model.config();
  const ParamTable& table = model.table();
  const float* base = model.params().data();
  auto p = [&](const std::string& name) { return base + table.find(name).offset; };
  std::vector<ExpertWeights> out;
  for (int64_t i = 0; i < cfg.model.n_layers; ++i) {
    if (!is_moe_layer(cfg.moe, i)) continue;
    ExpertWeights w;
    w.layer = i, w.E = cfg.moe.n_experts, w.d = cfg.model.d_model, w.h = cfg.moe.expert_hidden;
    const std::string m = "model.layers." + std::to_string(i) + ".block_sparse_moe.";
    if (cfg.routing.router != RouterKind::Hash) w.router = p(m + "gate.weight");
    for (int64_t j = 0; j < w.E; ++j) {
      const std::string e = m + "experts." + std::to_string(j) + ".";
      w.w1.push_back(p(e + "w1.weight"));
      w.w3.push_back(p(e + "w3.weight"));
      w.w2.push_back(p(e + "w2.weight"));
    }
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace moelab::analysis
