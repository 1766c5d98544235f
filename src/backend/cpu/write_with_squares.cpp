#include "backend/cpu/write_with_squares.h"

#include <immintrin.h>

#include <algorithm>

#include "core/ordered_sum.h"

namespace moelab::cpu {

namespace {

// Any type, any CPU: ordered_sum's own loop, writing as it goes.
template <bool kAdd, typename T>
double write_with_squares_plain(T* dst, const T* src, int64_t n, bool parallel) {
  return ordered_sum(n, parallel, [&](int64_t i) {
    const T v = kAdd ? dst[i] + src[i] : src[i];
    dst[i] = v;
    return static_cast<double>(v) * v;
  });
}

#if defined(__AVX512F__)
// Block b of ordered_sum's split, 16 values per step: the low 8 go to lanes 0-7 and then the high 8 to lanes 0-7,
// which is the order ordered_sum adds them in (value i to lane (i - lo) mod 8, ascending). A float times itself is
// exact in double, so the fused multiply-add rounds as ordered_sum's separate add does.
template <bool kAdd>
double block_with_squares(float* dst, const float* src, int64_t lo, int64_t hi) {
  __m512d acc = _mm512_setzero_pd();
  int64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    __m512 v = _mm512_loadu_ps(src + i);
    if constexpr (kAdd) {
      v = _mm512_add_ps(_mm512_loadu_ps(dst + i), v);
      _mm512_storeu_ps(dst + i, v);
    } else if (reinterpret_cast<uintptr_t>(dst + i) % 64 == 0) {
      _mm512_stream_ps(dst + i, v);
    } else {
      _mm512_storeu_ps(dst + i, v);
    }
    // The zero-masked forms: GCC 12 warns that the plain ones' undefined pass-through may be uninitialised.
    const __m512d low = _mm512_maskz_cvtps_pd(0xFF, _mm512_maskz_extractf32x8_ps(0xFF, v, 0));
    const __m512d high = _mm512_maskz_cvtps_pd(0xFF, _mm512_maskz_extractf32x8_ps(0xFF, v, 1));
    acc = _mm512_fmadd_pd(low, low, acc);
    acc = _mm512_fmadd_pd(high, high, acc);
  }
  double lane[kOrderedSumLanes];
  _mm512_storeu_pd(lane, acc);
  for (; i < hi; ++i) {
    const float v = kAdd ? dst[i] + src[i] : src[i];
    dst[i] = v;
    lane[(i - lo) % kOrderedSumLanes] += static_cast<double>(v) * v;
  }
  double sum = 0;
  for (double l : lane) sum += l;
  return sum;
}

template <bool kAdd>
double write_with_squares(float* dst, const float* src, int64_t n) {
  static_assert(kOrderedSumLanes == 8, "one __m512d of lanes");
  double partial[kOrderedSumBlocks];
  const int64_t per_block = (n + kOrderedSumBlocks - 1) / kOrderedSumBlocks;
#pragma omp parallel if (n >= kSumOfSquaresParallelValues)
  {
#pragma omp for schedule(static) nowait
    for (int64_t b = 0; b < kOrderedSumBlocks; ++b)
      partial[b] = block_with_squares<kAdd>(dst, src, std::min(n, b * per_block), std::min(n, (b + 1) * per_block));
    // Streaming stores are weakly ordered: each thread fences its own before the region's closing barrier.
    _mm_sfence();
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}
#else
template <bool kAdd>
double write_with_squares(float* dst, const float* src, int64_t n) {
  return write_with_squares_plain<kAdd>(dst, src, n, n >= kSumOfSquaresParallelValues);
}
#endif

}  // namespace

double copy_with_squares(float* dst, const float* src, int64_t n) { return write_with_squares<false>(dst, src, n); }
double add_with_squares(float* dst, const float* src, int64_t n) { return write_with_squares<true>(dst, src, n); }
double copy_with_squares(double* dst, const double* src, int64_t n) {
  return write_with_squares_plain<false>(dst, src, n, false);
}
double add_with_squares(double* dst, const double* src, int64_t n) {
  return write_with_squares_plain<true>(dst, src, n, false);
}

}  // namespace moelab::cpu
