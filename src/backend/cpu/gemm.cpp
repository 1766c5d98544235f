#include "backend/cpu/gemm.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include "backend/cpu/gemm_bf16.h"
#include "core/error.h"

namespace moelab::cpu {

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K > 0 && gemm_precision() == GemmPrecision::Bf16 && !omp_in_parallel())
    return gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  dnnl_status_t st = dnnl_sgemm(ta == Trans::T ? 'T' : 'N', tb == Trans::T ? 'T' : 'N', M, N, K, alpha, A, lda, B,
                                ldb, beta, C, ldc);
  MOELAB_ASSERT(st == dnnl_success, "dnnl_sgemm rejected its arguments");
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
