// The machine's FP32 FMA peak, measured: every thread runs independent chains of fused multiply-adds on the
// widest vectors the compiler targets (-march=native: AVX-512 where present), enough chains to hide the FMA
// latency. Model-FLOP utilisation figures are fractions of this number.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <immintrin.h>

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

constexpr int kChains = 12;             // independent accumulators per thread: more than latency x ports
constexpr int64_t kIterations = 1 << 22;

void BM_FmaPeak(benchmark::State& state) {
  const int threads = omp_get_max_threads();
  float sink = 0;
  for (auto _ : state) {
#pragma omp parallel reduction(+ : sink)
    {
      Vec acc[kChains];
      for (int c = 0; c < kChains; ++c) acc[c] = splat(0.001f * (c + omp_get_thread_num()));
      const Vec a = splat(0.999999f), b = splat(1e-7f);
      for (int64_t i = 0; i < kIterations; ++i)
        for (int c = 0; c < kChains; ++c) acc[c] = fma(acc[c], a, b);
      for (int c = 0; c < kChains; ++c) sink += first(acc[c]);
    }
  }
  benchmark::DoNotOptimize(sink);
  state.counters["threads"] = threads;
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * kLanes * kChains * kIterations * threads,
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}

BENCHMARK(BM_FmaPeak)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
