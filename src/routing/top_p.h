// The top-p selection rule (paper 2, as its public code does it; docs/routing.md, 'Selection rules'): sort a
// token's probabilities in descending order (ties: lower expert index first), take the cumulative sum, and keep
// every expert up to and including the first one at which the sum becomes STRICTLY greater than p. The top-1
// expert is therefore always kept, and a sum exactly equal to p keeps the next expert too. max_k > 0 caps the kept
// count (0: no cap).
//   forward:  plan with a variable number of slots per token, in descending probability. Weight = the raw
//             full-softmax probability, never renormalised over the kept set.
//   backward: d_probs (assigned): the kept experts get their slot weight gradient (the weights are the
//             probabilities), every other expert 0. The selection itself is piecewise constant.
//
// The cumulative sum is accumulated in double and compared with p in double whatever T is, so the float rule
// selects exactly what the double rule selects on the same values widened to double, and hand cases written with
// exactly representable probabilities hold in both precisions. With p = 1 every expert is kept unless the
// probabilities sum past 1 in rounding: then the expert at which the sum passes 1 is the last one kept.
#pragma once

#include <cstdint>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

// Requires 0 < p <= 1 and max_k >= 0 (the config validates both).
template <typename T>
void top_p_forward(DispatchPlan<T>& plan, const T* probs /*[N,E]*/, int64_t N, int64_t E, double p, int64_t max_k);

template <typename T>
void top_p_backward(T* d_probs /*[N,E] assigned*/, const T* d_slot_weight /*[S]*/, const DispatchPlan<T>& plan);

}  // namespace moelab::routing
