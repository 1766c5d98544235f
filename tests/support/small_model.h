// The small MoE model that model and training tests build: vocabulary 96, d 32, 2 layers of 2 heads, 4 experts of
// hidden 48. Every path of a step runs on it, in milliseconds.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace moelab::testing {

// Validated; a caller that changes more settings validates again.
inline Config small_model_config(const std::string& precision, int64_t seq_len, int64_t batch_size) {
  Config cfg;
  cfg.model.vocab_size = 96, cfg.model.d_model = 32, cfg.model.n_layers = 2, cfg.model.n_heads = 2;
  cfg.model.max_seq_len = seq_len;
  cfg.moe.n_experts = 4, cfg.moe.expert_hidden = 48;
  cfg.train.seq_len = seq_len, cfg.train.batch_size = batch_size, cfg.train.precision = precision;
  validate(cfg);
  return cfg;
}

}  // namespace moelab::testing
