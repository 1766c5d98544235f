// Weights packed for oneDNN (packed_weights.h): a linear layer's forward from the packed copy against the double
// GEMM, over row counts that run as one block or as whole 16-row steps and a tail (1, 37, 64, 250), and more row
// counts than the primitive cache holds; and when the packed path must not be taken (strided operands among them).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cpu/compute_context.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/packed_weights.h"
#include "support/gradcheck.h"

namespace moelab::cpu {
namespace {

// Two weight matrices, [N,K] each, one after the other in one array: a model's flat parameters in miniature.
struct Weights {
  int64_t N, K;
  std::vector<float> flat;  // [2, N, K]
  const float* matrix(int i) const { return flat.data() + i * N * K; }
  // The whole array, packed into `packed`.
  PackedWeightsView view(PackedWeights& packed) const {
    return {flat.data(), static_cast<int64_t>(flat.size()), &packed};
  }
};

Weights weights(int64_t N, int64_t K) { return {N, K, testing::to_float(testing::random_vector(2 * N * K, 11))}; }

// C [M,N] (row stride ldc) = A [M,K] (row stride lda) · Bᵀ in double, B [N,K].
std::vector<double> reference(int64_t M, int64_t N, int64_t K, const std::vector<float>& a, int64_t lda, const float* b,
                              int64_t ldc) {
  std::vector<double> c(M * ldc, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < K; ++p) acc += static_cast<double>(a[i * lda + p]) * b[j * K + p];
      c[i * ldc + j] = acc;
    }
  return c;
}

void expect_matches(int64_t M, int64_t N, int64_t K, const std::vector<float>& c, const std::vector<double>& want,
                    int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)  // float accumulation over K terms of size ~1
      ASSERT_NEAR(c[i * ldc + j], want[i * ldc + j], 1.6e-5 * (1 + std::sqrt(static_cast<double>(K))))
          << "M " << M << " row " << i << " col " << j;
}

TEST(PackedWeights, LinearForwardMatchesTheDoubleGemm) {
  for (const auto& [N, K] : {std::pair<int64_t, int64_t>{29, 48}, {96, 512}, {8, 256}}) {
    const Weights w = weights(N, K);
    PackedWeights packed;
    const PackedWeightsView view = w.view(packed);
    for (int64_t M : {1, 37, 64, 250}) {
      const auto a = testing::to_float(testing::random_vector(M * K, 20 + M));
      for (int i = 0; i < 2; ++i) {
        SCOPED_TRACE(::testing::Message() << "N " << N << " K " << K << " M " << M << " weight " << i);
        std::vector<float> c(M * N + 3, -7.0f);
        ASSERT_TRUE(packed_gemm_nt(view, M, N, K, a.data(), K, w.matrix(i), K, c.data(), N));
        expect_matches(M, N, K, c, reference(M, N, K, a, K, w.matrix(i), N), N);
        for (int64_t j = M * N; j < M * N + 3; ++j) ASSERT_EQ(c[j], -7.0f) << "written past C";
      }
    }
    EXPECT_EQ(packed.size(), 2) << "one copy per matrix, whatever the row count";
  }
}

// More row counts than the primitive cache keeps (a primitive per whole number of 16-row steps, one per tail):
// it empties and refills, and every result stays right.
TEST(PackedWeights, ManyRowCountsOutgrowThePrimitiveCache) {
  const int64_t N = 8, K = 16, steps = 530;  // 530 main-part primitives and 15 tails: more than the cache's 512
  const Weights w = weights(N, K);
  PackedWeights packed;
  const PackedWeightsView view = w.view(packed);
  const auto a = testing::to_float(testing::random_vector(16 * (steps + 1) * K, 3));
  for (int64_t i = 1; i <= steps; ++i) {
    const int64_t M = 16 * i + i % 16;
    SCOPED_TRACE(::testing::Message() << "M " << M);
    std::vector<float> c(M * N);
    ASSERT_TRUE(packed_gemm_nt(view, M, N, K, a.data(), K, w.matrix(1), K, c.data(), N));
    expect_matches(M, N, K, c, reference(M, N, K, a, K, w.matrix(1), N), N);
  }
  EXPECT_EQ(packed.size(), 1);
}

