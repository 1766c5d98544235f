#include "ops/sigmoid_gate.h"

#include <cmath>

namespace moelab::ops {
namespace {

constexpr int64_t kParallelElements = 1 << 15;  // below this the OpenMP fork costs more than it saves

template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

template <typename T>
void sigmoid_gate_forward(T* out, T* gate, const SigmoidGateInputs<T>& in, int64_t N, int64_t D) {
#pragma omp parallel for schedule(static) if (N * D >= kParallelElements)
  for (int64_t n = 0; n < N; ++n) {
    const T g = static_cast<T>(1.0 / (1.0 + std::exp(-static_cast<double>(dot(in.x + n * D, in.w, D)))));
    gate[n] = g;
    const T* y = in.y + n * D;
    T* o = out + n * D;
#pragma omp simd
    for (int64_t i = 0; i < D; ++i) o[i] += g * y[i];
  }
}

template <typename T>
void sigmoid_gate_backward(const SigmoidGateGrads<T>& grads, const T* d_out, const SigmoidGateInputs<T>& in, int64_t N,
                           int64_t D) {
  // a[n], the gradient of row n's gate logit, is made again where it is used: no buffer of N.
  auto logit_grad = [&](int64_t n) {
    const T g = in.gate[n];
    return g * (1 - g) * dot(d_out + n * D, in.y + n * D, D);
  };
#pragma omp parallel for schedule(static) if (N * D >= kParallelElements)
  for (int64_t n = 0; n < N; ++n) {
    const T g = in.gate[n], a = logit_grad(n);
    const T* dy = d_out + n * D;
    T* d_y = grads.d_y + n * D;
    T* d_x = grads.d_x + n * D;
#pragma omp simd
    for (int64_t i = 0; i < D; ++i) {
      d_y[i] = g * dy[i];
      d_x[i] += a * in.w[i];
    }
  }
  for (int64_t n = 0; n < N; ++n) {  // rows in order: the same bits for any thread count
    const T a = logit_grad(n);
    const T* x = in.x + n * D;
#pragma omp simd
    for (int64_t i = 0; i < D; ++i) grads.d_w[i] += a * x[i];
  }
}

template void sigmoid_gate_forward<float>(float*, float*, const SigmoidGateInputs<float>&, int64_t, int64_t);
template void sigmoid_gate_forward<double>(double*, double*, const SigmoidGateInputs<double>&, int64_t, int64_t);
template void sigmoid_gate_backward<float>(const SigmoidGateGrads<float>&, const float*,
                                           const SigmoidGateInputs<float>&, int64_t, int64_t);
template void sigmoid_gate_backward<double>(const SigmoidGateGrads<double>&, const double*,
                                            const SigmoidGateInputs<double>&, int64_t, int64_t);

}  // namespace moelab::ops
