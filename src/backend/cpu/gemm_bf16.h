// bf16 mixed-precision GEMM: the same contract as cpu::gemm (gemm.h) for float, with A and B rounded to bf16
// (round to nearest even) and the products accumulated in f32 by oneDNN's matmul primitive, which runs AMX or
// AVX-512 BF16 kernels where the CPU has them (on AMX 5-7x the f32 sgemm for experts, 3.5x for the LM head:
// docs/performance.md). C stays f32.
//
// cpu::gemm runs here when its ComputeContext selects bf16 precision. It runs on all threads and so must be called
// outside OpenMP regions (asserted). The context supplies the weights' bf16 mirror, read instead of converting a
// weight, and inside a Bf16ReuseRegion the copies earlier GEMMs made (compute_context.h). Primitives are built once
// per (shape, layouts, alpha, beta) and cached; varying row counts and depths are bucketed to multiples of 64 so
// that the cache stays small (gemm_bf16.cpp).
#pragma once

#include <cstdint>

#include "backend/cpu/bf16.h"
#include "backend/cpu/compute_context.h"
#include "backend/cpu/gemm.h"

namespace moelab::cpu {

// out[i] = to_bf16(x[i]) for i < n, on all threads. Call outside OpenMP parallel regions.
void to_bf16(const float* x /*[n]*/, int64_t n, uint16_t* out /*[n]*/);

// Must be called outside OpenMP parallel regions (it converts into shared scratch and runs threaded primitives).
// ctx.precision is not read: this is the bf16 product.
void gemm_bf16(const ComputeContext& ctx, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// gemm_bf16 runs row counts (and depths it pads) in blocks of this many rows.
constexpr int64_t kBf16RowBlock = 64;
inline int64_t bf16_padded_rows(int64_t rows) { return (rows + kBf16RowBlock - 1) / kBf16RowBlock * kBf16RowBlock; }

// A matrix [rows, cols] already rounded to bf16, stored as gemm_bf16 copies an untransposed operand whose rows it
// pads: [bf16_padded_rows(rows), cols] row-major, the rows past `rows` zero. Kept by a caller that makes a matrix
// only to multiply it in bf16, once as A and once as B (a bf16 expert's activation, forward and backward): it is
// then rounded once, and its f32 values need not be kept at all.
struct Bf16Rows {
  const uint16_t* data;  // [bf16_padded_rows(rows), cols]
  int64_t rows, cols;
};

// C[A.rows, N] = alpha · A · op(B) + beta · C, depth A.cols; as gemm_bf16 with A given in bf16. The same bits as
// gemm_bf16 on A's f32 values when B lies in ctx's mirror or A.cols is a multiple of 64 (gemm_bf16 pads any other
// depth of a converted B, and a padded depth may sum in another order).
void gemm_bf16(const ComputeContext& ctx, Bf16Rows A, Trans tb, int64_t N, float alpha, const float* B, int64_t ldb,
               float beta, float* C, int64_t ldc);

// C[M, B.cols] = alpha · Aᵀ · B + beta · C, where A is stored [B.rows, M] (row stride lda); as gemm_bf16 with B
// given in bf16 (a weight gradient d_W = d_outᵀ · in, depth the rows of `in`).
void gemm_bf16(const ComputeContext& ctx, int64_t M, float alpha, const float* A, int64_t lda, Bf16Rows B, float beta,
               float* C, int64_t ldc);

}  // namespace moelab::cpu
