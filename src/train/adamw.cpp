#include "train/adamw.h"

#include <cmath>

namespace moelab {

template <typename T>
void adamw_step(T* params, const T* grads, T* m, T* v, int64_t n, const AdamWHyper& h) {
  const T lr = static_cast<T>(h.lr);
  const T decay = static_cast<T>(1.0 - h.lr * h.weight_decay);
  const T b1 = static_cast<T>(h.beta1), b2 = static_cast<T>(h.beta2);
  const T c1 = static_cast<T>(1.0 / (1.0 - std::pow(h.beta1, static_cast<double>(h.t))));
  const T c2 = static_cast<T>(1.0 / (1.0 - std::pow(h.beta2, static_cast<double>(h.t))));
  const T eps = static_cast<T>(h.eps), scale = static_cast<T>(h.grad_scale);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T g = grads[i] * scale;
    m[i] = b1 * m[i] + (T(1) - b1) * g;
    v[i] = b2 * v[i] + (T(1) - b2) * g * g;
    params[i] = params[i] * decay - lr * (m[i] * c1) / (std::sqrt(v[i] * c2) + eps);
  }
}

template void adamw_step<float>(float*, const float*, float*, float*, int64_t, const AdamWHyper&);
template void adamw_step<double>(double*, const double*, double*, double*, int64_t, const AdamWHyper&);

}  // namespace moelab
