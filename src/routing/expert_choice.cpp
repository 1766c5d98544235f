#include "routing/expert_choice.h"

#include <algorithm>

#include "core/error.h"

namespace moelab::routing {
namespace {

// Experts are independent; below this many probabilities the OpenMP fork costs more than the selection.
constexpr int64_t kParallelElements = 1 << 14;

}  // namespace

template <typename T>
void expert_choice_forward(DispatchPlan<T>& plan, const T* probs /*[N,E]*/, int64_t N, int64_t E, int64_t capacity) {
  MOELAB_ASSERT(E >= 1 && capacity >= 0, "expert choice needs E >= 1 and capacity >= 0");
  const int64_t C = std::min(capacity, N);
  MOELAB_ASSERT(E * C < (int64_t{1} << 31), "slot count must fit int32");
  const int64_t S = E * C;
  plan.n_tokens = N;
  plan.n_experts = E;

  // Phase 1, per expert: its C chosen tokens into chosen[e*C, (e+1)*C). The buffer is plan.row_token, which
  // build_expert_groups overwrites at the end, so the rule needs no scratch of its own. Selection by a heap of the
  // C best so far whose top is the worst of them: O(N log C) per expert, no extra memory. The order (probability
  // descending, then token index ascending) is total, so the chosen set is unique.
  plan.row_token.resize(S);
  int32_t* chosen = plan.row_token.data();  // [E,C]
#pragma omp parallel for schedule(static) if (N * E >= kParallelElements)
  for (int64_t e = 0; e < E; ++e) {
    if (C == 0) continue;
    auto better = [&](int32_t a, int32_t b) {
      const T pa = probs[a * E + e], pb = probs[b * E + e];
      return pa > pb || (pa == pb && a < b);
    };
    int32_t* heap = chosen + e * C;  // std heap with comparator `better`: the front is the worst kept token
    for (int64_t t = 0; t < C; ++t) heap[t] = static_cast<int32_t>(t);
    std::make_heap(heap, heap + C, better);
    for (int64_t t = C; t < N; ++t) {
      if (!better(static_cast<int32_t>(t), heap[0])) continue;
      std::pop_heap(heap, heap + C, better);
      heap[C - 1] = static_cast<int32_t>(t);
      std::push_heap(heap, heap + C, better);
    }
  }

  // Phase 2: slots in token order, each token's in increasing expert order. Counting pass, then a fill in which
  // token_offsets[t] serves as token t's next free slot (as in build_expert_groups) and is shifted back after.
  plan.token_offsets.assign(N + 1, 0);
  for (int64_t i = 0; i < S; ++i) ++plan.token_offsets[chosen[i] + 1];
  for (int64_t t = 0; t < N; ++t) plan.token_offsets[t + 1] += plan.token_offsets[t];
  plan.slot_expert.resize(S);
  plan.slot_weight.resize(S);
  for (int64_t e = 0; e < E; ++e) {
    for (int64_t i = e * C; i < (e + 1) * C; ++i) {
      const int32_t t = chosen[i];
      const int32_t s = plan.token_offsets[t]++;
      plan.slot_expert[s] = static_cast<int32_t>(e);
      plan.slot_weight[s] = probs[t * E + e];
    }
  }
  for (int64_t t = N; t > 0; --t) plan.token_offsets[t] = plan.token_offsets[t - 1];
  plan.token_offsets[0] = 0;
  build_expert_groups(plan);
}

template <typename T>
void expert_choice_backward(T* d_probs /*[N,E] assigned*/, const T* d_slot_weight /*[S]*/,
                            const DispatchPlan<T>& plan) {
  raw_weight_backward(d_probs, d_slot_weight, plan);  // weights are the raw probabilities
}

template void expert_choice_forward<float>(DispatchPlan<float>&, const float*, int64_t, int64_t, int64_t);
template void expert_choice_forward<double>(DispatchPlan<double>&, const double*, int64_t, int64_t, int64_t);
template void expert_choice_backward<float>(float*, const float*, const DispatchPlan<float>&);
template void expert_choice_backward<double>(double*, const double*, const DispatchPlan<double>&);

}  // namespace moelab::routing
