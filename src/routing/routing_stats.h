// Routing statistics for the logs and evaluations (SPEC section 4), computed from dispatch plans alone: how the
// tokens spread over the experts, and how many experts a token uses. Counts accumulate over any number of batches
// (a whole evaluation pass), then are summarised once.
#pragma once

#include <cstdint>
#include <vector>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

struct RoutingCounts {
  int64_t n_tokens = 0;
  std::vector<int64_t> expert_slots;       // [E] slots routed to expert e
  std::vector<int64_t> slots_per_token;    // [E+1] tokens that have j slots (a token has at most E)
};

struct RoutingStats {
  std::vector<double> expert_fraction;     // [E] expert_slots[e] / n_tokens: fraction of tokens routed to e
  double load_max_over_mean = 0;           // max_e / mean_e of expert_slots (1: perfectly balanced)
  double load_cv = 0;                      // coefficient of variation of expert_slots (population std / mean)
  double mean_experts_per_token = 0;       // slots / n_tokens
  std::vector<double> experts_per_token;   // [E+1] fraction of tokens that use j experts
};

// Adds one plan's counts; the first call sizes counts for the plan's expert count.
template <typename T>
void accumulate_routing_counts(RoutingCounts& counts, const DispatchPlan<T>& plan);

// All zeros (fractions, ratios) when no token or no slot was counted.
RoutingStats routing_stats(const RoutingCounts& counts);

template <typename T>
RoutingStats routing_stats(const DispatchPlan<T>& plan);

}  // namespace moelab::routing
