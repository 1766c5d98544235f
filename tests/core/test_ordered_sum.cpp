// ordered_sum: the same bits for any thread count, every term counted once (odd lengths and tails included),
// and as accurate as a plain double sum.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/ordered_sum.h"
#include "core/rng.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

TEST(OrderedSum, CountsEveryTermOnceForAnyLength) {
  for (int64_t n : {0, 1, 7, 8, 9, 63, 64, 65, 511, 513, 100003}) {
    // Integers: exact in double, so any order must give exactly n(n-1)/2.
    EXPECT_EQ(ordered_sum(n, true, [](int64_t i) { return static_cast<double>(i); }),
              static_cast<double>(n) * static_cast<double>(n - 1) / 2)
        << n;
  }
}

TEST(OrderedSum, SameBitsForAnyThreadCountAndCloseToALongDoubleSum) {
  Rng rng(4, 0);
  std::vector<float> x(1'000'003);
  for (float& v : x) v = static_cast<float>(rng.normal());
  auto square = [&](int64_t i) { return static_cast<double>(x[i]) * x[i]; };
  auto sum_on = [&](int threads) {
    testing::OmpThreads t(threads);
    return ordered_sum(static_cast<int64_t>(x.size()), true, square);
  };
  const double one = sum_on(1), two = sum_on(2), three = sum_on(3);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, three);
  EXPECT_EQ(one, ordered_sum(static_cast<int64_t>(x.size()), false, square));
  long double reference = 0;
  for (size_t i = 0; i < x.size(); ++i) reference += static_cast<long double>(square(i));
  EXPECT_NEAR(one, static_cast<double>(reference), 1e-12 * static_cast<double>(reference));
}

}  // namespace
}  // namespace moelab
