// Text generation by sampling: temperature scaling and top-k filtering of the next-token distribution.
// Each new token reruns the model on the (truncated) context: simple and exact; these models are small.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "model/model.h"

namespace moelab {

struct SamplingOptions {
  double temperature = 0.8;  // 0: greedy (argmax)
  int64_t top_k = 40;        // keep the k most likely tokens; 0: all
  int64_t max_new_tokens = 100;
  uint64_t seed = 0;
  int32_t stop_token = -1;  // stop after producing this token (end of document); -1: never
  // Draw only ids below this: a pretrained model's vocabulary may have padding rows past its tokenizer's, which no
  // text decodes from. 0: every id of the model.
  int64_t vocab_limit = 0;
};

// Draws one token from logits [V] under the options; reproducible from rng.
int32_t sample_token(const float* logits /*[V]*/, int64_t V, const SamplingOptions& opt, Rng& rng);

// Continues `prompt` (at least one token); returns only the new tokens.
std::vector<int32_t> generate(Model& model, const std::vector<int32_t>& prompt, const SamplingOptions& opt);

}  // namespace moelab
