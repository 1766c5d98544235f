// GEMM throughput on the shapes a MoE training step runs: M tokens routed to an expert, K/N the model and expert
// widths. Reports FLOP/s so the numbers read directly against the machine's peak. BM_Sgemm is the f32 GEMM the
// engine runs; BM_SgemmStepLayouts the same at every shape and operand layout of one f32 training step, with
// operands hot in cache (bench/f32_gemm_bound.py turns it into the step's GEMM-bound utilisation); BM_MatmulBf16 is
// oneDNN's matmul primitive with bf16 inputs and f32 output (what a bf16 mixed-precision step runs): on CPUs with
// AMX (Sapphire Rapids) oneDNN picks its AMX kernels (the implementation is named in the label), elsewhere AVX-512
// BF16 or a slower path.
#include <benchmark/benchmark.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstdint>
#include <dnnl.hpp>
#include <random>
#include <tuple>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/packed_weights.h"
#include "backend/cpu/stream_copy.h"
#include "core/ordered_sum.h"
#include "ops/linear.h"
#include "rate_counters.h"

namespace {

void BM_Sgemm(benchmark::State& state) {
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  std::vector<float> a(M * K, 0.5f), b(K * N, 0.25f), c(M * N);
  for (auto _ : state) {
    moelab::cpu::gemm(moelab::cpu::Trans::N, moelab::cpu::Trans::T, M, N, K, 1.0f, a.data(), K, b.data(), K, 0.0f,
                      c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  moelab::bench::set_flops(state, 2.0 * M * N * K);
}

void BM_MatmulBf16(benchmark::State& state) {
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(eng);
  // C [M,N] = A [M,K] x W^T with W stored [N,K], like a linear layer's weight.
  const dnnl::memory::desc a_desc({M, K}, dt::bf16, tag::ab), w_desc({K, N}, dt::bf16, tag::ba),
      c_desc({M, N}, dt::f32, tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_desc, w_desc, c_desc), eng);
  const dnnl::matmul matmul(pd);
  dnnl::memory a(a_desc, eng), w(w_desc, eng), c(c_desc, eng);
  std::fill_n(static_cast<uint16_t*>(a.get_data_handle()), M * K, uint16_t{0x3f00});  // 0.5 in bf16
  std::fill_n(static_cast<uint16_t*>(w.get_data_handle()), N * K, uint16_t{0x3e80});  // 0.25
  for (auto _ : state) {
    matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, c}});
    stream.wait();
  }
  state.SetLabel(pd.impl_info_str());
  moelab::bench::set_flops(state, 2.0 * M * N * K);
}

