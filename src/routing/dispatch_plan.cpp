#include "routing/dispatch_plan.h"

#include <algorithm>

#include "core/error.h"

namespace moelab::routing {

template <typename T>
void build_expert_groups(DispatchPlan<T>& plan) {
  const int64_t N = plan.n_tokens, E = plan.n_experts, S = plan.n_slots();
  MOELAB_ASSERT(static_cast<int64_t>(plan.token_offsets.size()) == N + 1, "token_offsets must have N+1 entries");
  MOELAB_ASSERT(plan.token_offsets[0] == 0 && plan.token_offsets[N] == S, "token_offsets must span the slots");
  MOELAB_ASSERT(static_cast<int64_t>(plan.slot_weight.size()) == S, "one weight per slot");

  // Counting sort, O(S + E) and sequential: at S ~ 10^4 it costs microseconds, less than an OpenMP fork.
  plan.expert_offsets.assign(E + 1, 0);
  for (int64_t s = 0; s < S; ++s) {
    const int32_t e = plan.slot_expert[s];
    MOELAB_ASSERT(e >= 0 && e < E, "slot expert out of range");
    ++plan.expert_offsets[e + 1];
  }
  for (int64_t e = 0; e < E; ++e) plan.expert_offsets[e + 1] += plan.expert_offsets[e];

  plan.row_slot.resize(S);
  plan.slot_row.resize(S);
  plan.row_token.resize(S);
  // While filling, expert_offsets[e] serves as expert e's next free row (no scratch buffer). Slots are visited in
  // slot order, which makes the sort stable.
  std::vector<int32_t>& next = plan.expert_offsets;
  for (int64_t t = 0; t < N; ++t) {
    for (int32_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s) {
      const int32_t r = next[plan.slot_expert[s]]++;
      plan.row_slot[r] = s;
      plan.slot_row[s] = r;
      plan.row_token[r] = static_cast<int32_t>(t);
    }
  }
  // The fill advanced every start to the next expert's start: shift back by one to restore the offsets.
  for (int64_t e = E; e > 0; --e) plan.expert_offsets[e] = plan.expert_offsets[e - 1];
  plan.expert_offsets[0] = 0;
}

template void build_expert_groups<float>(DispatchPlan<float>&);
template void build_expert_groups<double>(DispatchPlan<double>&);

template <typename T>
void raw_weight_backward(T* d_probs, const T* d_slot_weight, const DispatchPlan<T>& plan) {
  const int64_t N = plan.n_tokens, E = plan.n_experts;
  const int32_t* offsets = plan.token_offsets.data();
  const int32_t* expert = plan.slot_expert.data();
#pragma omp parallel for schedule(static) if (N * E >= (1 << 14))
  for (int64_t t = 0; t < N; ++t) {
    T* dp = d_probs + t * E;
    std::fill(dp, dp + E, T(0));
    for (int32_t s = offsets[t]; s < offsets[t + 1]; ++s) dp[expert[s]] = d_slot_weight[s];  // experts distinct
  }
}

template void raw_weight_backward<float>(float*, const float*, const DispatchPlan<float>&);
template void raw_weight_backward<double>(double*, const double*, const DispatchPlan<double>&);

}  // namespace moelab::routing
