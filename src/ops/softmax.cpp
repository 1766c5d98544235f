#include "ops/softmax.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace moelab::ops {
namespace {

// Rows are independent; below this many elements the OpenMP fork costs more than it saves.
constexpr int64_t kParallelElements = 1 << 14;

// exp(x) for x <= 0 in float, written so that GCC vectorises the loop that calls it (std::exp does not vectorise
// without -ffast-math). Cody-Waite reduction x = n ln2 + r with |r| <= ln2/2, then the degree-7 Taylor polynomial of
// e^r (truncation error below 6e-9 relative, under one float ulp), then scaling by 2^n through the exponent bits.
// Below -87 (e^-87 ~ 1.6e-38, the edge of normal floats) it returns 0: a softmax term that small relative to the
// row maximum is 0 in float anyway.
inline float exp_nonpositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;            // 9 significant bits: n * kLn2Hi is exact for |n| < 2^15
  constexpr float kLn2Lo = -2.12194440054690583e-4f;  // ln 2 - kLn2Hi
  constexpr float kRound = 12582912.0f;               // 1.5 * 2^23: adding and subtracting it rounds to an integer
  const float xc = std::max(x, -87.0f);
  const float n = (xc * kLog2e + kRound) - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return x < -87.0f ? 0.0f : p * scale;
}

inline float exp_nonpositive_t(float x) { return exp_nonpositive(x); }
inline double exp_nonpositive_t(double x) { return std::exp(x); }

template <typename T>
void softmax_row(T* p /*[C]*/, const T* l /*[C]*/, int64_t C) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t c = 0; c < C; ++c) m = l[c] > m ? l[c] : m;
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < C; ++c) {
    const T e = exp_nonpositive_t(l[c] - m);
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
