// The two passes over every parameter that end a training step: the global gradient norm (clipping) and AdamW
// (with the bf16 rounding and gradient zeroing of the trainer's step). Both are memory-bound, so the counter is
// bytes/s: the norm reads 4 bytes per parameter; AdamW reads weight, gradient, m and v and writes weight, m, v,
// the zeroed gradient and (bf16) the 2-byte rounded weight.
// Sizes: about the parameter counts of the small shape (22.5 M) and the large one (294 M).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "rate_counters.h"
#include "train/adamw.h"
#include "train/grad_clip.h"

namespace {

std::vector<float> filled(int64_t n, float scale) {
  std::vector<float> v(n);  // [n]
  for (int64_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>((i * 7919) % 1009 - 504) / 504.0f;
  return v;
}

void BM_GlobalGradNorm(benchmark::State& state) {
  const int64_t n = state.range(0);
  const std::vector<float> grads = filled(n, 1e-3f);  // [n]
  for (auto _ : state) benchmark::DoNotOptimize(moelab::global_grad_norm(grads.data(), n));
  moelab::bench::set_bytes(state, 4.0 * n);
}

void BM_AdamWStep(benchmark::State& state) {
  const int64_t n = state.range(0);
  const bool round = state.range(1) != 0;
  std::vector<float> params = filled(n, 0.02f), grads = filled(n, 1e-3f);  // [n] each
  std::vector<float> m(n, 0.0f), v(n, 0.0f);                               // [n] each
  std::vector<uint16_t> bf16(round ? n : 0);                               // [n] or empty
  int64_t t = 0;
  for (auto _ : state) {
    const moelab::AdamWHyper h{1e-4, 0.9, 0.95, 1e-8, 0.1, ++t, 0.5};
    moelab::adamw_step(params.data(), grads.data(), m.data(), v.data(), n, h, {round ? bf16.data() : nullptr, true});
    benchmark::DoNotOptimize(params.data());
  }
  moelab::bench::set_bytes(state, (round ? 34.0 : 32.0) * n);
}

BENCHMARK(BM_GlobalGradNorm)->ArgName("params")->Arg(22'500'000)->Arg(294'000'000)->UseRealTime();
BENCHMARK(BM_AdamWStep)->ArgNames({"params", "bf16"})->Args({22'500'000, 0})->Args({294'000'000, 1})->UseRealTime();

}  // namespace
