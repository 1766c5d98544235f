// Per-expert health of one MoE layer (ours: none of the three papers has it): the failure modes of
// MoE training that a loss curve hides.
//   - weight norms: an expert whose norm stays at its initial value (or decays under weight decay) is not learning;
//   - collapsed experts: pairs whose whole weights (w1, w3, w2 concatenated) point the same way, i.e. capacity spent
//     twice on one function;
//   - dead and rare experts: from per-expert token counts over an evaluation set (routing_stats' expert_slots),
//     experts that received no token, and those below a fraction of the uniform share.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "analysis/expert_weights.h"

namespace moelab::analysis {

struct HealthOptions {
  double collapse_threshold = 0.95;  // whole-expert cosine above which a pair is collapsed, in [-1, 1]
  double rare_fraction = 0.1;        // rare: fewer tokens than this fraction of total / E, >= 0
};

struct CollapsedPair {
  int64_t a = 0, b = 0;  // a < b
  double cosine = 0;     // whole-expert cosine
};

struct ExpertHealth {
  int64_t layer = 0, E = 0;
  HealthOptions options;                              // the thresholds used
  std::vector<double> norm_gate, norm_up, norm_down;  // [E] Frobenius norms of w1, w3, w2
  std::vector<double> norm_total;                     // [E] of the three together
  std::vector<double> whole_similarity;               // [E,E] cosine of the concatenated (w1, w3, w2)
  std::vector<CollapsedPair> collapsed;               // cosine > threshold, ordered by (a, b)
  bool has_tokens = false;                            // whether token counts were given
  std::vector<int64_t> tokens;                        // [E] the counts given (empty without)
  std::vector<int64_t> dead;                          // experts with 0 tokens
  std::vector<int64_t> rare;                          // experts with 0 < tokens < rare_fraction * total / E
};

// tokens_per_expert may be null (no evaluation pass): dead and rare are then left empty. With top-k routing a
// token counts once per expert it is routed to, so "total" is the number of slots. Throws moelab::Error for an
// option out of range or a negative count.
ExpertHealth expert_health(const ExpertWeights& w, const int64_t* tokens_per_expert /*[E] or null*/,
                           const HealthOptions& options = {});

// One JSON object: "layer", "experts", "norm_gate", "norm_up", "norm_down", "norm_total" ([E] each),
// "whole_similarity" [E][E], "collapse_threshold", "collapsed" [{"a", "b", "cosine"}], "rare_fraction", and
// "tokens" [E], "dead" [ids], "rare" [ids] (each null without token counts).
nlohmann::json to_json(const ExpertHealth& h);

}  // namespace moelab::analysis
