// The f32 GEMM (cpu::gemm on float): every transpose, alpha and beta, against the double-precision GEMM on the
// same rounded inputs. The depths include ones that a transposed A runs in slices (gemm.cpp), with a partial last
// slice, so that the slices' beta (the caller's for the first, then 1) is checked too, and depth 0 (C = beta C).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/gemm.h"
#include "support/gradcheck.h"

namespace moelab::cpu {
namespace {

TEST(Gemm, FloatMatchesTheDoubleGemmForEveryLayoutAndDepth) {
  const int64_t M = 37, N = 29;
  for (int64_t K : {int64_t{0}, int64_t{64}, int64_t{512}, int64_t{1100}})
    for (Trans ta : {Trans::N, Trans::T})
      for (Trans tb : {Trans::N, Trans::T})
        for (const auto& [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{0.5, 1.0}, std::pair{1.0, -0.75}}) {
          SCOPED_TRACE(::testing::Message() << "K " << K << " ta " << (ta == Trans::T) << " tb " << (tb == Trans::T)
                                            << " alpha " << alpha << " beta " << beta);
          // Stored A is [M,K] or [K,M], B [K,N] or [N,K]; values rounded to float first so both GEMMs see the same.
          auto a = testing::to_float(testing::random_vector(M * K, 1));
          auto b = testing::to_float(testing::random_vector(K * N, 2));
          auto c = testing::to_float(testing::random_vector(M * N, 3));
          const std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end());
          std::vector<double> cd(c.begin(), c.end());
          // Row strides of at least 1, as BLAS asks even when a matrix is empty (K = 0).
          const int64_t lda = std::max<int64_t>(1, ta == Trans::T ? M : K);
          const int64_t ldb = std::max<int64_t>(1, tb == Trans::T ? K : N);
          gemm(ta, tb, M, N, K, static_cast<float>(alpha), a.data(), lda, b.data(), ldb, static_cast<float>(beta),
               c.data(), N);
          gemm(ta, tb, M, N, K, alpha, ad.data(), lda, bd.data(), ldb, beta, cd.data(), N);
          for (int64_t i = 0; i < M * N; ++i)  // float accumulation over K terms of size ~1
            ASSERT_NEAR(c[i], cd[i], 1.6e-5 * (1 + std::sqrt(static_cast<double>(K)))) << i;
        }
}

}  // namespace
}  // namespace moelab::cpu
