// Test support for the routing suites: a reproducible random dispatch plan in which a token has between 0 and
// max_slots distinct experts, so the consumers of a plan (dispatch, combine, losses, statistics) are exercised on
// tokens with no slot and on varying slot counts, not only on what top-k produces; and router probabilities far
// enough apart that finite differences never change a selection.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "core/rng.h"
#include "routing/dispatch_plan.h"

namespace moelab::testing {

template <typename T = double>
routing::DispatchPlan<T> random_plan(int64_t N, int64_t E, int64_t max_slots, uint64_t seed) {
  Rng rng(seed, 7);
  routing::DispatchPlan<T> plan;
  plan.n_tokens = N;
  plan.n_experts = E;
  plan.token_offsets.push_back(0);
  std::vector<int32_t> experts(E);
  for (int64_t t = 0; t < N; ++t) {
    const int64_t n = static_cast<int64_t>(rng.below(max_slots + 1));
    std::iota(experts.begin(), experts.end(), 0);
    for (int64_t j = 0; j < n; ++j) {  // partial Fisher-Yates: n distinct experts in random order
      std::swap(experts[j], experts[j + rng.below(E - j)]);
      plan.slot_expert.push_back(experts[j]);
      plan.slot_weight.push_back(static_cast<T>(0.1 + 0.9 * rng.uniform()));
    }
    plan.token_offsets.push_back(static_cast<int32_t>(plan.slot_expert.size()));
  }
  routing::build_expert_groups(plan);
  return plan;
}

// Every probability distinct and at least 1/(N E + 1) from any other: a perturbation of 1e-5 changes neither a
// token's top-k choice nor a ranking within an expert. Rows need not sum to 1 for selection.
inline std::vector<double> distinct_probs(int64_t N, int64_t E, uint64_t seed) {
  Rng rng(seed, 0);
  std::vector<double> p(N * E);
  std::vector<int64_t> order(N * E);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t j = N * E - 1; j > 0; --j) std::swap(order[j], order[rng.below(j + 1)]);
  for (int64_t i = 0; i < N * E; ++i) p[i] = (order[i] + 1 + 0.5 * rng.uniform()) / (N * E + 1.0);
  return p;
}

}  // namespace moelab::testing