// Through cpu::gemm: under a context with the view, a linear layer's forward on a weight inside it reads the packed
// copy; any other GEMM (beta 1, a matrix outside the array, a bf16 context, no context) runs on sgemm or in bf16,
// packs nothing and is right too.
TEST(PackedWeights, GemmUsesThePackedCopyOnlyForALinearForwardOnAWeight) {
  const int64_t M = 40, N = 24, K = 64;
  const Weights w = weights(N, K);
  const std::vector<float> outside(w.flat.begin(), w.flat.begin() + N * K);  // the same values, another address
  const auto a = testing::to_float(testing::random_vector(M * K, 5));
  const std::vector<double> want = reference(M, N, K, a, K, w.matrix(0), N);
  PackedWeights packed;
  ComputeContext ctx;
  ctx.packed = w.view(packed);
  std::vector<float> c(M * N, 0.0f);
  gemm(ctx, Trans::N, Trans::T, M, N, K, 1.0f, a.data(), K, outside.data(), K, 0.0f, c.data(), N);
  expect_matches(M, N, K, c, want, N);
  gemm(ctx, Trans::N, Trans::T, M, N, K, 1.0f, a.data(), K, w.matrix(0), K, 1.0f, c.data(), N);  // c = 2 A·Bᵀ
  for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(c[i], 2 * want[i], 3.2e-5 * (1 + std::sqrt(double(K)))) << i;
  gemm(Trans::N, Trans::T, M, N, K, 1.0f, a.data(), K, w.matrix(0), K, 0.0f, c.data(), N);  // no context
  expect_matches(M, N, K, c, want, N);
  ComputeContext bf16 = ctx;
  bf16.precision = GemmPrecision::Bf16;
  gemm(bf16, Trans::N, Trans::T, M, N, K, 1.0f, a.data(), K, w.matrix(0), K, 0.0f, c.data(), N);
  EXPECT_EQ(packed.size(), 0);
  gemm(ctx, Trans::N, Trans::T, M, N, K, 1.0f, a.data(), K, w.matrix(0), K, 0.0f, c.data(), N);
  expect_matches(M, N, K, c, want, N);
  EXPECT_EQ(packed.size(), 1);
}

TEST(PackedWeights, DeclinesWithoutAViewOrOutsideItsArray) {
  const int64_t M = 8, N = 16, K = 32;
  const Weights w = weights(N, K);
  const auto a = testing::to_float(testing::random_vector(M * K, 6));
  std::vector<float> c(M * N, -1.0f);
  PackedWeights packed;
  EXPECT_FALSE(packed_gemm_nt({}, M, N, K, a.data(), K, w.matrix(0), K, c.data(), N)) << "no view";
  EXPECT_FALSE(packed_gemm_nt({w.flat.data(), 0, &packed}, M, N, K, a.data(), K, w.matrix(0), K, c.data(), N))
      << "a view of nothing";
  const PackedWeightsView view{w.flat.data(), N * K + N * K / 2, &packed};  // covers 1.5 matrices
  EXPECT_FALSE(packed_gemm_nt(view, M, N, K, a.data(), K, w.matrix(1), K, c.data(), N)) << "runs past the array's end";
  EXPECT_FALSE(packed_gemm_nt(view, M, N, K / 2, a.data(), K, w.matrix(0), K, c.data(), N)) << "strided A and B";
  EXPECT_FALSE(packed_gemm_nt(view, M / 2, N / 2, K, a.data(), K, w.matrix(0), K, c.data(), N)) << "strided C";
  for (float x : c) ASSERT_EQ(x, -1.0f);
  EXPECT_EQ(packed.size(), 0);
}

// The copies are of the weights when packed: clear() drops them, and the next use packs the current values.
TEST(PackedWeights, ClearDropsTheCopies) {
  const int64_t M = 8, N = 16, K = 32;
  Weights w = weights(N, K);
  const auto a = testing::to_float(testing::random_vector(M * K, 8));
  PackedWeights packed;
  std::vector<float> c(M * N);
  ASSERT_TRUE(packed_gemm_nt(w.view(packed), M, N, K, a.data(), K, w.matrix(0), K, c.data(), N));
  packed.clear();
  EXPECT_EQ(packed.size(), 0);
  for (float& x : w.flat) x = -x;
  ASSERT_TRUE(packed_gemm_nt(w.view(packed), M, N, K, a.data(), K, w.matrix(0), K, c.data(), N));
  expect_matches(M, N, K, c, reference(M, N, K, a, K, w.matrix(0), N), N);
}

}  // namespace
}  // namespace moelab::cpu
