#include "routing/router.h"

#include <cmath>

#include "core/error.h"
#include "ops/linear.h"
#include "ops/softmax.h"

namespace moelab::routing {

// The router's products stay f32 in a bf16 model, as Switch Transformer's "selective precision" and most MoE
// trainers since keep them: rounding its inputs to bf16 (2^-9 relative each) would move the logits and flip close
// choices of experts, for GEMMs with only E outputs that cost next to nothing in f32. Hence f32 products below.

template <typename T>
void router_forward(const cpu::ComputeContext& ctx, T* logits /*[N,E]*/, T* probs /*[N,E]*/, const T* x /*[N,d]*/,
                    const T* weight /*[E,d]*/, int64_t N, int64_t d, int64_t E, Gating gating) {
  ops::linear_forward(ctx.with_f32_products(), logits, x, weight, N, d, E);
  if (gating == Gating::Softmax) {
    ops::softmax_forward(probs, logits, N, E);
    return;
  }
  for (int64_t i = 0; i < N * E; ++i) probs[i] = T(1) / (T(1) + std::exp(-logits[i]));
}

template <typename T>
void router_backward(T* d_x, T* d_weight, T* d_logits, const RouterUpstream<T>& upstream, const RouterSaved<T>& saved,
                     const RouterDims& dims, Gating gating) {
  const T *d_probs = upstream.d_probs, *d_logits_extra = upstream.d_logits_extra;
  const T *x = saved.x, *weight = saved.weight, *probs = saved.probs;
  const int64_t N = dims.N, d = dims.d, E = dims.E;
  MOELAB_ASSERT(d_logits_extra != d_logits, "d_logits_extra must not alias the d_logits scratch");
  if (gating == Gating::Softmax) {
    ops::softmax_backward(d_logits, d_probs, probs, N, E);
  } else {  // sigmoid' = s (1 - s)
    for (int64_t i = 0; i < N * E; ++i) d_logits[i] = d_probs[i] * probs[i] * (T(1) - probs[i]);
  }
  if (d_logits_extra) {
    // N*E is small (E <= 64): one vectorised pass, not worth threads.
#pragma omp simd
    for (int64_t i = 0; i < N * E; ++i) d_logits[i] += d_logits_extra[i];
  }
  const cpu::ComputeContext f32_products;  // a backward reads no packed weights
  ops::linear_backward(f32_products, d_x, d_weight, d_logits, x, weight, N, d, E);
}

template void router_forward<float>(const cpu::ComputeContext&, float*, float*, const float*, const float*, int64_t,
                                    int64_t, int64_t, Gating);
template void router_forward<double>(const cpu::ComputeContext&, double*, double*, const double*, const double*,
                                     int64_t, int64_t, int64_t, Gating);
template void router_backward<float>(float*, float*, float*, const RouterUpstream<float>&, const RouterSaved<float>&,
                                     const RouterDims&, Gating);
template void router_backward<double>(double*, double*, double*, const RouterUpstream<double>&,
                                      const RouterSaved<double>&, const RouterDims&, Gating);

}  // namespace moelab::routing
