// The top-k selection rule: every token keeps the k experts with the largest router probabilities.
//   forward:  plan with k slots per token, in descending probability (ties: lower expert index first). Weight =
//             the probability (Switch, DeepSeekMoE), or the probability divided by the sum of the k kept ones when
//             renormalize (Mixtral).
//   backward: d_probs (assigned) given d_slot_weight from combine. The selection itself is piecewise constant, so
//             unselected experts get 0; with renormalize, w_j = p_j / P over the kept set K with P = sum_K p gives
//             d p_i = (g_i - sum_K g_j w_j) / P for i in K.
// The backward reads the kept set from the plan's slots, so it stays correct for any plan whose weights were
// formed this way from the slots it holds.
#pragma once

#include <cstdint>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

template <typename T>
void top_k_forward(DispatchPlan<T>& plan, const T* probs /*[N,E]*/, int64_t N, int64_t E, int64_t k, bool renormalize);

template <typename T>
void top_k_backward(T* d_probs /*[N,E] assigned*/, const T* d_slot_weight /*[S]*/, const T* probs /*[N,E]*/,
                    const DispatchPlan<T>& plan, bool renormalize);

}  // namespace moelab::routing
