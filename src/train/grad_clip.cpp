#include "train/grad_clip.h"

#include <cmath>

#include "core/ordered_sum.h"

namespace moelab {

double global_grad_norm(const float* grads, int64_t n) { return std::sqrt(sum_of_squares(grads, n)); }

float clip_factor(double norm, double max_norm) {
  return max_norm > 0 && norm > max_norm ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f;
}

double clip_grad_norm(float* grads, int64_t n, double max_norm) {
  const double norm = global_grad_norm(grads, n);
  const float factor = clip_factor(norm, max_norm);
  if (factor != 1.0f) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) grads[i] *= factor;
  }
  return norm;
}

}  // namespace moelab
