// The top-k-then-softmax selection rule (GPT-OSS's router): every token keeps the k experts with the largest router
// logits (ties: lower expert index first) and weights them by a softmax over those k logits alone.
//   forward:  plan with k slots per token, in descending logit; weight_i = exp(l_i) / sum_{j in K} exp(l_j). Under
//             softmax gating this is top-k with renormalize = true on the probabilities, computed from the logits.
//   backward: d_logits (assigned) given d_slot_weight g from combine: the selection is piecewise constant, and the
//             softmax over the kept set K gives d l_i = w_i (g_i - sum_{j in K} g_j w_j) for i in K, 0 elsewhere.
//             It reaches the logits directly, not through the gating's scores.
#pragma once

#include <cstdint>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

template <typename T>
void top_k_then_softmax_forward(DispatchPlan<T>& plan, const T* logits /*[N,E]*/, int64_t N, int64_t E, int64_t k);

template <typename T>
void top_k_then_softmax_backward(T* d_logits /*[N,E] assigned*/, const T* d_slot_weight /*[S]*/,
                                 const DispatchPlan<T>& plan);

}  // namespace moelab::routing
