// The small MoE model that model and training tests build: vocabulary 96, d 32, 2 layers of 2 heads, 4 experts of
// hidden 48. Every path of a step runs on it, in milliseconds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace moelab::testing {

// Validated; a caller that changes more settings validates again.
inline Config small_model_config(const std::string& precision, int64_t seq_len, int64_t batch_size) {
  Config cfg;
  cfg.model.vocab_size = 96, cfg.model.d_model = 32, cfg.model.n_layers = 2, cfg.model.n_heads = 2;
  cfg.model.max_seq_len = seq_len;
  cfg.moe.n_experts = 4, cfg.moe.expert_hidden = 48;
  cfg.train.seq_len = seq_len, cfg.train.batch_size = batch_size,
  cfg.train.precision = parse_design<Precision>(precision, "precision");
  validate(cfg);
  return cfg;
}

// Two different input batches and one target batch of n token ids below vocab, for tests that run two backwards.
struct TwoBatches {
  std::vector<int32_t> first, second, targets;  // each [n]
};
inline TwoBatches two_batches(int64_t n, int64_t vocab) {
  TwoBatches b{std::vector<int32_t>(n), std::vector<int32_t>(n), std::vector<int32_t>(n)};
  for (int64_t i = 0; i < n; ++i)
    b.first[i] = static_cast<int32_t>((5 * i) % vocab), b.second[i] = static_cast<int32_t>((11 * i + 3) % vocab),
    b.targets[i] = static_cast<int32_t>((i + 2) % vocab);
  return b;
}

}  // namespace moelab::testing
