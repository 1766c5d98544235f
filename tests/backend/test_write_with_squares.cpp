// copy_with_squares / add_with_squares (write_with_squares.h): every value written as a copy or a sum, nothing
// outside the destination touched, and the returned sum of squares equal bit for bit to ordered_sum's over the
// values written, at any alignment and length (streamed whole vectors and plain tails), on one thread or two.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "backend/cpu/write_with_squares.h"
#include "core/ordered_sum.h"
#include "core/rng.h"
#include "support/omp_threads.h"

namespace moelab::cpu {
namespace {

constexpr float kGuard = -7.5f;  // what the destination's surroundings hold

std::vector<float> random_values(int64_t n, uint64_t seed) {
  Rng rng(seed, 0);
  std::vector<float> v(n);  // [n]
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

double ordered_squares(const float* v, int64_t n) {
  return ordered_sum(n, false, [&](int64_t i) { return static_cast<double>(v[i]) * v[i]; });
}

void expect_writes_and_sums(bool add, int64_t offset, int64_t n) {
  const std::vector<float> src = random_values(n, 1), before = random_values(n, 2);  // [n] each
  // 64-byte aligned (src/core/aligned_new.cpp) when large; offset moves the destination off the boundary.
  std::vector<float> dst(offset + n + 32, kGuard);  // [offset + n + 32]
  if (add) std::copy(before.begin(), before.end(), dst.begin() + offset);
  const double squares = add ? add_with_squares(dst.data() + offset, src.data(), n)
                             : copy_with_squares(dst.data() + offset, src.data(), n);
  for (int64_t i = 0; i < offset; ++i) ASSERT_EQ(dst[i], kGuard) << "before the destination, index " << i;
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(dst[offset + i], add ? before[i] + src[i] : src[i]) << "offset " << offset << " n " << n << " i " << i;
  for (int64_t i = offset + n; i < static_cast<int64_t>(dst.size()); ++i)
    ASSERT_EQ(dst[i], kGuard) << "after the destination, index " << i;
  EXPECT_EQ(squares, ordered_squares(dst.data() + offset, n)) << "add " << add << " offset " << offset << " n " << n;
}

TEST(WriteWithSquares, WritesEveryValueAndSumsAsOrderedSumAtAnyAlignmentAndLength) {
  for (bool add : {false, true})
    for (int64_t offset : {0, 1, 5, 15, 16})
      for (int64_t n : {0, 1, 7, 8, 15, 16, 17, 64 * 16, 64 * 16 + 9, 1000, 4099, 70001})
        expect_writes_and_sums(add, offset, n);
}

TEST(WriteWithSquares, SameBitsOnOneThreadOrTwo) {
  const int64_t n = (int64_t{1} << 17) + 13;  // past the size where a second thread joins
  for (bool add : {false, true}) {
    double one = 0;
    for (int threads : {1, 2}) {
      const testing::OmpThreads scope(threads);
      expect_writes_and_sums(add, 3, n);
      std::vector<float> dst = random_values(n, 2);
      const std::vector<float> src = random_values(n, 1);
      const double squares =
          add ? add_with_squares(dst.data(), src.data(), n) : copy_with_squares(dst.data(), src.data(), n);
      if (threads == 1)
        one = squares;
      else
        EXPECT_EQ(squares, one) << "add " << add;
    }
  }
}

TEST(WriteWithSquares, DoublesToo) {
  const std::vector<double> src = {1.5, -2.0, 3.0};
  std::vector<double> dst = {1.0, 1.0, 1.0};
  EXPECT_EQ(add_with_squares(dst.data(), src.data(), 3), 2.5 * 2.5 + 1.0 + 16.0);
  EXPECT_EQ(dst, (std::vector<double>{2.5, -1.0, 4.0}));
  EXPECT_EQ(copy_with_squares(dst.data(), src.data(), 3), 2.25 + 4.0 + 9.0);
  EXPECT_EQ(dst, src);
}

}  // namespace
}  // namespace moelab::cpu
