#include "ops/swiglu.h"

#include <cmath>

#include "core/fast_exp.h"

namespace moelab::ops {
namespace {

// Below this many elements the OpenMP fork costs more than it saves.
constexpr int64_t kParallelElements = 1 << 15;

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
#pragma omp parallel for simd simdlen(16) schedule(static) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) h[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

template <typename T>
void swiglu_backward(T* d_gate /*[n] assigned*/, T* d_up /*[n] assigned*/, const T* d_h /*[n]*/, const T* gate /*[n]*/,
                     const T* up /*[n]*/, int64_t n) {
#pragma omp parallel for simd simdlen(16) schedule(static) if (n >= kParallelElements)
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
