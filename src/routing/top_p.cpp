#include "routing/top_p.h"

#include <algorithm>

#include "core/error.h"

namespace moelab::routing {
namespace {

// Tokens are independent; below this many probabilities the OpenMP fork costs more than the selection.
constexpr int64_t kParallelElements = 1 << 14;

}  // namespace

template <typename T>
void top_p_forward(DispatchPlan<T>& plan, const T* probs /*[N,E]*/, int64_t N, int64_t E, double p, int64_t max_k) {
  MOELAB_ASSERT(p > 0 && p <= 1, "top-p needs 0 < p <= 1");
  MOELAB_ASSERT(max_k >= 0 && E >= 1, "top-p needs max_k >= 0 and at least one expert");
  const int64_t cap = max_k > 0 ? std::min(max_k, E) : E;
  MOELAB_ASSERT(N * cap < (int64_t{1} << 31), "slot count must fit int32");
  plan.n_tokens = N;
  plan.n_experts = E;
  plan.token_offsets.resize(N + 1);
  // Token t first writes its slots at [t * cap, t * cap + n_t); the compaction below closes the gaps. The vectors
  // shrink to S afterwards, keeping their capacity for the next call.
  plan.slot_expert.resize(N * cap);
  plan.slot_weight.resize(N * cap);
  int32_t* offsets = plan.token_offsets.data();
  int32_t* expert = plan.slot_expert.data();
  T* weight = plan.slot_weight.data();

#pragma omp parallel for schedule(static) if (N * E >= kParallelElements)
  for (int64_t t = 0; t < N; ++t) {
    const T* pr = probs + t * E;
    int32_t* ke = expert + t * cap;  // kept experts in descending probability
    T* kw = weight + t * cap;        // their probabilities
    // Each pass takes the next expert in (probability descending, index ascending) order: the largest one that
    // comes after the previously taken one in that order. E compares per kept expert, nothing allocated or marked:
    // faster than a sort for the 1-3 experts a trained router keeps at p = 0.4. With many kept (a near-uniform
    // router, E = 64, 8.7 kept) it measured 2.2x top-k's time at k = 8, a few ms per 8192 tokens, small next to
    // the experts' work.
    double cumulative = 0;
    int64_t n = 0, prev = -1;
    T prev_v = 0;
    while (n < cap) {
      int64_t best = -1;
      T best_v = 0;
      for (int64_t e = 0; e < E; ++e) {
        const T v = pr[e];
        if (prev >= 0 && !(v < prev_v || (v == prev_v && e > prev))) continue;  // taken already
        if (best < 0 || v > best_v) best = e, best_v = v;  // strict: an equal value keeps the lower index
      }
      ke[n] = static_cast<int32_t>(best);
      kw[n] = best_v;
      ++n;
      cumulative += static_cast<double>(best_v);
      if (cumulative > p) break;
      prev = best;
      prev_v = best_v;
    }
    offsets[t + 1] = static_cast<int32_t>(n);  // the count for now; the prefix sum below turns it into the end
  }

  // Prefix sum and compaction in token order. Token t's destination [offsets[t], offsets[t+1]) starts at or before
  // its source t * cap and ends at or before (t + 1) * cap, where token t+1's source begins: moving left in place
  // overwrites nothing still to be read. Sequential: S moves cost less than an OpenMP fork.
  offsets[0] = 0;
  for (int64_t t = 0; t < N; ++t) {
    const int32_t n = offsets[t + 1], dst = offsets[t];
    const int64_t src = t * cap;
    if (dst != src) {
      std::copy(expert + src, expert + src + n, expert + dst);
      std::copy(weight + src, weight + src + n, weight + dst);
    }
    offsets[t + 1] = dst + n;
  }
  plan.slot_expert.resize(offsets[N]);
  plan.slot_weight.resize(offsets[N]);
  build_expert_groups(plan);
}

template <typename T>
void top_p_backward(T* d_probs /*[N,E] assigned*/, const T* d_slot_weight /*[S]*/, const DispatchPlan<T>& plan) {
  raw_weight_backward(d_probs, d_slot_weight, plan);  // weights are the raw probabilities
}

template void top_p_forward<float>(DispatchPlan<float>&, const float*, int64_t, int64_t, double, int64_t);
template void top_p_forward<double>(DispatchPlan<double>&, const double*, int64_t, int64_t, double, int64_t);
template void top_p_backward<float>(float*, const float*, const DispatchPlan<float>&);
template void top_p_backward<double>(double*, const double*, const DispatchPlan<double>&);

}  // namespace moelab::routing
