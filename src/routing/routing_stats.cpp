#include "routing/routing_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

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

template <typename T>
void accumulate_routing_counts(RoutingCounts& counts, const DispatchPlan<T>& plan, const T* probs /*[N,E]*/,
                               int64_t dropped) {
  MOELAB_ASSERT(dropped >= 0, "dropped slot count must be >= 0");
  accumulate_routing_counts(counts, plan);
  const int64_t N = plan.n_tokens, E = plan.n_experts;
  counts.slots_dropped += dropped;
  counts.prob_tokens += N;
  // Sequential in double, in token order: the sums do not depend on threads, and O(N E) with one log per
  // probability is small next to the layer that produced the probabilities.
  for (int64_t t = 0; t < N; ++t) {
    const T* p = probs + t * E;
    constexpr double kNone = -std::numeric_limits<double>::infinity();
    double sum = 0, top1 = kNone, top2 = kNone;
    for (int64_t e = 0; e < E; ++e) {
      const double v = static_cast<double>(p[e]);
      sum += v;
      if (v > top1) {
        top2 = top1, top1 = v;
      } else if (v > top2) {
        top2 = v;
      }
    }
    counts.margin_sum += top1 - (E > 1 ? top2 : 0.0);
    if (!(sum > 0)) continue;  // all-zero scores: no distribution, entropy counted as 0
    // -sum q log q with q = p / sum equals log(sum) - sum(p log p) / sum; terms with p = 0 contribute 0.
    double plogp = 0;
    for (int64_t e = 0; e < E; ++e) {
      const double v = static_cast<double>(p[e]);
      if (v > 0) plogp += v * std::log(v);
    }
    counts.entropy_sum += std::log(sum) - plogp / sum;
  }
}

RoutingStats routing_stats(const RoutingCounts& counts, int64_t baseline_k) {
  const int64_t E = static_cast<int64_t>(counts.expert_slots.size());
  RoutingStats stats;
  stats.n_tokens = counts.n_tokens;
  stats.baseline_k = std::max<int64_t>(baseline_k, 0);
  stats.expert_fraction.assign(E, 0.0);
  stats.experts_per_token.assign(counts.slots_per_token.size(), 0.0);
  int64_t slots = 0, max_load = 0;
  for (int64_t c : counts.expert_slots) slots += c, max_load = std::max(max_load, c);
  if (counts.prob_tokens > 0) {
    const double n = static_cast<double>(counts.prob_tokens);
    stats.mean_entropy = counts.entropy_sum / n;
    stats.mean_top_margin = counts.margin_sum / n;
  }
  if (slots + counts.slots_dropped > 0)
    stats.dropped_fraction =
        static_cast<double>(counts.slots_dropped) / static_cast<double>(slots + counts.slots_dropped);
  if (counts.n_tokens == 0) return stats;

  const double n = static_cast<double>(counts.n_tokens);
  for (size_t j = 0; j < counts.slots_per_token.size(); ++j) stats.experts_per_token[j] = counts.slots_per_token[j] / n;
  stats.mean_experts_per_token = static_cast<double>(slots) / n;
  stats.activated_fraction_of_all = stats.mean_experts_per_token / static_cast<double>(E);
  if (stats.baseline_k > 0)
    stats.activated_fraction_of_topk = stats.mean_experts_per_token / static_cast<double>(stats.baseline_k);
  if (slots == 0) return stats;

  for (int64_t e = 0; e < E; ++e) stats.expert_fraction[e] = counts.expert_slots[e] / n;
  const double mean = static_cast<double>(slots) / static_cast<double>(E);
  double var = 0;
  for (int64_t c : counts.expert_slots) var += (c - mean) * (c - mean);
  var /= static_cast<double>(E);
  stats.load_max_over_mean = static_cast<double>(max_load) / mean;
  stats.load_cv = std::sqrt(var) / mean;
  return stats;
}

template <typename T>
RoutingStats routing_stats(const DispatchPlan<T>& plan) {
  RoutingCounts counts;
  accumulate_routing_counts(counts, plan);
  return routing_stats(counts);
}

template <typename T>
RoutingStats routing_stats(const DispatchPlan<T>& plan, const T* probs /*[N,E]*/, int64_t dropped, int64_t baseline_k) {
  RoutingCounts counts;
  accumulate_routing_counts(counts, plan, probs, dropped);
  return routing_stats(counts, baseline_k);
}

nlohmann::json to_json(const RoutingStats& stats) {
  auto optional = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  return {{"tokens", stats.n_tokens},
          {"expert_fraction", stats.expert_fraction},
          {"load_max_over_mean", stats.load_max_over_mean},
          {"load_cv", stats.load_cv},
          {"mean_experts_per_token", stats.mean_experts_per_token},
          {"experts_per_token_hist", stats.experts_per_token},
          {"mean_entropy", optional(stats.mean_entropy)},
          {"mean_top1_top2_margin", optional(stats.mean_top_margin)},
          {"dropped_fraction", stats.dropped_fraction},
          {"active_expert_fraction", stats.activated_fraction_of_all},
          {"baseline_k", stats.baseline_k > 0 ? nlohmann::json(stats.baseline_k) : nlohmann::json(nullptr)},
          {"active_vs_topk", optional(stats.activated_fraction_of_topk)}};
}

template void accumulate_routing_counts<float>(RoutingCounts&, const DispatchPlan<float>&);
template void accumulate_routing_counts<double>(RoutingCounts&, const DispatchPlan<double>&);
template void accumulate_routing_counts<float>(RoutingCounts&, const DispatchPlan<float>&, const float*, int64_t);
template void accumulate_routing_counts<double>(RoutingCounts&, const DispatchPlan<double>&, const double*, int64_t);
template RoutingStats routing_stats<float>(const DispatchPlan<float>&);
template RoutingStats routing_stats<double>(const DispatchPlan<double>&);
template RoutingStats routing_stats<float>(const DispatchPlan<float>&, const float*, int64_t, int64_t);
template RoutingStats routing_stats<double>(const DispatchPlan<double>&, const double*, int64_t, int64_t);

}  // namespace moelab::routing
