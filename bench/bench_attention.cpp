// Causal attention throughput (float) on the model's shapes: the default config (B=8, T=256, H=4, D=64) and the
// larger one (B=4, T=512, H=8, D=64), plus a grouped-query variant. FLOP counts are those of the FULL T x T
// matrices, as attention benchmarks usually report them: forward 4*B*H*T*T*D (Q·K^T and P·V), backward
// 8*B*H*T*T*D (dO·V^T, P^T·dO, dS·K, dS^T·Q; not the Q·K^T that backward computes again). The causal kernel does
// about half of that work, so the GFLOP/s shown is "dense-equivalent" throughput, comparable with numbers quoted
// the same way elsewhere.
#include <benchmark/benchmark.h>

#include <vector>

#include "ops/attention.h"
#include "rate_counters.h"

namespace {

struct Buffers {
  std::vector<float> q, k, v, out, lse, d_out, d_q, d_k, d_v;
  Buffers(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D)
      : q(B * T * H * D, 0.1f),
        k(B * T * Hkv * D, -0.05f),
        v(B * T * Hkv * D, 0.2f),
        out(B * T * H * D),
        lse(B * H * T),
        d_out(B * T * H * D, 0.01f),
        d_q(B * T * H * D),
        d_k(B * T * Hkv * D),
        d_v(B * T * Hkv * D) {
    // Distinct values per position so the softmax is not uniform (the exp cost does not depend on values).
    for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<float>((i * 7919) % 101) * 0.01f - 0.5f;
    for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<float>((i * 104729) % 97) * 0.01f - 0.5f;
  }
};

void BM_AttentionForward(benchmark::State& state) {
  const int64_t B = state.range(0), T = state.range(1), H = state.range(2), Hkv = state.range(3), D = state.range(4);
  Buffers buf(B, T, H, Hkv, D);
  for (auto _ : state) {
    moelab::ops::attention_forward(buf.out.data(), buf.lse.data(), buf.q.data(), buf.k.data(), buf.v.data(), B, T, H,
                                   Hkv, D);
    benchmark::DoNotOptimize(buf.out.data());
  }
  moelab::bench::set_flops(state, 4.0 * B * H * T * T * D);
}

void BM_AttentionBackward(benchmark::State& state) {
  const int64_t B = state.range(0), T = state.range(1), H = state.range(2), Hkv = state.range(3), D = state.range(4);
  Buffers buf(B, T, H, Hkv, D);
  moelab::ops::attention_forward(buf.out.data(), buf.lse.data(), buf.q.data(), buf.k.data(), buf.v.data(), B, T, H, Hkv,
                                 D);
  for (auto _ : state) {
    moelab::ops::attention_backward({buf.d_q.data(), buf.d_k.data(), buf.d_v.data()}, buf.d_out.data(),
                                    {buf.q.data(), buf.k.data(), buf.v.data(), buf.lse.data()}, {B, T, H, Hkv, D});
    benchmark::DoNotOptimize(buf.d_q.data());
  }
  moelab::bench::set_flops(state, 8.0 * B * H * T * T * D);
}

BENCHMARK(BM_AttentionForward)
    ->ArgNames({"B", "T", "H", "Hkv", "D"})
    ->Args({8, 256, 4, 4, 64})
    ->Args({4, 512, 8, 8, 64})
    ->Args({4, 512, 8, 2, 64})
    ->UseRealTime();

BENCHMARK(BM_AttentionBackward)
    ->ArgNames({"B", "T", "H", "Hkv", "D"})
    ->Args({8, 256, 4, 4, 64})
    ->Args({4, 512, 8, 8, 64})
    ->Args({4, 512, 8, 2, 64})
    ->UseRealTime();

}  // namespace
