// GEMM throughput on the shapes a MoE training step runs: M tokens routed to an expert, K/N the model and
// expert widths. Reports FLOP/s so the numbers read directly against the machine's peak.
#include <benchmark/benchmark.h>

#include <vector>

#include "backend/cpu/gemm.h"

namespace {

void BM_Sgemm(benchmark::State& state) {
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  std::vector<float> a(M * K, 0.5f), b(K * N, 0.25f), c(M * N);
  for (auto _ : state) {
    moelab::cpu::gemm(moelab::cpu::Trans::N, moelab::cpu::Trans::T, M, N, K, 1.0f, a.data(), K, b.data(), K, 0.0f,
                      c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * M * N * K, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

BENCHMARK(BM_Sgemm)
    ->ArgNames({"M", "K", "N"})
    ->Args({512, 256, 704})
    ->Args({512, 704, 256})
    ->Args({2048, 256, 256})
    ->Args({2048, 256, 8192})
    ->Args({1024, 512, 1408})
    ->Args({1024, 1024, 2816})
    ->UseRealTime();

}  // namespace
