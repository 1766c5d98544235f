#include "model/swiglu_mlp.h"

#include <algorithm>
#include <type_traits>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_bf16.h"
#include "core/error.h"
#include "core/op_profile.h"
#include "ops/linear.h"
#include "ops/swiglu.h"

namespace moelab {

template <typename T>
void swiglu_mlp_forward(const cpu::ComputeContext& ctx, T* out, T* g, T* u, T* act, const T* x,
                        const SwigluMlpWeights<T>& w, int64_t n, int64_t d, int64_t h, uint16_t* act_bf16) {
  if (n == 0) return;
  const cpu::Bf16ReuseRegion reuse(ctx);  // bf16: x is converted once for gate and up; nothing read changes below
  const cpu::ComputeContext& c = reuse.context();
  {
    profile::Scope p("fwd ffn.gate_up_proj", 4.0 * n * d * h);
    ops::linear_forward(c, g, x, w.gate, n, d, h);
    ops::linear_forward(c, u, x, w.up, n, d, h);
  }
  {
    profile::Scope p("fwd ffn.swiglu", 0);
    ops::swiglu_forward(act, g, u, n * h);
  }
  profile::Scope p("fwd ffn.down_proj", 2.0 * n * h * d);
  if constexpr (std::is_same_v<T, float>) {
    if (act_bf16) {  // rounded here, as the GEMM would round it, into rows that backward can keep
      cpu::to_bf16(act, n * h, act_bf16);
      std::fill(act_bf16 + n * h, act_bf16 + cpu::bf16_padded_rows(n) * h, uint16_t{0});
      return ops::linear_forward(c, out, cpu::Bf16Rows{act_bf16, n, h}, w.down, d);
    }
  }
  MOELAB_ASSERT(!act_bf16, "a bf16 activation is kept for float models only");
  ops::linear_forward(c, out, act, w.down, n, h, d);
}

template <typename T>
void swiglu_mlp_backward(const cpu::ComputeContext& ctx, T* d_x, const SwigluMlpGrads<T>& grads,
                         const SwigluBackwardScratch<T>& scratch, const T* d_out, const SwigluSaved<T>& saved,
                         const SwigluMlpWeights<T>& w, SwigluShape shape, const SwigluGradStaging<T>& staging) {
  const int64_t n = shape.n, d = shape.d, h = shape.h;
  T *d_act = scratch.d_act, *d_g = scratch.d_g, *d_u = scratch.d_u;
  const T *x = saved.x, *g = saved.g, *u = saved.u, *act = saved.act;
  const uint16_t* act_bf16 = saved.act_bf16;
  MOELAB_ASSERT(!act_bf16 || (std::is_same_v<T, float> && staging.rows),
                "a bf16 activation is kept for float models only, whose bf16 weight gradients are staged");
  if constexpr (std::is_same_v<T, float>) {
    if (n == 0 && staging.tally && staging.grads_zero) {  // no rows: the gradients stay zero, which sums to 0
      for (const T* grad : {grads.gate, grads.up, grads.down})
        if (grad) staging.tally->record(grad, d * h, 0.0);
    }
  }
  if (n == 0) return;
  // bf16: d_out, d_g, d_u and x are each converted once for their two GEMMs. d_g and d_u are written below, but
  // before any GEMM reads them.
  const cpu::Bf16ReuseRegion reuse(ctx);
  const cpu::ComputeContext& c = reuse.context();
  // d_W [O,I] += d_y [n,O]^T · in [n,I], by the GEMM or staged; `in` given in bf16 (in_bf16) or f32.
  const auto weight_grad = [&](T* d_weight, const T* d_y, const T* in, int64_t in_features, int64_t out_features,
                               const uint16_t* in_bf16 = nullptr) {
    if (!d_weight) return;
    if (!staging.rows)
      return ops::linear_backward<T>(c, nullptr, d_weight, d_y, in, nullptr, n, in_features, out_features);
    double squares = 0;
    double* result_squares = staging.tally ? &squares : nullptr;
    if constexpr (std::is_same_v<T, float>) {
      if (in_bf16)
        ops::linear_weight_grad_staged(c, d_weight, staging.rows, d_y, cpu::Bf16Rows{in_bf16, n, in_features},
                                       out_features, staging.grads_zero, result_squares);
      else
        ops::linear_weight_grad_staged(c, d_weight, staging.rows, d_y, in, n, in_features, out_features,
                                       staging.grads_zero, result_squares);
      if (staging.tally) staging.tally->record(d_weight, in_features * out_features, squares);
    } else {
      ops::linear_weight_grad_staged(c, d_weight, staging.rows, d_y, in, n, in_features, out_features,
                                     staging.grads_zero, result_squares);
    }
  };
  {
    profile::Scope p("bwd ffn.down_proj", 4.0 * n * h * d);
    ops::linear_backward<T>(c, d_act, nullptr, d_out, act, w.down, n, h, d);
    weight_grad(grads.down, d_out, act, h, d, act_bf16);
  }
  {
    profile::Scope p("bwd ffn.swiglu", 0);
    ops::swiglu_backward(d_g, d_u, d_act, g, u, n * h);
  }
  profile::Scope p("bwd ffn.gate_up_proj", 8.0 * n * d * h);
  // Each of d_g and d_u is read by its two GEMMs one after the other, while it is in cache.
  ops::linear_backward<T>(c, d_x, nullptr, d_g, x, w.gate, n, d, h);
  weight_grad(grads.gate, d_g, x, d, h);
  // d_x += d_u · up: the second branch adds to the first (linear_backward assigns, so call the GEMM with beta 1).
  cpu::gemm(c, cpu::Trans::N, cpu::Trans::N, n, d, h, T(1), d_u, h, w.up, d, T(1), d_x, d);
  weight_grad(grads.up, d_u, x, d, h);
}

template void swiglu_mlp_forward<float>(const cpu::ComputeContext&, float*, float*, float*, float*, const float*,
                                        const SwigluMlpWeights<float>&, int64_t, int64_t, int64_t, uint16_t*);
template void swiglu_mlp_forward<double>(const cpu::ComputeContext&, double*, double*, double*, double*, const double*,
                                         const SwigluMlpWeights<double>&, int64_t, int64_t, int64_t, uint16_t*);
template void swiglu_mlp_backward<float>(const cpu::ComputeContext&, float*, const SwigluMlpGrads<float>&,
                                         const SwigluBackwardScratch<float>&, const float*, const SwigluSaved<float>&,
                                         const SwigluMlpWeights<float>&, SwigluShape, const SwigluGradStaging<float>&);
template void swiglu_mlp_backward<double>(const cpu::ComputeContext&, double*, const SwigluMlpGrads<double>&,
                                          const SwigluBackwardScratch<double>&, const double*,
                                          const SwigluSaved<double>&, const SwigluMlpWeights<double>&, SwigluShape,
                                          const SwigluGradStaging<double>&);

}  // namespace moelab
