#include "routing/z_loss.h"

#include <algorithm>
#include <cmath>

#include "core/ordered_sum.h"

namespace moelab::routing {
namespace {

// Below this many logits the OpenMP fork costs more than the exponentials.
constexpr int64_t kParallelElements = 1 << 14;

// logsumexp of one row, shifted by its maximum so that no exponential overflows.
template <typename T>
double logsumexp(const T* l /*[E]*/, int64_t E) {
  double m = static_cast<double>(l[0]);
  for (int64_t i = 1; i < E; ++i) m = std::max(m, static_cast<double>(l[i]));
  double sum = 0;
  for (int64_t i = 0; i < E; ++i) sum += std::exp(static_cast<double>(l[i]) - m);
  return m + std::log(sum);
}

}  // namespace

template <typename T>
double z_loss_forward(const T* logits /*[N,E]*/, int64_t N, int64_t E) {
  if (N == 0) return 0.0;
  const double sum = ordered_sum(N, N * E >= kParallelElements, [&](int64_t t) {
    const double z = logsumexp(logits + t * E, E);
    return z * z;
  });
  return sum / static_cast<double>(N);
}

template <typename T>
void z_loss_backward(T* d_logits /*[N,E] added to*/, double coef, const T* logits /*[N,E]*/, int64_t N, int64_t E) {
  if (N == 0) return;
  const double scale = 2.0 * coef / static_cast<double>(N);
#pragma omp parallel for schedule(static) if (N * E >= kParallelElements)
  for (int64_t t = 0; t < N; ++t) {
    const T* l = logits + t * E;
    T* dl = d_logits + t * E;
    const double z = logsumexp(l, E);
    const double s = scale * z;
    // softmax_i = exp(l_i - z)
    for (int64_t i = 0; i < E; ++i) dl[i] += static_cast<T>(s * std::exp(static_cast<double>(l[i]) - z));
  }
}

template double z_loss_forward<float>(const float*, int64_t, int64_t);
template double z_loss_forward<double>(const double*, int64_t, int64_t);
template void z_loss_backward<float>(float*, double, const float*, int64_t, int64_t);
template void z_loss_backward<double>(double*, double, const double*, int64_t, int64_t);

}  // namespace moelab::routing
