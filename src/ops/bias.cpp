#include "ops/bias.h"

#include <algorithm>

namespace moelab::ops {
namespace {

constexpr int64_t kParallelElements = 1 << 15;  // below this the OpenMP fork costs more than it saves
constexpr int64_t kColumnBlock = 64;            // columns per task of the backward: each thread owns whole columns

}  // namespace

template <typename T>
void bias_forward(T* y, const T* b, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelElements)
  for (int64_t n = 0; n < N; ++n) {
    T* row = y + n * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) row[c] += b[c];
  }
}

template <typename T>
void bias_backward(T* d_b, const T* d_y, int64_t N, int64_t C) {
  const int64_t blocks = (C + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (N * C >= kParallelElements)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kColumnBlock, c1 = std::min(C, c0 + kColumnBlock);
    for (int64_t n = 0; n < N; ++n) {
      const T* row = d_y + n * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) d_b[c] += row[c];
    }
  }
}

template void bias_forward<float>(float*, const float*, int64_t, int64_t);
template void bias_forward<double>(double*, const double*, int64_t, int64_t);
template void bias_backward<float>(float*, const float*, int64_t, int64_t);
template void bias_backward<double>(double*, const double*, int64_t, int64_t);

}  // namespace moelab::ops
