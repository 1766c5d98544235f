// Linear layer without bias, weight in the PyTorch / Hugging Face layout [out, in].
//   forward:  out[N,O] = in[N,I] · W[O,I]^T
//   backward: d_in[N,I] = d_out[N,O] · W[O,I]        (assigned)
//             d_W[O,I] += d_out[N,O]^T · in[N,I]      (accumulated: parameter gradients always accumulate)
// Either gradient pointer may be null to skip it (a frozen weight, or an input that needs no gradient).
// The GEMMs run as the compute context says (f32 or bf16 products, packed or mirrored weights: compute_context.h);
// a double layer ignores it.
#pragma once

#include <cstdint>

#include "backend/cpu/gemm_bf16.h"

namespace moelab::ops {

template <typename T>
void linear_forward(const cpu::ComputeContext& ctx, T* out, const T* in, const T* weight, int64_t N,
                    int64_t in_features, int64_t out_features);

template <typename T>
void linear_backward(const cpu::ComputeContext& ctx, T* d_in, T* d_weight, const T* d_out, const T* in, const T* weight,
                     int64_t N, int64_t in_features, int64_t out_features);

// The weight gradient alone, made in `rows` [O,I], scratch that stays in cache, and then added to d_W, or streamed
// into it when d_W holds zeros (d_weight_zero): a gradient in memory is then written once and never read here.
// For GEMMs fast enough that d_W's memory traffic decides their time: one layer of the large shape's bf16 expert
// gradients took 7.9-8.4 ms adding into d_W, 7.5-7.7 staged and added, 6.7-6.8 staged and written (moelab_bench
// --benchmark_filter=WeightGradToMemory). f32 GEMMs gain nothing from it (16.9 ms against 17.7 written).
template <typename T>
void linear_weight_grad_staged(const cpu::ComputeContext& ctx, T* d_weight /*[O,I]*/, T* rows /*[O,I]*/,
                               const T* d_out /*[N,O]*/, const T* in /*[N,I]*/, int64_t N, int64_t in_features,
                               int64_t out_features, bool d_weight_zero, double* result_squares = nullptr);

// The forward and the staged weight gradient of a bf16 model's layer whose input is already rounded to bf16
// (cpu::Bf16Rows, [N, in_features]): a bf16 expert's activation, rounded once where it is made and kept so for
// backward. The same products as the float versions in a bf16 context on that input's f32 values (for the forward:
// when the weight lies in the context's mirror, as a model's do, or in_features is a multiple of 64; see
// cpu::gemm_bf16).
void linear_forward(const cpu::ComputeContext& ctx, float* out /*[N,O]*/, cpu::Bf16Rows in /*[N,I]*/,
                    const float* weight /*[O,I]*/, int64_t out_features);
void linear_weight_grad_staged(const cpu::ComputeContext& ctx, float* d_weight /*[O,I]*/, float* rows /*[O,I]*/,
                               const float* d_out /*[N,O]*/, cpu::Bf16Rows in /*[N,I]*/, int64_t out_features,
                               bool d_weight_zero, double* result_squares = nullptr);

}  // namespace moelab::ops
