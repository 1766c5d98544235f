#include "routing/top_k.h"

#include <algorithm>

#include "core/error.h"

namespace moelab::routing {
namespace {

// Tokens are independent; below this many probabilities the OpenMP fork costs more than the selection.
constexpr int64_t kParallelElements = 1 << 14;

}  // namespace

template <typename T>
void top_k_forward(DispatchPlan<T>& plan, const T* probs /*[N,E]*/, int64_t N, int64_t E, int64_t k, bool renormalize) {
  MOELAB_ASSERT(k >= 1 && k <= E, "top-k needs 1 <= k <= n_experts");
  MOELAB_ASSERT(N * k < (int64_t{1} << 31), "slot count must fit int32");
  plan.n_tokens = N;
  plan.n_experts = E;
  plan.token_offsets.resize(N + 1);
  plan.slot_expert.resize(N * k);
  plan.slot_weight.resize(N * k);
  int32_t* offsets = plan.token_offsets.data();
  int32_t* expert = plan.slot_expert.data();
  T* weight = plan.slot_weight.data();

#pragma omp parallel for schedule(static) if (N * E >= kParallelElements)
  for (int64_t t = 0; t < N; ++t) {
    const T* p = probs + t * E;
    int32_t* ke = expert + t * k;  // kept experts, sorted by descending probability
    T* kp = weight + t * k;        // their probabilities
    offsets[t] = static_cast<int32_t>(t * k);
    // Insertion into a sorted list of length <= k: O(E k) with k small, and no allocation. Most experts fail the
    // first comparison with the current k-th, so a row costs about E compares. The strict comparison keeps an
    // earlier (lower-index) expert ahead of a later one with an equal probability. (A branch-free variant, k
    // vectorised max-sweeps per token, measured no faster for E <= 16 and at most 1.3x faster at E = 64.)
    int64_t n_kept = 0;
    for (int64_t e = 0; e < E; ++e) {
      const T v = p[e];
      if (n_kept == k && !(v > kp[k - 1])) continue;
      int64_t j = n_kept < k ? n_kept++ : k - 1;
      for (; j > 0 && v > kp[j - 1]; --j) {
        kp[j] = kp[j - 1];
        ke[j] = ke[j - 1];
      }
      kp[j] = v;
      ke[j] = static_cast<int32_t>(e);
    }
    if (renormalize) {
      T sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += kp[j];
      const T inv = T(1) / sum;
      for (int64_t j = 0; j < k; ++j) kp[j] *= inv;
    }
  }
  offsets[N] = static_cast<int32_t>(N * k);
  build_expert_groups(plan);
}

template <typename T>
void top_k_backward(T* d_probs /*[N,E] assigned*/, const T* d_slot_weight /*[S]*/, const T* probs /*[N,E]*/,
                    const DispatchPlan<T>& plan, bool renormalize) {
  const int64_t N = plan.n_tokens, E = plan.n_experts;
  const int32_t* offsets = plan.token_offsets.data();
  const int32_t* expert = plan.slot_expert.data();
  const T* weight = plan.slot_weight.data();

#pragma omp parallel for schedule(static) if (N * E >= kParallelElements)
  for (int64_t t = 0; t < N; ++t) {
    T* dp = d_probs + t * E;
    std::fill(dp, dp + E, T(0));
    const int32_t begin = offsets[t], end = offsets[t + 1];
    if (!renormalize) {
      for (int32_t s = begin; s < end; ++s) dp[expert[s]] += d_slot_weight[s];
      continue;
    }
    if (begin == end) continue;
    // The kept sum is recomputed from probs rather than inferred from the weights: exact, and k terms only.
    T kept = 0, gw = 0;
    for (int32_t s = begin; s < end; ++s) {
      kept += probs[t * E + expert[s]];
      gw += d_slot_weight[s] * weight[s];
    }
    const T inv = T(1) / kept;
    for (int32_t s = begin; s < end; ++s) dp[expert[s]] += (d_slot_weight[s] - gw) * inv;
  }
}

template void top_k_forward<float>(DispatchPlan<float>&, const float*, int64_t, int64_t, int64_t, bool);
template void top_k_forward<double>(DispatchPlan<double>&, const double*, int64_t, int64_t, int64_t, bool);
template void top_k_backward<float>(float*, const float*, const float*, const DispatchPlan<float>&, bool);
template void top_k_backward<double>(double*, const double*, const double*, const DispatchPlan<double>&, bool);

}  // namespace moelab::routing
