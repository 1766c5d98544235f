// The compute context and the caches behind it (compute_context.h): which copies of the weights a pass's context
// carries, when the bf16 mirror is made again, when packed copies are dropped, and the bookkeeping of reusable
// bf16 operand copies. The products themselves are checked in test_gemm_bf16.cpp and test_packed_weights.cpp.
#include <gtest/gtest.h>

#include <vector>

#include "backend/cpu/compute_context.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_bf16.h"

namespace moelab::cpu {
namespace {

std::vector<uint16_t> rounded(const std::vector<float>& w) {
  std::vector<uint16_t> out;
  for (float x : w) out.push_back(to_bf16(x));
  return out;
}

TEST(ComputeCaches, AnF32PassCarriesNoMirrorAndPacksOnlyWhenAsked) {
  std::vector<float> w(64, 0.5f);
  ComputeCaches caches;
  const ComputeContext plain = caches.context(w.data(), 64, GemmPrecision::F32, false);
  EXPECT_EQ(plain.precision, GemmPrecision::F32);
  EXPECT_EQ(plain.mirror.n, 0);
  EXPECT_EQ(plain.packed.n, 0);
  EXPECT_NE(plain.copy_store, nullptr);
  EXPECT_FALSE(plain.reuse_copies);
  EXPECT_EQ(caches.mirror_if_current(), nullptr) << "an f32 pass rounds nothing";
  const ComputeContext packing = caches.context(w.data(), 64, GemmPrecision::F32, true);
  EXPECT_EQ(packing.packed.f32, w.data());
  EXPECT_EQ(packing.packed.n, 64);
}

TEST(ComputeCaches, TheMirrorIsMadeAgainOnlyAfterTheWeightsChanged) {
  std::vector<float> w = {1.0f, -2.5f, 3.1f, 0.3f};
  ComputeCaches caches;
  const ComputeContext first = caches.context(w.data(), 4, GemmPrecision::Bf16, true);
  EXPECT_EQ(first.precision, GemmPrecision::Bf16);
  EXPECT_EQ(first.packed.n, 0) << "a bf16 pass reads the mirror, not packed f32 weights";
  ASSERT_EQ(first.mirror.n, 4);
  EXPECT_EQ(std::vector<uint16_t>(first.mirror.bf16, first.mirror.bf16 + 4), rounded(w));
  EXPECT_NE(caches.mirror_if_current(), nullptr);

  const std::vector<uint16_t> before = rounded(w);
  w[0] = 7.0f;  // unannounced: the mirror is kept as it was (what costs a pass over every weight)
  const ComputeContext second = caches.context(w.data(), 4, GemmPrecision::Bf16, false);
  EXPECT_EQ(std::vector<uint16_t>(second.mirror.bf16, second.mirror.bf16 + 4), before);
  caches.weights_changed();
  EXPECT_EQ(caches.mirror_if_current(), nullptr);
  const ComputeContext third = caches.context(w.data(), 4, GemmPrecision::Bf16, false);
  EXPECT_EQ(std::vector<uint16_t>(third.mirror.bf16, third.mirror.bf16 + 4), rounded(w));
}

// An optimizer keeps the mirror current itself: current_mirror hands it out made, and the next pass rounds nothing.
TEST(ComputeCaches, AnOptimizerKeepsTheMirrorCurrent) {
  std::vector<float> w = {1.0f, 2.0f};
  ComputeCaches caches;
  uint16_t* mirror = caches.current_mirror(w.data(), 2);
  EXPECT_EQ(std::vector<uint16_t>(mirror, mirror + 2), rounded(w));
  w[1] = -4.0f, mirror[1] = to_bf16(-4.0f);
  const ComputeContext ctx = caches.context(w.data(), 2, GemmPrecision::Bf16, false);
  EXPECT_EQ(ctx.mirror.bf16, mirror);
  EXPECT_EQ(std::vector<uint16_t>(ctx.mirror.bf16, ctx.mirror.bf16 + 2), rounded(w));
}

TEST(ComputeCaches, ChangedWeightsDropThePackedCopies) {
  const int64_t M = 4, N = 8, K = 16;
  std::vector<float> w(N * K, 0.25f), a(M * K, 1.0f), c(M * N);
  ComputeCaches caches;
  const ComputeContext ctx = caches.context(w.data(), N * K, GemmPrecision::F32, true);
  gemm(ctx, Trans::N, Trans::T, M, N, K, 1.0f, a.data(), K, w.data(), K, 0.0f, c.data(), N);
  EXPECT_EQ(caches.packed_matrices(), 1);
  EXPECT_EQ(c[0], 4.0f);
  caches.weights_changed();
  EXPECT_EQ(caches.packed_matrices(), 0);
  for (float& x : w) x = 0.5f;
  gemm(caches.context(w.data(), N * K, GemmPrecision::F32, true), Trans::N, Trans::T, M, N, K, 1.0f, a.data(), K,
       w.data(), K, 0.0f, c.data(), N);
  EXPECT_EQ(c[0], 8.0f) << "packed again from the new values";
}

TEST(Bf16Mirror, CoversExactlyTheMatricesInsideItsArray) {
  std::vector<float> w(100);
  const Bf16Mirror mirror{w.data() + 10, 50, nullptr};
  EXPECT_TRUE(mirror.covers(w.data() + 10, 5, 10, 10));   // [10, 60)
  EXPECT_FALSE(mirror.covers(w.data() + 11, 5, 10, 10));  // [11, 61): one past the end
  EXPECT_FALSE(mirror.covers(w.data() + 9, 1, 4, 4));     // starts before
  EXPECT_TRUE(mirror.covers(w.data() + 10, 3, 4, 20));    // strided: rows at 10, 30, 50, last ends at 54
  EXPECT_FALSE(Bf16Mirror{}.covers(w.data(), 1, 1, 1)) << "no mirror covers nothing";
}

// A copy is found again only for the same matrix in the same padded layout, and drop() forgets every copy while
// keeping its storage for the next one.
TEST(Bf16Copies, FindsOnlyTheSameMatrixInTheSameLayoutUntilDropped) {
  std::vector<float> x(64);
  Bf16Copies copies;
  EXPECT_EQ(copies.find(x.data(), 8, 8, 8, 64, 8), nullptr);
  Bf16Copies::Copy& made = copies.add(x.data(), 8, 8, 8, 64, 8);
  made.data.assign(64 * 8, 1);
  const uint16_t* storage = made.data.data();
  EXPECT_EQ(copies.find(x.data(), 8, 8, 8, 64, 8), &made);
  EXPECT_EQ(copies.find(x.data(), 8, 8, 8, 8, 64), nullptr) << "transposed padding";
  EXPECT_EQ(copies.find(x.data() + 1, 8, 8, 8, 64, 8), nullptr) << "another address";
  EXPECT_EQ(copies.find(x.data(), 16, 4, 8, 64, 8), nullptr) << "another stride";
  copies.drop();
  EXPECT_EQ(copies.find(x.data(), 8, 8, 8, 64, 8), nullptr);
  EXPECT_EQ(copies.add(x.data() + 8, 8, 7, 8, 64, 8).data.data(), storage) << "the storage is reused";
}

}  // namespace
}  // namespace moelab::cpu
