#include "routing/entropy_loss.h"

#include <algorithm>
#include <cmath>

#include "core/ordered_sum.h"

namespace moelab::routing {
namespace {

// Below this many probabilities the OpenMP fork costs more than the logarithms.
constexpr int64_t kParallelElements = 1 << 14;

}  // namespace

template <typename T>
double entropy_loss_forward(const T* probs /*[N,E]*/, int64_t N, int64_t E) {
  if (N == 0) return 0.0;
  const double sum = ordered_sum(N, N * E >= kParallelElements, [&](int64_t t) {
    const T* pr = probs + t * E;
    double h = 0;
    for (int64_t e = 0; e < E; ++e) {
      const double v = static_cast<double>(pr[e]);
      if (v > 0) h -= v * std::log(v);  // 0 log 0 = 0
    }
    return h;
  });
  return sum / static_cast<double>(N);
}

template <typename T>
void entropy_loss_backward(T* d_probs /*[N,E] added to*/, double coef, const T* probs /*[N,E]*/, int64_t N, int64_t E) {
  if (N == 0) return;
  // In T: the logarithm is the cost here, and the float one is accurate to what a float gradient holds.
  const T scale = static_cast<T>(-coef / static_cast<double>(N));
  const T floor = static_cast<T>(kEntropyLogFloor);
#pragma omp parallel for schedule(static) if (N * E >= kParallelElements)
  for (int64_t i = 0; i < N * E; ++i) d_probs[i] += scale * (std::log(std::max(probs[i], floor)) + T(1));
}

template double entropy_loss_forward<float>(const float*, int64_t, int64_t);
template double entropy_loss_forward<double>(const double*, int64_t, int64_t);
template void entropy_loss_backward<float>(float*, double, const float*, int64_t, int64_t);
template void entropy_loss_backward<double>(double*, double, const double*, int64_t, int64_t);

}  // namespace moelab::routing
