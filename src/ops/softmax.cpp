#include "ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/fast_exp.h"

namespace moelab::ops {
namespace {

// Rows are independent; below this many elements the OpenMP fork costs more than it saves.
constexpr int64_t kParallelElements = 1 << 14;

template <typename T>
void softmax_row(T* p /*[C]*/, const T* l /*[C]*/, int64_t C) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t c = 0; c < C; ++c) m = l[c] > m ? l[c] : m;
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < C; ++c) {
    const T e = exp_nonpositive(l[c] - m);
    p[c] = e;
    sum += e;
  }
  const T inv = T(1) / sum;
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) p[c] *= inv;
}

}  // namespace

template <typename T>
void softmax_forward(T* probs /*[N,C]*/, const T* logits /*[N,C]*/, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelElements)
  for (int64_t n = 0; n < N; ++n) softmax_row(probs + n * C, logits + n * C, C);
}

template <typename T>
void softmax_backward(T* d_logits /*[N,C] assigned*/, const T* d_probs /*[N,C]*/, const T* probs /*[N,C]*/, int64_t N,
                      int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelElements)
  for (int64_t n = 0; n < N; ++n) {
    const T* dp = d_probs + n * C;
    const T* p = probs + n * C;
    T* dl = d_logits + n * C;
    T inner = 0;
#pragma omp simd reduction(+ : inner)
    for (int64_t c = 0; c < C; ++c) inner += dp[c] * p[c];
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) dl[c] = p[c] * (dp[c] - inner);
  }
}

template void softmax_forward<float>(float*, const float*, int64_t, int64_t);
template void softmax_forward<double>(double*, const double*, int64_t, int64_t);
template void softmax_backward<float>(float*, const float*, const float*, int64_t, int64_t);
template void softmax_backward<double>(double*, const double*, const double*, int64_t, int64_t);

}  // namespace moelab::ops
