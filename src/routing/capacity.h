// Expert capacity (docs/routing.md, 'Capacity'): with capacity_factor cf > 0 each expert takes at most
// C = ceil(cf * N * k / E) token slots per batch of N tokens, k slots per token of the selection rule. A rule first
// builds its plan as if dropless; apply_capacity then removes the overflow.
//
// Dropping: an expert with more than C slots keeps its C slots of highest router probability probs[t, e] (ties: the
// lower token index is kept) and loses the rest. A dropped slot disappears from the plan: combine adds nothing for
// it, so a token that lost every slot leaves the MoE layer with output 0 and the residual stream carries it on.
// Kept slots keep their weights unchanged, and their order within the token.
//
// Gradients. The drop decision is piecewise constant in probs, like the selection itself, so the selection
// rule's backward over the reduced plan is the gradient of the dropped forward when each kept weight depends only
// on the slots still in the plan: top_k with renormalize = false, top_p (raw probabilities), expert choice.
// top_k with renormalize = true is refused together with capacity (the config must reject it): its weights
// p_j / sum_{K} p were normalised over the k experts chosen before the drop, so the true gradient has the dropped
// expert's probability in the denominator and sends -sum_kept(g_j w_j) / sum_K p to that expert, while
// top_k_backward recomputes the denominator from the slots it finds and sends nothing to the dropped expert. For a
// token that lost a slot it is therefore wrong (tests/routing/test_capacity.cpp shows the mismatch).
#pragma once

#include <cstdint>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

// C = ceil(cf * N * slots_per_token / E) for cf > 0. A product that is an integer up to rounding (1.25 * 8 * 2 / 4
// = 5 computed as 5.000000000000001) counts as that integer, so C does not jump by one on representation error.
int64_t expert_capacity(double capacity_factor, int64_t n_tokens, double slots_per_token, int64_t n_experts);

// Removes overflow slots from plan in place (rebuilding its groups); returns the number of slots dropped.
// capacity >= 0. No allocation: the selection reorders plan.row_slot, which the rebuild overwrites anyway.
template <typename T>
int64_t apply_capacity(DispatchPlan<T>& plan, const T* probs /*[N,E]*/, int64_t capacity);

}  // namespace moelab::routing
