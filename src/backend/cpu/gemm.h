// Dense matrix multiply, the one primitive every linear layer, expert and attention product goes through.
//   C[M,N] = alpha * op(A)[M,K] · op(B)[K,N] + beta * C[M,N]        (all row-major)
// op(X) is X or its transpose; lda/ldb/ldc are row strides of the matrices as stored.
// Without a context, float runs on oneDNN's sgemm (JIT AVX-512 kernels, OpenMP threads; called inside an OpenMP
// parallel region it runs on the calling thread only). With one, the context decides (compute_context.h): bf16
// products (gemm_bf16.h), a linear layer's forward on pre-packed weights (packed_weights.h), or that same sgemm.
// double is a plain loop nest, whatever the context: the reference for finite-difference tests.
#pragma once

#include <cstdint>

namespace moelab::cpu {

enum class Trans : bool { N = false, T = true };
struct ComputeContext;

void gemm(const ComputeContext& ctx, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(const ComputeContext& ctx, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc);

void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// C[M,N] = beta * C, and 0 where beta is 0 whatever C held: a product with no depth (K = 0), which the GEMM
// libraries refuse or get wrong.
void scale_by_beta(int64_t M, int64_t N, float beta, float* C, int64_t ldc);

}  // namespace moelab::cpu
