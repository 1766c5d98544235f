// The expert-choice selection rule (Zhou et al. 2022; docs/routing.md, 'Selection rules'): the experts choose
// tokens instead of the tokens choosing experts. Each expert takes the C token slots of the batch with the largest
// router probability for it (ties: lower token index first), C = expert_capacity(cf, N, k, E), capped at N. A token
// may get 0..E experts; every expert gets exactly min(C, N) tokens, so the load is perfectly balanced by
// construction.
//
// NOT CAUSAL: whether token t is routed to expert e depends on the probabilities of every other token of the
// batch, later positions of its own sequence included. At inference a token would be routed differently depending
// on what follows it and on which other sequences share its batch; perplexities of an expert-choice model measured
// this way see the future. Offer it for training-dynamics comparisons only, never for causal generation.
//
//   forward:  plan whose token t owns one slot per expert that chose it, in increasing expert order; weight = the
//             probability probs[t, e] (not renormalised).
//   backward: d_probs (assigned) = d_slot_weight at each chosen (t, e), 0 elsewhere: the choice is piecewise
//             constant in probs, the weight is the probability itself.
#pragma once

#include <cstdint>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

template <typename T>
void expert_choice_forward(DispatchPlan<T>& plan, const T* probs /*[N,E]*/, int64_t N, int64_t E, int64_t capacity);

template <typename T>
void expert_choice_backward(T* d_probs /*[N,E] assigned*/, const T* d_slot_weight /*[S]*/, const DispatchPlan<T>& plan);

}  // namespace moelab::routing
