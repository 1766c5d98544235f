#include "train/expert_grad_norms.h"

#include <cmath>
#include <string>

namespace moelab {

nlohmann::json expert_grad_norms(const Model& model) {
  const Config& cfg = model.config();
  const ParamTable& table = model.table();
  const float* grads = model.grads().data();
  nlohmann::json out = nlohmann::json::array();
  for (int64_t i = 0; i < cfg.model.n_layers; ++i) {
    if (!is_moe_layer(cfg.moe, i)) continue;
    std::vector<double> norms;  // [E]
    for (int64_t j = 0; j < cfg.moe.n_experts; ++j) {
      const std::string e =
          "model.layers." + std::to_string(i) + ".block_sparse_moe.experts." + std::to_string(j) + ".";
      double sum = 0;
      for (const char* w : {"w1.weight", "w3.weight", "w2.weight"}) {
        const ParamSpec& spec = table.find(e + w);
        const float* g = grads + spec.offset;
        for (int64_t k = 0; k < spec.numel; ++k) sum += static_cast<double>(g[k]) * g[k];
      }
      norms.push_back(std::sqrt(sum));
    }
    out.push_back({{"layer", i}, {"norms", norms}});
  }
  return out;
}

}  // namespace moelab
