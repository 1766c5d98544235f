// The weights of one MoE layer's routed experts and router, as views into a model's flat parameter buffer: what
// the static and dynamic expert analyses read. Expert j computes w2 (silu(w1 x) * (w3 x)) (Mixtral names:
// w1 = gate, w3 = up, w2 = down).
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace moelab::analysis {

struct ExpertWeights {
  int64_t layer = 0;              // index of the block in the model
  int64_t E = 0;                  // routed experts
  int64_t d = 0;                  // model width
  int64_t h = 0;                  // expert hidden size (neurons per expert)
  std::vector<const float*> w1;   // [E] each [h,d] gate projection
  std::vector<const float*> w3;   // [E] each [h,d] up projection
  std::vector<const float*> w2;   // [E] each [d,h] down projection
  const float* router = nullptr;  // [E,d]; null for a hash router
};

// The routed experts of every MoE layer of the model, in depth order.
std::vector<ExpertWeights> moe_expert_weights(const Model& model);

}  // namespace moelab::analysis
