#include "train/grad_clip.h"

#include <omp.h>

#include <cmath>
#include <vector>

namespace moelab {

double global_grad_norm(const float* grads, int64_t n) {
  // One partial per thread over a static chunk, summed in thread order: the same result every run.
  std::vector<double> partial(omp_get_max_threads(), 0.0);
#pragma omp parallel
  {
    double acc = 0.0;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(grads[i]) * grads[i];
    partial[omp_get_thread_num()] = acc;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return std::sqrt(total);
}

double clip_grad_norm(float* grads, int64_t n, double max_norm) {
  const double norm = global_grad_norm(grads, n);
  if (max_norm > 0 && norm > max_norm) {
    const float factor = static_cast<float>(max_norm / (norm + 1e-6));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) grads[i] *= factor;
  }
  return norm;
}

}  // namespace moelab
