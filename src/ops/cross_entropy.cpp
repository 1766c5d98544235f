#include "ops/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/fast_exp.h"

namespace moelab::ops {
namespace {

// Rows are independent; below this many elements the OpenMP fork costs more than it saves.
constexpr int64_t kParallelElements = 1 << 15;

template <typename T>
T row_max(const T* l /*[V]*/, int64_t V) {
  T m = l[0];
#pragma omp simd reduction(max : m)
  for (int64_t v = 0; v < V; ++v) m = l[v] > m ? l[v] : m;
  return m;
}

}  // namespace

template <typename T>
double cross_entropy_forward(T* row_loss /*[N] or null*/, const T* logits /*[N,V]*/, const int32_t* targets /*[N]*/,
                             int64_t N, int64_t V) {
  std::vector<double> losses(N);  // [N]: per-row losses in double, summed in row order below
#pragma omp parallel for schedule(static) if (N * V >= kParallelElements)
  for (int64_t n = 0; n < N; ++n) {
    const int32_t target = targets[n];
    MOELAB_ASSERT(target < V, "cross-entropy target out of range");
    if (target < 0) {
      losses[n] = 0.0;
      continue;
    }
    const T* l = logits + n * V;
    const T m = row_max(l, V);
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t v = 0; v < V; ++v) sum += exp_nonpositive(l[v] - m);
    losses[n] = static_cast<double>(m) + std::log(static_cast<double>(sum)) - static_cast<double>(l[target]);
  }
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    total += losses[n];
    if (row_loss) row_loss[n] = static_cast<T>(losses[n]);
  }
  return total;
}

template <typename T>
void cross_entropy_backward(T* d_logits /*[N,V] assigned, may alias logits*/, const T* logits /*[N,V]*/,
                            const int32_t* targets /*[N]*/, int64_t N, int64_t V, double scale) {
#pragma omp parallel for schedule(static) if (N * V >= kParallelElements)
  for (int64_t n = 0; n < N; ++n) {
    const int32_t target = targets[n];
    MOELAB_ASSERT(target < V, "cross-entropy target out of range");
    T* d = d_logits + n * V;
    if (target < 0) {
      std::fill(d, d + V, T(0));
      continue;
    }
    // Each pass reads l[v] before writing d[v] at the same index, so d may be l itself.
    const T* l = logits + n * V;
    const T m = row_max(l, V);
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t v = 0; v < V; ++v) {
      const T e = exp_nonpositive(l[v] - m);
      d[v] = e;
      sum += e;
    }
    const T factor = static_cast<T>(scale / static_cast<double>(sum));
#pragma omp simd
    for (int64_t v = 0; v < V; ++v) d[v] *= factor;
    d[target] -= static_cast<T>(scale);
  }
}

template double cross_entropy_forward<float>(float*, const float*, const int32_t*, int64_t, int64_t);
template double cross_entropy_forward<double>(double*, const double*, const int32_t*, int64_t, int64_t);
template void cross_entropy_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t, double);
template void cross_entropy_backward<double>(double*, const double*, const int32_t*, int64_t, int64_t, double);

}  // namespace moelab::ops
