// Hash routing (Roller et al. 2021, "Hash Layers"): a fixed token-id -> expert table and no router at all, the
// routing baseline with nothing to learn. Token id v in a layer with seed s uses the first k distinct experts of
// the hash sequence h(s, v, 0), h(s, v, 1), ... (mod E), in that order; each slot has weight 1/k. The table is a
// pure function of (seed, token id): no storage, the same in every run and at every step.
#pragma once

#include <cstdint>

#include "routing/dispatch_plan.h"

namespace moelab::routing {

template <typename T>
void hash_route(DispatchPlan<T>& plan, const int32_t* token_ids /*[N]*/, int64_t N, int64_t E, int64_t k,
                uint64_t seed);

}  // namespace moelab::routing
