#include "ops/linear.h"

#include "backend/cpu/gemm.h"
#include "backend/cpu/stream_copy.h"
#include "backend/cpu/write_with_squares.h"

namespace moelab::ops {

using cpu::Trans;

// Below this many elements the OpenMP fork costs more than it saves.
constexpr int64_t kParallelElements = 1 << 15;

template <typename T>
void linear_forward(const cpu::ComputeContext& ctx, T* out, const T* in, const T* weight, int64_t N,
                    int64_t in_features, int64_t out_features) {
  cpu::gemm(ctx, Trans::N, Trans::T, N, out_features, in_features, T(1), in, in_features, weight, in_features, T(0),
            out, out_features);
}

template <typename T>
void linear_backward(const cpu::ComputeContext& ctx, T* d_in, T* d_weight, const T* d_out, const T* in, const T* weight,
                     int64_t N, int64_t in_features, int64_t out_features) {
  if (d_in) {
    cpu::gemm(ctx, Trans::N, Trans::N, N, in_features, out_features, T(1), d_out, out_features, weight, in_features,
              T(0), d_in, in_features);
  }
  if (d_weight) {
    cpu::gemm(ctx, Trans::T, Trans::N, out_features, in_features, N, T(1), d_out, out_features, in, in_features, T(1),
              d_weight, in_features);
  }
}

namespace {

// d_W [n] += rows, or = rows when d_W holds zeros (streamed: written once, never read here); with the sum of the
// result's squares when asked.
template <typename T>
void add_staged(T* d_weight, const T* rows, int64_t n, bool d_weight_zero, double* result_squares) {
  if (result_squares) {
    *result_squares =
        d_weight_zero ? cpu::copy_with_squares(d_weight, rows, n) : cpu::add_with_squares(d_weight, rows, n);
    return;
  }
  if (d_weight_zero) return cpu::stream_copy(d_weight, rows, n);
#pragma omp parallel for simd schedule(static) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) d_weight[i] += rows[i];
}

}  // namespace

template <typename T>
void linear_weight_grad_staged(const cpu::ComputeContext& ctx, T* d_weight, T* rows, const T* d_out, const T* in,
                               int64_t N, int64_t in_features, int64_t out_features, bool d_weight_zero,
                               double* result_squares) {
  cpu::gemm(ctx, Trans::T, Trans::N, out_features, in_features, N, T(1), d_out, out_features, in, in_features, T(0),
            rows, in_features);
  add_staged(d_weight, rows, out_features * in_features, d_weight_zero, result_squares);
}

void linear_forward(const cpu::ComputeContext& ctx, float* out, cpu::Bf16Rows in, const float* weight,
                    int64_t out_features) {
  cpu::gemm_bf16(ctx, in, Trans::T, out_features, 1.0f, weight, in.cols, 0.0f, out, out_features);
}

void linear_weight_grad_staged(const cpu::ComputeContext& ctx, float* d_weight, float* rows, const float* d_out,
                               cpu::Bf16Rows in, int64_t out_features, bool d_weight_zero, double* result_squares) {
  cpu::gemm_bf16(ctx, out_features, 1.0f, d_out, out_features, in, 0.0f, rows, in.cols);
  add_staged(d_weight, rows, out_features * in.cols, d_weight_zero, result_squares);
}

template void linear_forward<float>(const cpu::ComputeContext&, float*, const float*, const float*, int64_t, int64_t,
                                    int64_t);
template void linear_forward<double>(const cpu::ComputeContext&, double*, const double*, const double*, int64_t,
                                     int64_t, int64_t);
template void linear_backward<float>(const cpu::ComputeContext&, float*, float*, const float*, const float*,
                                     const float*, int64_t, int64_t, int64_t);
template void linear_backward<double>(const cpu::ComputeContext&, double*, double*, const double*, const double*,
                                      const double*, int64_t, int64_t, int64_t);
template void linear_weight_grad_staged<float>(const cpu::ComputeContext&, float*, float*, const float*, const float*,
                                               int64_t, int64_t, int64_t, bool, double*);
template void linear_weight_grad_staged<double>(const cpu::ComputeContext&, double*, double*, const double*,
                                                const double*, int64_t, int64_t, int64_t, bool, double*);

}  // namespace moelab::ops
