// The Switch / GShard load-balance loss (docs/routing.md, 'Auxiliary losses'):  L = E * sum_i f_i * P_i, where
//   P_i = mean over tokens of probs[t,i]                       (differentiable: the gradient flows into the router)
//   f_i = (slots routed to expert i) / (N * f_divisor)         (a count from the plan: no gradient)
// f_divisor is k under top-k (so sum f = 1 and a perfectly balanced router scores 1), and 1 under top-p, where
// paper 2 does not divide (sum f can exceed 1), and under expert choice (SelectionRuleInfo::load_balance_divisor).
//   backward: d L / d probs[t,i] = E * f_i / N for every token, scaled by coef and ADDED into d_probs, after the
//             selection rule's backward assigned it (the exception to "activation gradients are assigned").
#pragma once

#include <cstdint>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

template <typename T>
double load_balance_forward(const T* probs /*[N,E]*/, const DispatchPlan<T>& plan, double f_divisor);

template <typename T>
void load_balance_backward(T* d_probs /*[N,E] added to*/, double coef, const DispatchPlan<T>& plan, double f_divisor);

}  // namespace moelab::routing
