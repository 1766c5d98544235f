#include "model/model_flops.h"

#include "model/param_table.h"

namespace moelab {

double model_flops_per_token(const Config& cfg, int64_t seq_len, bool training) {
  const double d = static_cast<double>(cfg.model.d_model), L = static_cast<double>(cfg.model.n_layers);
  const double hd = static_cast<double>(attention_head_dim(cfg.model));
  const double q = static_cast<double>(cfg.model.n_heads) * hd,
               kv = static_cast<double>(attention_kv_heads(cfg.model)) * hd;
  const double per_layer = 2 * d * (q + kv) + d * static_cast<double>(cfg.moe.n_experts) +
                           static_cast<double>(cfg.routing.top_k) * 3 * d * static_cast<double>(cfg.moe.expert_hidden);
  const double active = L * per_layer + static_cast<double>(cfg.model.vocab_size) * d;
  const double attention = 4.0 * L * static_cast<double>(seq_len) * q;
  return training ? 6 * active + 3 * attention : 2 * active + attention;
}

}  // namespace moelab
