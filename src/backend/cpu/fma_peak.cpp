#include "backend/cpu/fma_peak.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>

namespace moelab::cpu {

namespace {

#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kLanes = 16;
inline Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec splat(float x) { return _mm512_set1_ps(x); }
inline float first(Vec v) { return _mm512_cvtss_f32(v); }
#else
using Vec = __m256;
constexpr int kLanes = 8;
inline Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec splat(float x) { return _mm256_set1_ps(x); }
inline float first(Vec v) { return _mm256_cvtss_f32(v); }
#endif

constexpr int kChains = 12;  // independent accumulators per thread: more than latency x ports
constexpr int64_t kIterations = 1 << 22;

}  // namespace

double fma_peak_flops_per_call() { return 2.0 * kLanes * kChains * kIterations * omp_get_max_threads(); }

float fma_peak_kernel() {
  float sink = 0;
#pragma omp parallel reduction(+ : sink)
  {
    Vec acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = splat(0.001f * (c + omp_get_thread_num()));
    const Vec a = splat(0.999999f), b = splat(1e-7f);
    for (int64_t i = 0; i < kIterations; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = fma(acc[c], a, b);
    for (int c = 0; c < kChains; ++c) sink += first(acc[c]);
  }
  return sink;
}

double measure_fma_peak_gflops(int repeats) {
  double best = 0;
  volatile float sink = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + fma_peak_kernel();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, fma_peak_flops_per_call() / s / 1e9);
  }
  return best;
}

}  // namespace moelab::cpu
