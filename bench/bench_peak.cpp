// The machine's FP32 FMA peak (src/backend/cpu/fma_peak.h): model-FLOP utilisation figures are fractions of it.
#include <benchmark/benchmark.h>
#include <omp.h>

#include "backend/cpu/fma_peak.h"
#include "rate_counters.h"

namespace {

void BM_FmaPeak(benchmark::State& state) {
  float sink = 0;
  for (auto _ : state) sink += moelab::cpu::fma_peak_kernel();
  benchmark::DoNotOptimize(sink);
  state.counters["threads"] = omp_get_max_threads();
  moelab::bench::set_flops(state, moelab::cpu::fma_peak_flops_per_call());
}

BENCHMARK(BM_FmaPeak)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
