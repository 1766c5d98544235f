// Dispatch: gathers token rows into the expert-grouped order of a dispatch plan, so that each expert reads one
// contiguous block of rows [expert_offsets[e], expert_offsets[e+1]).
//   forward:  x_grouped[r] = x[row_token[r]]
//   backward: d_x[t] = sum over t's slots s of d_x_grouped[slot_row[s]], summed in slot order (assigned; 0 for a token
//             with no slot). Parallel over tokens, so no two threads write one row: deterministic without atomics.
#pragma once

#include <cstdint>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

template <typename T>
void dispatch_forward(T* x_grouped /*[S,C]*/, const T* x /*[N,C]*/, const DispatchPlan<T>& plan, int64_t C);

template <typename T>
void dispatch_backward(T* d_x /*[N,C] assigned*/, const T* d_x_grouped /*[S,C]*/, const DispatchPlan<T>& plan,
                       int64_t C);

}  // namespace moelab::routing
