// stream_copy (stream_copy.h): every value arrives, float or bf16, at any alignment of the destination and any
// length (a plain head before the first 64-byte boundary, streamed whole vectors, a plain tail), on one thread and
// split over two, and nothing outside the destination changes.
#include <gtest/gtest.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "backend/cpu/stream_copy.h"
#include "support/omp_threads.h"

namespace moelab::cpu {
namespace {

// The destination's surroundings hold kGuard.
template <typename T>
void expect_exact_copy(int64_t offset, int64_t n) {
  const T kGuard = std::is_same_v<T, float> ? T(-7.5f) : T(0xfffe);
  std::vector<T> src(n);  // [n]
  for (int64_t i = 0; i < n; ++i) src[i] = std::is_same_v<T, float> ? T(static_cast<float>(i) * 0.25f + 1.0f) : T(i);
  // 64-byte aligned (src/core/aligned_new.cpp) when large; offset moves the destination off the boundary.
  std::vector<T> dst(offset + n + 32, kGuard);  // [offset + n + 32]
  stream_copy(dst.data() + offset, src.data(), n);
  for (int64_t i = 0; i < offset; ++i) ASSERT_EQ(dst[i], kGuard) << "before the destination, index " << i;
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(dst[offset + i], src[i]) << "offset " << offset << " n " << n << " i " << i;
  for (int64_t i = offset + n; i < static_cast<int64_t>(dst.size()); ++i)
    ASSERT_EQ(dst[i], kGuard) << "after the destination, index " << i;
}

TEST(StreamCopy, CopiesEveryValueAtAnyAlignmentAndLength) {
  for (int64_t offset = 0; offset < 33; ++offset)
    for (int64_t n : {0, 1, 3, 15, 16, 17, 31, 33, 100, 1000, 4099}) {
      if (offset < 17) expect_exact_copy<float>(offset, n);
      expect_exact_copy<uint16_t>(offset, n);  // bf16 values: 32 per line
    }
}

TEST(StreamCopy, CopiesLongRangesOnOneThreadOrTwo) {
  for (int threads : {1, 2}) {
    const testing::OmpThreads scope(threads);
    for (int64_t offset : {0, 5}) {
      expect_exact_copy<float>(offset, (int64_t{1} << 17) + 13);
      expect_exact_copy<uint16_t>(offset, (int64_t{1} << 18) + 13);
    }
  }
}

TEST(StreamCopy, DoublesAreCopiedToo) {
  const std::vector<double> src = {1.5, -2.0, 3.25};
  std::vector<double> dst(3, 0.0);
  stream_copy(dst.data(), src.data(), 3);
  EXPECT_EQ(dst, src);
}

}  // namespace
}  // namespace moelab::cpu
