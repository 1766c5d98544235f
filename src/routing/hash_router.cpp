#include "routing/hash_router.h"

#include "core/error.h"
#include "core/rng.h"

namespace moelab::routing {

template <typename T>
void hash_route(DispatchPlan<T>& plan, const int32_t* token_ids, int64_t N, int64_t E, int64_t k, uint64_t seed) {
  MOELAB_ASSERT(k >= 1 && k <= E, "hash routing needs 1 <= k <= E");
  plan.n_tokens = N, plan.n_experts = E;
  plan.token_offsets.resize(N + 1);
  plan.slot_expert.resize(N * k);
  plan.slot_weight.assign(N * k, T(1) / T(k));
  for (int64_t t = 0; t < N; ++t) {
    plan.token_offsets[t] = static_cast<int32_t>(t * k);
    int32_t* chosen = plan.slot_expert.data() + t * k;
    int64_t n = 0;
    for (uint64_t draw = 0; n < k; ++draw) {
      const uint64_t key = splitmix64(static_cast<uint64_t>(token_ids[t]) * 0x10001ull + draw);
      const auto e = static_cast<int32_t>(splitmix64(seed ^ key) % static_cast<uint64_t>(E));
      bool seen = false;
      for (int64_t j = 0; j < n; ++j) seen |= chosen[j] == e;
      if (!seen) chosen[n++] = e;
    }
  }
  plan.token_offsets[N] = static_cast<int32_t>(N * k);
  build_expert_groups(plan);
}

template void hash_route<float>(DispatchPlan<float>&, const int32_t*, int64_t, int64_t, int64_t, uint64_t);
template void hash_route<double>(DispatchPlan<double>&, const int32_t*, int64_t, int64_t, int64_t, uint64_t);

}  // namespace moelab::routing