// The engine's bf16 GEMM (cpu::gemm_bf16: conversion of both inputs + a cached oneDNN primitive) on an expert's
// shape, with the same row count every call (range 0 = 0) or a new one every call (1), as an expert's token count
// changes from step to step: a new shape builds a new primitive.
void BM_GemmBf16ExpertRows(benchmark::State& state) {
  const bool new_rows = state.range(0) == 1;
  const int64_t K = 256, N = 704;
  std::vector<float> a(1024 * K, 0.5f), b(N * K, 0.25f), c(1024 * N);
  int64_t call = 0, rows = 0;
  for (auto _ : state) {
    const int64_t M = new_rows ? 256 + (call++ % 768) : 512;
    moelab::cpu::gemm_bf16(moelab::cpu::ComputeContext{}, moelab::cpu::Trans::N, moelab::cpu::Trans::T, M, N, K, 1.0f,
                           a.data(), K, b.data(), K, 0.0f, c.data(), N);
    rows += M;
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * rows * N * K, benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_GemmBf16ExpertRows)->ArgName("new_rows")->Arg(0)->Arg(1)->UseRealTime();

// The LM head's bf16 GEMM (2048 x 256 x 8192, weights from the mirror as in the model) writing its f32 output at
// a 64-byte boundary (range 0 = 0) or 16 bytes past one (range 0 = 16, what glibc's malloc gives): why the
// executables align large blocks (src/core/aligned_new.cpp).
void BM_GemmBf16OutputAlignment(benchmark::State& state) {
  const int64_t M = 2048, K = 256, N = 8192, offset = state.range(0) / static_cast<int64_t>(sizeof(float));
  std::vector<float> a(M * K, 0.5f), w(N * K, 0.25f), c(M * N + offset);
  std::vector<uint16_t> w_bf16(N * K);
  moelab::cpu::to_bf16(w.data(), N * K, w_bf16.data());
  moelab::cpu::ComputeContext mirror;  // the weights read from their bf16 copy, as a model's are
  mirror.mirror = {w.data(), N * K, w_bf16.data()};
  for (auto _ : state) {
    moelab::cpu::gemm_bf16(mirror, moelab::cpu::Trans::N, moelab::cpu::Trans::T, M, N, K, 1.0f, a.data(), K, w.data(),
                           K, 0.0f, c.data() + offset, N);
    benchmark::DoNotOptimize(c.data());
  }
  moelab::bench::set_flops(state, 2.0 * M * N * K);
}
BENCHMARK(BM_GemmBf16OutputAlignment)->ArgName("bytes_past_64")->Arg(0)->Arg(16)->UseRealTime();

// The bf16 GEMM on an expert's forward shape (the large model's gate and up: K 512, N 1408) with row counts that
// are and are not multiples of 64 (the row bucket of gemm_bf16): what the rows past the last full bucket cost.
void BM_GemmBf16RowRemainder(benchmark::State& state) {
  const int64_t M = state.range(0), K = 512, N = 1408;
  std::vector<float> a(M * K, 0.5f), w(N * K, 0.25f), c(M * N);
  std::vector<uint16_t> w_bf16(N * K);
  moelab::cpu::to_bf16(w.data(), N * K, w_bf16.data());
  moelab::cpu::ComputeContext mirror;  // the weights read from their bf16 copy, as a model's are
  mirror.mirror = {w.data(), N * K, w_bf16.data()};
  for (auto _ : state) {
    moelab::cpu::gemm_bf16(mirror, moelab::cpu::Trans::N, moelab::cpu::Trans::T, M, N, K, 1.0f, a.data(), K, w.data(),
                           K, 0.0f, c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  moelab::bench::set_flops(state, 2.0 * M * N * K);
}
BENCHMARK(BM_GemmBf16RowRemainder)->ArgName("rows")->Arg(58)->Arg(64)->Arg(250)->Arg(256)->UseRealTime();

// A weight gradient's GEMM, d_W [8192, 256] += d_out^T [8192 x 2048] x in [2048, 256] (the small shape's LM head):
// oneDNN's sgemm in one call (range 0 = 0), and cpu::gemm, which runs a transposed A with a long depth in slices.
void BM_SgemmTransposedDepth(benchmark::State& state) {
  const int64_t M = 8192, N = 256, K = 2048;
  std::vector<float> a(K * M, 0.01f), b(K * N, 0.5f), c(M * N, 0.0f);
  for (auto _ : state) {
    if (state.range(0) == 0)
      dnnl_sgemm('T', 'N', M, N, K, 1.0f, a.data(), M, b.data(), N, 1.0f, c.data(), N);
    else
      moelab::cpu::gemm(moelab::cpu::Trans::T, moelab::cpu::Trans::N, M, N, K, 1.0f, a.data(), M, b.data(), N, 1.0f,
                        c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  moelab::bench::set_flops(state, 2.0 * M * N * K);
}
BENCHMARK(BM_SgemmTransposedDepth)->ArgName("sliced")->Arg(0)->Arg(1)->UseRealTime();

// One MoE layer's expert forwards in f32, C_e [M,N] = A_e [M,K] · W_eᵀ for E experts whose weights lie one after
// another in one array (a model's parameters): oneDNN's sgemm, which packs each W_e inside every call (range 4 =
// 0), against the matmul primitive on copies packed once (1; packed_weights.h, what inference runs). Arguments:
// E, M, K, N of the large shape's gate (or up) and down projections and the small shape's; 250 rows are not a
// multiple of the packed path's 16-row step, so they run as 240 rows and a 10-row tail.
void BM_ExpertForwardPackedWeights(benchmark::State& state) {
  const int64_t E = state.range(0), M = state.range(1), K = state.range(2), N = state.range(3);
  const bool packed = state.range(4) == 1;
  std::vector<float> a(E * M * K, 0.5f), w(E * N * K, 0.25f), c(E * M * N);
  moelab::cpu::PackedWeights copies;
  moelab::cpu::ComputeContext ctx;
  if (packed) ctx.packed = {w.data(), E * N * K, &copies};
  for (auto _ : state) {
    for (int64_t e = 0; e < E; ++e)
      moelab::cpu::gemm(ctx, moelab::cpu::Trans::N, moelab::cpu::Trans::T, M, N, K, 1.0f, a.data() + e * M * K, K,
                        w.data() + e * N * K, K, 0.0f, c.data() + e * M * N, N);
    benchmark::DoNotOptimize(c.data());
  }
  if (copies.size() != (packed ? E : 0)) state.SkipWithError("the packed path was not the one measured");
  moelab::bench::set_flops(state, 2.0 * E * M * N * K);
}
BENCHMARK(BM_ExpertForwardPackedWeights)
    ->ArgNames({"E", "M", "K", "N", "packed"})
    ->ArgsProduct({{16}, {256, 250}, {512}, {1408}, {0, 1}})
    ->ArgsProduct({{16}, {256}, {1408}, {512}, {0, 1}})
    ->ArgsProduct({{8}, {512}, {256}, {704}, {0, 1}})
    ->ArgsProduct({{8}, {512}, {704}, {256}, {0, 1}})
    ->UseRealTime();

// M x K x N of the small and large shapes' experts, attention projections and LM head.
void moe_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N"});
  for (const auto& s : {std::vector<int64_t>{512, 256, 704},
                        {512, 704, 256},
                        {2048, 256, 256},
                        {2048, 256, 8192},
                        {1024, 512, 1408},
                        {1024, 1024, 2816}})
    b->Args(s);
}

BENCHMARK(BM_Sgemm)->Apply(moe_shapes)->UseRealTime();

// C [M,N] = op(A) [M,K] · op(B) [K,N] through cpu::gemm as a linear layer calls it, operands hot in cache and filled
// with random values. layout 0, forward: out = in · Wᵀ (N,T); 1, input gradient: d_in = d_out · W (N,N);
// 2, weight gradient: d_W += d_outᵀ · in (T,N, accumulating, with cpu::gemm's depth slices).
void BM_SgemmStepLayouts(benchmark::State& state) {
  const int64_t layout = state.range(0), M = state.range(1), N = state.range(2), K = state.range(3);
  using moelab::cpu::Trans;
  const Trans ta = layout == 2 ? Trans::T : Trans::N, tb = layout == 0 ? Trans::T : Trans::N;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> a(M * K), b(K * N), c(M * N, 0.0f);  // a [M,K] or [K,M]; b [N,K] or [K,N]; c [M,N]
  for (auto& v : a) v = normal(rng);
  for (auto& v : b) v = normal(rng);
  const float beta = layout == 2 ? 1.0f : 0.0f;
  for (auto _ : state) {
    moelab::cpu::gemm(ta, tb, M, N, K, 1.0f, a.data(), ta == Trans::T ? M : K, b.data(), tb == Trans::T ? K : N, beta,
                      c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  moelab::bench::set_flops(state, 2.0 * M * N * K);
}

// Every GEMM of the small and large shapes' f32 training steps, as (layout, M, N, K), for tokens t = B T = 2048,
// model width d, expert width h, vocabulary 8192 and r = 2 t / experts rows per expert (an even routing): an expert's
// gate or up projection, its down projection, an attention projection (d x d) and the LM head, each forward,
// input gradient and weight gradient.
void step_layouts(benchmark::internal::Benchmark* b) {
  b->ArgNames({"layout", "M", "N", "K"});
  const int64_t t = 2048, V = 8192;
  for (const auto& [d, h, r] : {std::tuple<int64_t, int64_t, int64_t>{256, 704, 512}, {512, 1408, 256}}) {
    for (const auto& [in, out, rows] :
         {std::tuple<int64_t, int64_t, int64_t>{d, h, r}, {h, d, r}, {d, d, t}, {d, V, t}}) {
      b->Args({0, rows, out, in});  // forward
      b->Args({1, rows, in, out});  // input gradient
      b->Args({2, out, in, rows});  // weight gradient
    }
  }
}
BENCHMARK(BM_SgemmStepLayouts)->Apply(step_layouts)->UseRealTime();
BENCHMARK(BM_MatmulBf16)->Apply(moe_shapes)->UseRealTime();

// One MoE layer's bf16 expert forward GEMMs (the large shape's gate: 16 experts x 256 rows, d 512, h 1408) whose
// outputs are kept for backward, as in a training step: written straight into the saved array (range 0 = 0), or
// into rows that every expert reuses and that stay in cache, then streamed into the saved array (1; what
// moe_ffn_forward does, cpu::stream_copy). The saved arrays of 16 layers rotate, about 370 MB, so that each
// iteration writes to memory, not to a cache that still holds the last one.
void BM_GemmBf16ExpertOutputToMemory(benchmark::State& state) {
  using moelab::cpu::Trans;
  const int64_t E = 16, M = 256, d = 512, h = 1408, layers = 16;
  const bool streamed = state.range(0) == 1;
  std::vector<float> x(E * M * d, 0.5f), w(E * h * d, 0.25f);  // [E,M,d], [E,h,d]
  std::vector<float> saved(layers * E * M * h), rows(M * h);   // [layers,E,M,h], [M,h]
  std::vector<uint16_t> w_bf16(w.size());
  moelab::cpu::to_bf16(w.data(), static_cast<int64_t>(w.size()), w_bf16.data());
  moelab::cpu::ComputeContext mirror;  // the weights read from their bf16 copy, as a model's are
  mirror.mirror = {w.data(), static_cast<int64_t>(w.size()), w_bf16.data()};
  int64_t layer = 0;
  for (auto _ : state) {
    layer = (layer + 1) % layers;
    for (int64_t e = 0; e < E; ++e) {
      float* out = saved.data() + (layer * E + e) * M * h;
      moelab::cpu::gemm_bf16(mirror, Trans::N, Trans::T, M, h, d, 1.0f, x.data() + e * M * d, d, w.data() + e * h * d,
                             d, 0.0f, streamed ? rows.data() : out, h);
      if (streamed) moelab::cpu::stream_copy(out, rows.data(), M * h);
    }
    benchmark::DoNotOptimize(saved.data());
  }
  moelab::bench::set_flops(state, 2.0 * E * M * d * h);
}
BENCHMARK(BM_GemmBf16ExpertOutputToMemory)->ArgName("streamed")->Arg(0)->Arg(1)->UseRealTime();

// One MoE layer's expert weight gradients (the large shape's gate: d_W [1408, 512] += d_gᵀ [1408 x 256] x
// x [256, 512] for 16 experts) into gradients in memory, as in a training step, in bf16 (range 0 = 1) or f32 (0):
// the GEMM adding into d_W (range 1 = 0), staged in rows that stay in cache and then added (1), or staged and
// written, d_W being 0 (2; ops::linear_weight_grad_staged). With the gradient norm's share as well: summed while
// added (3) or written (4), or read back after adding (5) or writing (6). The gradients of 16 layers rotate, about
// 740 MB.
void BM_ExpertWeightGradToMemory(benchmark::State& state) {
  const int64_t E = 16, M = 256, d = 512, h = 1408, layers = 16, mode = state.range(1);
  std::vector<float> x(E * M * d, 0.5f), d_g(E * M * h, 0.01f);     // [E,M,d], [E,M,h]
  std::vector<float> grads(layers * E * h * d, 0.0f), rows(h * d);  // [layers,E,h,d], [h,d]
  moelab::cpu::ComputeContext ctx;
  if (state.range(0) == 1) ctx.precision = moelab::cpu::GemmPrecision::Bf16;
  const bool written = mode == 2 || mode == 4 || mode == 6;
  int64_t layer = 0;
  double squares = 0;
  for (auto _ : state) {
    layer = (layer + 1) % layers;
    for (int64_t e = 0; e < E; ++e) {
      float* d_w = grads.data() + (layer * E + e) * h * d;
      const float* d_out = d_g.data() + e * M * h;
      const float* in = x.data() + e * M * d;
      if (mode == 0) {
        moelab::ops::linear_backward<float>(ctx, nullptr, d_w, d_out, in, nullptr, M, d, h);
      } else if (mode == 3 || mode == 4) {
        double expert_squares = 0;
        moelab::ops::linear_weight_grad_staged(ctx, d_w, rows.data(), d_out, in, M, d, h, written, &expert_squares);
        squares += expert_squares;
      } else {
        moelab::ops::linear_weight_grad_staged(ctx, d_w, rows.data(), d_out, in, M, d, h, written);
        if (mode >= 5) squares += moelab::sum_of_squares(d_w, h * d);
      }
    }
    benchmark::DoNotOptimize(grads.data());
    benchmark::DoNotOptimize(squares);
  }
  moelab::bench::set_flops(state, 2.0 * E * M * d * h);
}
BENCHMARK(BM_ExpertWeightGradToMemory)
    ->ArgNames({"bf16", "mode"})
    ->ArgsProduct({{1, 0}, {0, 1, 2, 3, 4, 5, 6}})
    ->UseRealTime();

}  // namespace
