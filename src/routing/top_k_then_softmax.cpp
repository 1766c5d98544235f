#include "routing/top_k_then_softmax.h"

#include <algorithm>
#include <cmath>

#include "routing/top_k.h"

namespace moelab::routing {
namespace {

// Tokens are independent; below this many logits the OpenMP fork costs more than the work.
constexpr int64_t kParallelElements = 1 << 14;

}  // namespace

template <typename T>
void top_k_then_softmax_forward(DispatchPlan<T>& plan, const T* logits, int64_t N, int64_t E, int64_t k) {
  // top-k on the logits keeps them as the weights, in descending order: the first is each token's largest.
  top_k_forward(plan, logits, N, E, k, /*renormalize=*/false);
  T* weight = plan.slot_weight.data();
#pragma omp parallel for schedule(static) if (N * E >= kParallelElements)
  for (int64_t t = 0; t < N; ++t) {
    T* w = weight + t * k;  // [k] kept logits -> their softmax
    const T top = w[0];
    T sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += w[j] = std::exp(w[j] - top);
    const T inv = T(1) / sum;
    for (int64_t j = 0; j < k; ++j) w[j] *= inv;
  }
}

template <typename T>
void top_k_then_softmax_backward(T* d_logits, const T* d_slot_weight, const DispatchPlan<T>& plan) {
  const int64_t N = plan.n_tokens, E = plan.n_experts;
  const int32_t* offsets = plan.token_offsets.data();
  const int32_t* expert = plan.slot_expert.data();
  const T* weight = plan.slot_weight.data();
#pragma omp parallel for schedule(static) if (N * E >= kParallelElements)
  for (int64_t t = 0; t < N; ++t) {
    T* dl = d_logits + t * E;
    std::fill(dl, dl + E, T(0));
    T gw = 0;  // sum over the kept set of g_j w_j
    for (int32_t s = offsets[t]; s < offsets[t + 1]; ++s) gw += d_slot_weight[s] * weight[s];
    for (int32_t s = offsets[t]; s < offsets[t + 1]; ++s) dl[expert[s]] = weight[s] * (d_slot_weight[s] - gw);
  }
}

template void top_k_then_softmax_forward<float>(DispatchPlan<float>&, const float*, int64_t, int64_t, int64_t);
template void top_k_then_softmax_forward<double>(DispatchPlan<double>&, const double*, int64_t, int64_t, int64_t);
template void top_k_then_softmax_backward<float>(float*, const float*, const DispatchPlan<float>&);
template void top_k_then_softmax_backward<double>(double*, const double*, const DispatchPlan<double>&);

}  // namespace moelab::routing
