#include "routing/routing_stats.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace moelab::routing {

template <typename T>
void accumulate_routing_counts(RoutingCounts& counts, const DispatchPlan<T>& plan) {
  const int64_t N = plan.n_tokens, E = plan.n_experts;
  if (counts.expert_slots.empty()) {
    counts.expert_slots.assign(E, 0);
    counts.slots_per_token.assign(E + 1, 0);
  }
  MOELAB_ASSERT(static_cast<int64_t>(counts.expert_slots.size()) == E, "routing counts of another expert count");
  counts.n_tokens += N;
  for (int64_t e = 0; e < E; ++e) counts.expert_slots[e] += plan.expert_rows(e);
  for (int64_t t = 0; t < N; ++t) {
    const int64_t n = plan.token_offsets[t + 1] - plan.token_offsets[t];
    MOELAB_ASSERT(n <= E, "a token has more slots than there are experts");
    ++counts.slots_per_token[n];
  }
}

RoutingStats routing_stats(const RoutingCounts& counts) {
  const int64_t E = static_cast<int64_t>(counts.expert_slots.size());
  RoutingStats stats;
  stats.expert_fraction.assign(E, 0.0);
  stats.experts_per_token.assign(counts.slots_per_token.size(), 0.0);
  int64_t slots = 0, max_load = 0;
  for (int64_t c : counts.expert_slots) slots += c, max_load = std::max(max_load, c);
  if (counts.n_tokens == 0 || slots == 0) return stats;

  const double n = static_cast<double>(counts.n_tokens);
  for (int64_t e = 0; e < E; ++e) stats.expert_fraction[e] = counts.expert_slots[e] / n;
  for (size_t j = 0; j < counts.slots_per_token.size(); ++j) stats.experts_per_token[j] = counts.slots_per_token[j] / n;
  const double mean = static_cast<double>(slots) / static_cast<double>(E);
  double var = 0;
  for (int64_t c : counts.expert_slots) var += (c - mean) * (c - mean);
  var /= static_cast<double>(E);
  stats.load_max_over_mean = static_cast<double>(max_load) / mean;
  stats.load_cv = std::sqrt(var) / mean;
  stats.mean_experts_per_token = static_cast<double>(slots) / n;
  return stats;
}

template <typename T>
RoutingStats routing_stats(const DispatchPlan<T>& plan) {
  RoutingCounts counts;
  accumulate_routing_counts(counts, plan);
  return routing_stats(counts);
}

template void accumulate_routing_counts<float>(RoutingCounts&, const DispatchPlan<float>&);
template void accumulate_routing_counts<double>(RoutingCounts&, const DispatchPlan<double>&);
template RoutingStats routing_stats<float>(const DispatchPlan<float>&);
template RoutingStats routing_stats<double>(const DispatchPlan<double>&);

}  // namespace moelab::routing
