#include "routing/granularity.h"

#include <algorithm>

#include "core/error.h"

namespace moelab::routing {
namespace {

// Below this many elements an OpenMP fork costs more than the pass over the rows.
constexpr int64_t kParallelElements = 1 << 15;
// The sums over tokens walk a sequence in token order one column block at a time, carrying the running sum in a
// local array: no scratch buffer, and the (sequence, block) pairs are independent work items even when B is small.
constexpr int64_t kBlock = 64;

int64_t n_blocks(int64_t d) { return (d + kBlock - 1) / kBlock; }

}  // namespace

template <typename T>
void sequence_mean_forward(T* pooled /*[B,d]*/, const T* x /*[B*L,d]*/, int64_t B, int64_t L, int64_t d) {
  MOELAB_ASSERT(L >= 1, "a sequence needs at least one token");
  const int64_t nb = n_blocks(d);
  const T inv = T(1) / static_cast<T>(L);
#pragma omp parallel for schedule(static) if (B * L * d >= kParallelElements)
  for (int64_t item = 0; item < B * nb; ++item) {
    const int64_t b = item / nb, c0 = (item % nb) * kBlock, w = std::min(kBlock, d - c0);
    T acc[kBlock] = {};
    for (int64_t t = 0; t < L; ++t) {
      const T* row = x + (b * L + t) * d + c0;  // [w]
#pragma omp simd
      for (int64_t c = 0; c < w; ++c) acc[c] += row[c];
    }
    T* out = pooled + b * d + c0;  // [w]
    for (int64_t c = 0; c < w; ++c) out[c] = acc[c] * inv;
  }
}

template <typename T>
void sequence_mean_backward(T* d_x /*[B*L,d] added to*/, const T* d_pooled /*[B,d]*/, int64_t B, int64_t L, int64_t d) {
  MOELAB_ASSERT(L >= 1, "a sequence needs at least one token");
  const T inv = T(1) / static_cast<T>(L);
#pragma omp parallel for schedule(static) if (B * L * d >= kParallelElements)
  for (int64_t i = 0; i < B * L; ++i) {
    T* out = d_x + i * d;                 // [d]
    const T* g = d_pooled + (i / L) * d;  // [d]
#pragma omp simd
    for (int64_t c = 0; c < d; ++c) out[c] += g[c] * inv;
  }
}

template <typename T>
void prefix_mean_forward(T* pooled /*[B*L,d]*/, const T* x /*[B*L,d]*/, int64_t B, int64_t L, int64_t d) {
  const int64_t nb = n_blocks(d);
#pragma omp parallel for schedule(static) if (B * L * d >= kParallelElements)
  for (int64_t item = 0; item < B * nb; ++item) {
    const int64_t b = item / nb, c0 = (item % nb) * kBlock, w = std::min(kBlock, d - c0);
    T acc[kBlock] = {};
    for (int64_t t = 0; t < L; ++t) {
      const int64_t at = (b * L + t) * d + c0;
      const T* row = x + at;  // [w]
      T* out = pooled + at;   // [w]
      const T inv = T(1) / static_cast<T>(t + 1);
#pragma omp simd
      for (int64_t c = 0; c < w; ++c) {
        acc[c] += row[c];
        out[c] = acc[c] * inv;
      }
    }
  }
}

template <typename T>
void prefix_mean_backward(T* d_x /*[B*L,d] added to*/, const T* d_pooled /*[B*L,d]*/, int64_t B, int64_t L, int64_t d) {
  const int64_t nb = n_blocks(d);
#pragma omp parallel for schedule(static) if (B * L * d >= kParallelElements)
  for (int64_t item = 0; item < B * nb; ++item) {
    const int64_t b = item / nb, c0 = (item % nb) * kBlock, w = std::min(kBlock, d - c0);
    // x[s] enters every pooled row t >= s with weight 1/(t+1): a suffix sum, walked from the last token back.
    T acc[kBlock] = {};
    for (int64_t t = L - 1; t >= 0; --t) {
      const int64_t at = (b * L + t) * d + c0;
      const T* g = d_pooled + at;  // [w]
      T* out = d_x + at;           // [w]
      const T inv = T(1) / static_cast<T>(t + 1);
#pragma omp simd
      for (int64_t c = 0; c < w; ++c) {
        acc[c] += g[c] * inv;
        out[c] += acc[c];
      }
    }
  }
}

template <typename T>
void expand_sequence_plan(DispatchPlan<T>& token_plan, const DispatchPlan<T>& seq_plan, int64_t L) {
  const int64_t B = seq_plan.n_tokens, S = seq_plan.n_slots();
  MOELAB_ASSERT(L >= 1, "a sequence needs at least one token");
  MOELAB_ASSERT(S * L < (int64_t{1} << 31), "slot count must fit int32");
  token_plan.n_tokens = B * L;
  token_plan.n_experts = seq_plan.n_experts;
  token_plan.token_offsets.resize(B * L + 1);
  token_plan.slot_expert.resize(S * L);
  token_plan.slot_weight.resize(S * L);
  // Sequential: B*L*k copies of a few bytes cost less than an OpenMP fork; build_expert_groups is sequential anyway.
  for (int64_t b = 0; b < B; ++b) {
    const int64_t o = seq_plan.token_offsets[b], n = seq_plan.token_offsets[b + 1] - o;
    for (int64_t t = 0; t < L; ++t) {
      const int64_t dst = L * o + t * n;
      token_plan.token_offsets[b * L + t] = static_cast<int32_t>(dst);
      std::copy_n(seq_plan.slot_expert.begin() + o, n, token_plan.slot_expert.begin() + dst);
      std::copy_n(seq_plan.slot_weight.begin() + o, n, token_plan.slot_weight.begin() + dst);
    }
  }
  token_plan.token_offsets[B * L] = static_cast<int32_t>(S * L);
  build_expert_groups(token_plan);
}

template <typename T>
void expand_sequence_plan_backward(T* d_seq_slot_weight /*[S_seq] assigned*/, const T* d_token_slot_weight /*[S_tok]*/,
                                   const DispatchPlan<T>& seq_plan, int64_t L) {
  const int64_t B = seq_plan.n_tokens;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t o = seq_plan.token_offsets[b], n = seq_plan.token_offsets[b + 1] - o;
    const T* g = d_token_slot_weight + L * o;  // [L,n] the sequence's token slots, token-major
    for (int64_t j = 0; j < n; ++j) {
      T sum = 0;
      for (int64_t t = 0; t < L; ++t) sum += g[t * n + j];
      d_seq_slot_weight[o + j] = sum;
    }
  }
}

template void sequence_mean_forward<float>(float*, const float*, int64_t, int64_t, int64_t);
template void sequence_mean_forward<double>(double*, const double*, int64_t, int64_t, int64_t);
template void sequence_mean_backward<float>(float*, const float*, int64_t, int64_t, int64_t);
template void sequence_mean_backward<double>(double*, const double*, int64_t, int64_t, int64_t);
template void prefix_mean_forward<float>(float*, const float*, int64_t, int64_t, int64_t);
template void prefix_mean_forward<double>(double*, const double*, int64_t, int64_t, int64_t);
template void prefix_mean_backward<float>(float*, const float*, int64_t, int64_t, int64_t);
template void prefix_mean_backward<double>(double*, const double*, int64_t, int64_t, int64_t);
template void expand_sequence_plan<float>(DispatchPlan<float>&, const DispatchPlan<float>&, int64_t);
template void expand_sequence_plan<double>(DispatchPlan<double>&, const DispatchPlan<double>&, int64_t);
template void expand_sequence_plan_backward<float>(float*, const float*, const DispatchPlan<float>&, int64_t);
template void expand_sequence_plan_backward<double>(double*, const double*, const DispatchPlan<double>&, int64_t);

}  // namespace moelab::routing
