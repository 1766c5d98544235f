#include "backend/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>

#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/packed_weights.h"
#include "core/error.h"

namespace moelab::cpu {

void scale_by_beta(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_by_beta(M, N, beta, C, ldc);  // dnnl_sgemm leaves C unscaled for N,N, refuses empties
  // oneDNN's sgemm runs a transposed A with a long depth (a weight gradient: A = d_out^T, K = tokens) well below
  // its usual speed: 262-291 GFLOP/s on the LM head's 8192 x 256 x 2048, against 340-350 in depth slices of 256
  // that each add to C (moelab_bench --benchmark_filter=SgemmTransposedDepth).
  constexpr int64_t kDepthSlice = 256;
  // C = alpha op(A)[:, k0:k0+depth] op(B)[k0:k0+depth, :] + c_scale C
  const auto sgemm = [&](int64_t k0, int64_t depth, float c_scale) {
    const float* a = ta == Trans::T ? A + k0 * lda : A + k0;  // op(A) columns k0.. : stored rows k0.. when transposed
    const float* b = tb == Trans::T ? B + k0 : B + k0 * ldb;
    dnnl_status_t st = dnnl_sgemm(ta == Trans::T ? 'T' : 'N', tb == Trans::T ? 'T' : 'N', M, N, depth, alpha, a, lda, b,
                                  ldb, c_scale, C, ldc);
    MOELAB_ASSERT(st == dnnl_success, "dnnl_sgemm rejected its arguments");
  };
  if (ta == Trans::N || K <= 2 * kDepthSlice) return sgemm(0, K, beta);
  for (int64_t k0 = 0; k0 < K; k0 += kDepthSlice) sgemm(k0, std::min(kDepthSlice, K - k0), k0 == 0 ? beta : 1.0f);
}

void gemm(const ComputeContext& ctx, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_by_beta(M, N, beta, C, ldc);
  if (ctx.precision == GemmPrecision::Bf16) return gemm_bf16(ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (ta == Trans::N && tb == Trans::T && alpha == 1.0f && beta == 0.0f &&
      packed_gemm_nt(ctx.packed, M, N, K, A, lda, B, ldb, C, ldc))
    return;
  gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(const ComputeContext&, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < K; ++p) {
        double a = ta == Trans::T ? A[p * lda + i] : A[i * lda + p];
        double b = tb == Trans::T ? B[j * ldb + p] : B[p * ldb + j];
        acc += a * b;
      }
      C[i * ldc + j] = alpha * acc + (beta == 0.0 ? 0.0 : beta * C[i * ldc + j]);
    }
  }
}

}  // namespace moelab::cpu
