#include "train/adamw.h"

#include <cmath>

#include "backend/cpu/bf16.h"

namespace moelab {

namespace {

// The loop, compiled once per combination of the optional writes so that each vectorises without a test inside.
template <bool kRound, bool kZero, typename T>
void adamw_pass(T* params, T* grads, T* m, T* v, uint16_t* bf16, int64_t n, const AdamWHyper& h) {
  const T lr = static_cast<T>(h.lr);
  const T decay = static_cast<T>(1.0 - h.lr * h.weight_decay);
  const T b1 = static_cast<T>(h.beta1), b2 = static_cast<T>(h.beta2);
  const T c1 = static_cast<T>(1.0 / (1.0 - std::pow(h.beta1, static_cast<double>(h.t))));
  const T c2 = static_cast<T>(1.0 / (1.0 - std::pow(h.beta2, static_cast<double>(h.t))));
  const T eps = static_cast<T>(h.eps), scale = static_cast<T>(h.grad_scale);
#pragma omp parallel for simd simdlen(16) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T g = grads[i] * scale;
    m[i] = b1 * m[i] + (T(1) - b1) * g;
    v[i] = b2 * v[i] + (T(1) - b2) * g * g;
    const T p = params[i] * decay - lr * (m[i] * c1) / (std::sqrt(v[i] * c2) + eps);
    params[i] = p;
    if constexpr (kRound) bf16[i] = cpu::to_bf16(static_cast<float>(p));
    if constexpr (kZero) grads[i] = T(0);
  }
}

}  // namespace

template <typename T>
void adamw_step(T* params, T* grads, T* m, T* v, int64_t n, const AdamWHyper& h, const AdamWAlso& also) {
  uint16_t* bf16 = also.params_bf16;
  if (bf16 && also.zero_grads) adamw_pass<true, true>(params, grads, m, v, bf16, n, h);
  else if (bf16) adamw_pass<true, false>(params, grads, m, v, bf16, n, h);
  else if (also.zero_grads) adamw_pass<false, true>(params, grads, m, v, bf16, n, h);
  else adamw_pass<false, false>(params, grads, m, v, bf16, n, h);
}

template void adamw_step<float>(float*, float*, float*, float*, int64_t, const AdamWHyper&, const AdamWAlso&);
template void adamw_step<double>(double*, double*, double*, double*, int64_t, const AdamWHyper&, const AdamWAlso&);

}  // namespace moelab
