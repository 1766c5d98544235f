#include "ops/swiglu.h"

#include <bit>
#include <cmath>

namespace moelab::ops {
namespace {

// Below this many elements the OpenMP fork costs more than it saves.
constexpr int64_t kParallelElements = 1 << 15;

// exp(x) for x <= 0 in float, written so that the loops calling it vectorise (std::exp does not without
// -ffast-math). x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2; exp(r) is its degree-7 Taylor
// polynomial (truncation error below 6e-9 relative, under float rounding) and 2^n goes into the exponent bits.
// Below -87 (the edge of normal floats) it returns 0.
inline float exp_nonpositive(float x) {
  const float xc = x < -87.0f ? -87.0f : x;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: xc / ln2 + kRound holds round(xc / ln2) in its low bits
  const float shifted = std::fma(xc, 1.44269504088896341f, kRound);
  const float n = shifted - kRound;
  const int32_t n_int = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRound);
  // Two-part ln2 so that r keeps full precision: the high part is float(ln2), the low part the remainder.
  float r = std::fma(n, -0.693147182464599609375f, xc);
  r = std::fma(n, 1.904654299957768e-09f, r);
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  return x < -87.0f ? 0.0f : p * std::bit_cast<float>((n_int + 127) << 23);
}

// The double path is the finite-difference reference: exactness matters there, not speed.
inline double exp_nonpositive(double x) { return std::exp(x); }

// sigmoid(g) from e = exp(-|g|) in (0, 1]: 1 / (1 + e) for g >= 0, e / (1 + e) below. Never overflows.
template <typename T>
inline T sigmoid(T g) {
  const T e = exp_nonpositive(-std::fabs(g));
  const T inv = T(1) / (T(1) + e);
  return g >= T(0) ? inv : e * inv;
}

}  // namespace

template <typename T>
void swiglu_forward(T* h /*[n]*/, const T* gate /*[n]*/, const T* up /*[n]*/, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) h[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

template <typename T>
void swiglu_backward(T* d_gate /*[n] assigned*/, T* d_up /*[n] assigned*/, const T* d_h /*[n]*/, const T* gate /*[n]*/,
                     const T* up /*[n]*/, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    const T g = gate[i], s = sigmoid(g), dh = d_h[i];
    d_up[i] = dh * g * s;
    d_gate[i] = dh * up[i] * s * (T(1) + g * (T(1) - s));
  }
}

template void swiglu_forward<float>(float*, const float*, const float*, int64_t);
template void swiglu_forward<double>(double*, const double*, const double*, int64_t);
template void swiglu_backward<float>(float*, float*, const float*, const float*, const float*, int64_t);
template void swiglu_backward<double>(double*, double*, const double*, const double*, const double*, int64_t);

}  // namespace moelab::ops
