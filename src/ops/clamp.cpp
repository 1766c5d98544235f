#include "ops/clamp.h"

namespace moelab::ops {
namespace {

constexpr int64_t kParallelElements = 1 << 16;  // below this the OpenMP fork costs more than it saves

}  // namespace

template <typename T>
void clamp_forward(T* x, uint8_t* clipped, int64_t n, double limit) {
  const T hi = static_cast<T>(limit), lo = -hi;
#pragma omp parallel for simd schedule(static) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    clipped[i] = v > hi || v < lo;
    x[i] = v > hi ? hi : v < lo ? lo : v;
  }
}

template <typename T>
void clamp_backward(T* d, const uint8_t* clipped, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) d[i] = clipped[i] ? T(0) : d[i];
}

template void clamp_forward<float>(float*, uint8_t*, int64_t, double);
template void clamp_forward<double>(double*, uint8_t*, int64_t, double);
template void clamp_backward<float>(float*, const uint8_t*, int64_t);
template void clamp_backward<double>(double*, const uint8_t*, int64_t);

}  // namespace moelab::ops
