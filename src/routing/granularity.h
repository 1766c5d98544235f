// Routing granularity (routing.granularity; docs/routing.md, 'Granularity'): what the router looks at. The router
// and the selection rule run on POOLED rows of the router input; dispatch and combine stay per token.
//   token:    each token is routed on its own row (no pooling).
//   sequence: the B sequences of L tokens are pooled to their means pooled[B,d]; the router and the selection rule
//             run on those B rows, and expand_sequence_plan copies row b's slots to every token of sequence b. The
//             decision sees the whole sequence, the future included: for a causal LM it leaks at most
//             log2 C(E,k) bits per layer per sequence into earlier tokens.
//   prefix:   token t is routed on the running mean of tokens 0..t of its sequence: causal, one pooled row per
//             token, so the plan needs no expansion.
//
// Gradient rule exception: the pooling backwards ADD into d_x instead of assigning it, because the same x also
// feeds the experts (dispatch_backward assigns that part first).
//
// Rows are [B*L, d] with sequence b owning rows [b*L, (b+1)*L). Sums run in increasing token order whatever the
// thread count, so results are deterministic.
#pragma once

#include <cstdint>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

// pooled[b] = mean over t < L of x[b*L + t].
template <typename T>
void sequence_mean_forward(T* pooled /*[B,d]*/, const T* x /*[B*L,d]*/, int64_t B, int64_t L, int64_t d);

// d_x[b*L + t] += d_pooled[b] / L.
template <typename T>
void sequence_mean_backward(T* d_x /*[B*L,d] added to*/, const T* d_pooled /*[B,d]*/, int64_t B, int64_t L, int64_t d);

// pooled[b*L + t] = mean over s <= t of x[b*L + s].
template <typename T>
void prefix_mean_forward(T* pooled /*[B*L,d]*/, const T* x /*[B*L,d]*/, int64_t B, int64_t L, int64_t d);

// d_x[b*L + s] += sum over t >= s of d_pooled[b*L + t] / (t + 1).
template <typename T>
void prefix_mean_backward(T* d_x /*[B*L,d] added to*/, const T* d_pooled /*[B*L,d]*/, int64_t B, int64_t L, int64_t d);

// Sequence plan (one row per sequence, n_tokens = B) -> token plan (n_tokens = B*L): every token of sequence b gets
// the slots (experts and weights) of row b, in the same order, so token b*L + t owns the slots
// [L*o_b + t*n_b, L*o_b + (t+1)*n_b) with o_b, n_b the offset and slot count of row b. The expert groups are
// rebuilt. token_plan's vectors are resized, never shrunk.
template <typename T>
void expand_sequence_plan(DispatchPlan<T>& token_plan, const DispatchPlan<T>& seq_plan, int64_t L);

// d_seq_slot_weight[j] = sum over the L tokens of j's sequence of the matching token slot's gradient (assigned).
template <typename T>
void expand_sequence_plan_backward(T* d_seq_slot_weight /*[S_seq] assigned*/, const T* d_token_slot_weight /*[S_tok]*/,
                                   const DispatchPlan<T>& seq_plan, int64_t L);

}  // namespace moelab::routing
