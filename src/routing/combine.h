// Combine: the weighted sum of a token's expert outputs, read back from the expert-grouped order of a dispatch plan.
//   forward:  out[t] = sum over t's slots s of slot_weight[s] * y_grouped[slot_row[s]]   (assigned; 0 for a token
//             with no slot, whose MoE output is then nothing and the residual stream carries it on)
//   backward: d_y_grouped[slot_row[s]] = slot_weight[s] * d_out[t]            (assigned)
//             d_slot_weight[s]         = <d_out[t], y_grouped[slot_row[s]]>   (assigned; the selection rule's
//                                                                               backward takes it to the router)
// Parallel over tokens: every output row belongs to one token, so the result does not depend on the thread count.
#pragma once

#include <cstdint>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

template <typename T>
void combine_forward(T* out /*[N,C]*/, const T* y_grouped /*[S,C]*/, const DispatchPlan<T>& plan, int64_t C);

template <typename T>
void combine_backward(T* d_y_grouped /*[S,C] assigned*/, T* d_slot_weight /*[S] assigned*/, const T* d_out /*[N,C]*/,
                      const T* y_grouped /*[S,C]*/, const DispatchPlan<T>& plan, int64_t C);

}  // namespace moelab::routing
