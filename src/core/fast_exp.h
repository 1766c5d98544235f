// exp(x) for x <= 0, written so that the loops calling it vectorise (std::exp does not without -ffast-math):
// the softmax, cross-entropy, attention and SwiGLU kernels all spend their elementwise time here.
// Float: x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2; exp(r) is its degree-7 Taylor polynomial
// (truncation error below 6e-9 relative, under float rounding) and 2^n goes into the exponent bits. Below -87
// (the edge of normal floats) it returns 0: a term that small next to the row maximum is 0 in float anyway.
// Double: std::exp, since the double paths are the finite-difference references where exactness matters.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace moelab {

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

inline double exp_nonpositive(double x) { return std::exp(x); }

}  // namespace moelab
