#include "ops/rmsnorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace moelab::ops {
namespace {

// Below this many elements the OpenMP fork costs more than it saves.
constexpr int64_t kParallelElements = 1 << 15;
// Rows per block of the d_weight reduction. The blocks, not the threads, fix the summation order, so the result
// does not depend on the thread count; 32 rows keep the partials buffer small (N / 32 rows of C).
constexpr int64_t kRowBlock = 32;

}  // namespace

template <typename T>
void rmsnorm_forward(T* out /*[N,C]*/, T* rstd /*[N] saved for backward*/, const T* x /*[N,C]*/,
                     const T* weight /*[C]*/, int64_t N, int64_t C, double eps) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelElements)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * C;
    T* o = out + n * C;
    T sum_sq = 0;
#pragma omp simd reduction(+ : sum_sq)
    for (int64_t c = 0; c < C; ++c) sum_sq += xr[c] * xr[c];
    const T r = static_cast<T>(1.0 / std::sqrt(static_cast<double>(sum_sq) / C + eps));
    rstd[n] = r;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = xr[c] * r * weight[c];
  }
}

template <typename T>
void rmsnorm_backward(T* d_x /*[N,C] assigned*/, T* d_weight /*[C] accumulated, or null*/, const T* d_out /*[N,C]*/,
                      const T* x /*[N,C]*/, const T* weight /*[C]*/, const T* rstd /*[N]*/, int64_t N, int64_t C) {
  const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
  std::vector<T> partials(d_weight ? blocks * C : 0, T(0));  // [blocks, C]: d_weight summed over each row block
#pragma omp parallel for schedule(static) if (N * C >= kParallelElements)
  for (int64_t b = 0; b < blocks; ++b) {
    T* pw = d_weight ? partials.data() + b * C : nullptr;
    for (int64_t n = b * kRowBlock; n < std::min(N, (b + 1) * kRowBlock); ++n) {
      const T* xr = x + n * C;
      const T* dy = d_out + n * C;
      T* dx = d_x + n * C;
      const T r = rstd[n];
      T dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < C; ++c) dot += dy[c] * weight[c] * xr[c];
      const T coef = dot * r * r * r / static_cast<T>(C);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dx[c] = r * weight[c] * dy[c] - coef * xr[c];
      if (pw) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) pw[c] += dy[c] * xr[c] * r;
      }
    }
  }
  if (!d_weight) return;
  for (int64_t b = 0; b < blocks; ++b) {
    const T* pw = partials.data() + b * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d_weight[c] += pw[c];
  }
}

template void rmsnorm_forward<float>(float*, float*, const float*, const float*, int64_t, int64_t, double);
template void rmsnorm_forward<double>(double*, double*, const double*, const double*, int64_t, int64_t, double);
template void rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*, const float*, int64_t,
                                      int64_t);
template void rmsnorm_backward<double>(double*, double*, const double*, const double*, const double*, const double*,
                                       int64_t, int64_t);

}  // namespace moelab::ops
