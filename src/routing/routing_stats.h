// Routing statistics for the logs and evaluations (docs/routing.md, 'Statistics'), per MoE layer: how the tokens
// spread over the experts, how many experts a token uses, how confident the router is, how much capacity dropped.
// Counts accumulate over any number of batches (a whole evaluation pass), then are summarised once.
//
// The plan-only accumulation gives the load and experts-per-token fields; the overload that also takes the router
// probabilities and the dropped-slot count (apply_capacity's return) adds the entropy, the top-1/top-2 margin and
// the dropped fraction. Quantities that were never measured (no probabilities counted, no baseline k given) are
// empty optionals in RoutingStats and null in its JSON.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <vector>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

struct RoutingCounts {
  int64_t n_tokens = 0;
  std::vector<int64_t> expert_slots;     // [E] slots routed to expert e (after dropping)
  std::vector<int64_t> slots_per_token;  // [E+1] tokens that have j slots (a token has at most E)
  int64_t slots_dropped = 0;             // slots removed by capacity
  int64_t prob_tokens = 0;               // tokens whose router probabilities were counted
  double entropy_sum = 0;                // sum over those tokens of the routing entropy (nats)
  double margin_sum = 0;                 // sum over those tokens of p_(1) - p_(2)
};

struct RoutingStats {
  int64_t n_tokens = 0;
  std::vector<double> expert_fraction;    // [E] expert_slots[e] / n_tokens: fraction of tokens routed to e
  double load_max_over_mean = 0;          // max_e / mean_e of expert_slots (1: perfectly balanced)
  double load_cv = 0;                     // coefficient of variation of expert_slots (population std / mean)
  double mean_experts_per_token = 0;      // slots / n_tokens (after dropping)
  std::vector<double> experts_per_token;  // [E+1] fraction of tokens that use j experts
  // Mean over tokens of -sum_e q_e log q_e (nats), q = the token's probabilities divided by their sum (softmax
  // probabilities as they are; sigmoid scores normalised to a distribution). 0: one expert takes everything.
  std::optional<double> mean_entropy;
  // Mean over tokens of the largest minus the second-largest probability (with one expert: the largest).
  std::optional<double> mean_top_margin;
  double dropped_fraction = 0;  // slots dropped / slots chosen before dropping (0 when nothing chosen)
  // Activated expert parameters, with equally sized experts: mean_experts_per_token / E of all expert parameters,
  // and mean_experts_per_token / baseline_k of those a top-k router with k = baseline_k activates.
  double activated_fraction_of_all = 0;
  int64_t baseline_k = 0;  // 0: not given
  std::optional<double> activated_fraction_of_topk;
};

// Adds one plan's load and slot counts; the first call sizes counts for the plan's expert count.
template <typename T>
void accumulate_routing_counts(RoutingCounts& counts, const DispatchPlan<T>& plan);

// The same, plus the entropy and top-1/top-2 margin of probs (the full router distribution the plan was selected
// from) and the slots capacity dropped from this plan (0 when dropless).
template <typename T>
void accumulate_routing_counts(RoutingCounts& counts, const DispatchPlan<T>& plan, const T* probs /*[N,E]*/,
                               int64_t dropped);

// Every field. Load fractions and ratios are 0 when no token or no slot was counted; baseline_k (the k of the
// top-k baseline the activated fraction is compared with) <= 0 leaves activated_fraction_of_topk empty.
RoutingStats routing_stats(const RoutingCounts& counts, int64_t baseline_k = 0);

template <typename T>
RoutingStats routing_stats(const DispatchPlan<T>& plan);

template <typename T>
RoutingStats routing_stats(const DispatchPlan<T>& plan, const T* probs /*[N,E]*/, int64_t dropped, int64_t baseline_k);

// One JSON object with stable field names, for the JSONL metrics and `moelab eval --json`:
//   "tokens"                      n_tokens
//   "expert_fraction"             [E]
//   "load_max_over_mean"          number
//   "load_cv"                     number
//   "mean_experts_per_token"      number
//   "experts_per_token_hist"      [E+1]
//   "mean_entropy"                number or null
//   "mean_top1_top2_margin"       number or null
//   "dropped_fraction"            number
//   "active_expert_fraction"      activated_fraction_of_all
//   "baseline_k"                  integer or null
//   "active_vs_topk"              activated_fraction_of_topk, number or null
nlohmann::json to_json(const RoutingStats& stats);

}  // namespace moelab::routing
