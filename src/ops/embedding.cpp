#include "ops/embedding.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

namespace moelab::ops {
namespace {

// Below this many elements the OpenMP fork costs more than the copy it splits.
constexpr int64_t kParallelElements = 1 << 15;
// Column slices handed to threads are multiples of one cache line of floats, so no two threads share a line.
constexpr int64_t kColumnGrain = 16;

}  // namespace

template <typename T>
void embedding_forward(T* out /*[N,C]*/, const int32_t* ids /*[N]*/, const T* table /*[V,C]*/, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelElements)
  for (int64_t n = 0; n < N; ++n) std::memcpy(out + n * C, table + int64_t{ids[n]} * C, sizeof(T) * C);
}

template <typename T>
void embedding_backward(T* d_table /*[V,C]*/, const T* d_out /*[N,C]*/, const int32_t* ids /*[N]*/, int64_t N,
                        int64_t C) {
  // Tokens may repeat, so splitting tokens across threads would race on table rows. Each thread owns a slice of
  // columns instead and walks every token in order: no atomics, and each element's sum order is the token order.
#pragma omp parallel if (N * C >= kParallelElements && C >= 2 * kColumnGrain)
  {
    const int64_t threads = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t grains = (C + kColumnGrain - 1) / kColumnGrain;
    const int64_t c0 = std::min(C, grains * tid / threads * kColumnGrain);
    const int64_t c1 = std::min(C, grains * (tid + 1) / threads * kColumnGrain);
    for (int64_t n = 0; n < N; ++n) {
      T* dst = d_table + int64_t{ids[n]} * C;
      const T* src = d_out + n * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  }
}

template void embedding_forward<float>(float*, const int32_t*, const float*, int64_t, int64_t);
template void embedding_forward<double>(double*, const int32_t*, const double*, int64_t, int64_t);
template void embedding_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t);
template void embedding_backward<double>(double*, const double*, const int32_t*, int64_t, int64_t);

}  // namespace moelab::ops
