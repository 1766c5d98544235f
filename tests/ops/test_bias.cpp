// The row bias of a linear layer: forward against a plain loop, the bias gradient by finite differences, and the
// sum over rows the same bits whatever the thread count.
#include <gtest/gtest.h>

#include <vector>

#include "ops/bias.h"
#include "support/gradcheck.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

using testing::random_vector;

TEST(Bias, ForwardAddsTheBiasToEveryRow) {
  const int64_t N = 5, C = 7;
  auto y = random_vector(N * C, 1), b = random_vector(C, 2);
  auto want = y;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) want[n * C + c] += b[c];
  ops::bias_forward(y.data(), b.data(), N, C);
  EXPECT_EQ(y, want);
}

TEST(Bias, BackwardMatchesFiniteDifferencesAndAccumulates) {
  const int64_t N = 6, C = 70;  // more columns than one block of the backward
  auto x = random_vector(N * C, 3), b = random_vector(C, 4), r = random_vector(N * C, 5);
  auto loss = [&] {
    auto y = x;
    ops::bias_forward(y.data(), b.data(), N, C);
    return testing::dot(y, r);
  };
  std::vector<double> d_b(C, 0.0);
  ops::bias_backward(d_b.data(), r.data(), N, C);
  testing::expect_gradient_matches("d_b", b, d_b, loss);
  std::vector<double> twice = d_b;
  ops::bias_backward(twice.data(), r.data(), N, C);
  for (int64_t c = 0; c < C; ++c) EXPECT_DOUBLE_EQ(twice[c], 2 * d_b[c]) << "accumulates";
}

TEST(Bias, TheGradientIsTheSameBitsForAnyThreadCount) {
  const int64_t N = 600, C = 130;  // large enough for the parallel path
  const auto d_y = testing::to_float(random_vector(N * C, 6));
  std::vector<float> one(C, 0.0f), two(C, 0.0f);
  {
    const testing::OmpThreads threads(1);
    ops::bias_backward(one.data(), d_y.data(), N, C);
  }
  {
    const testing::OmpThreads threads(2);
    ops::bias_backward(two.data(), d_y.data(), N, C);
  }
  EXPECT_EQ(one, two);
}

}  // namespace
}  // namespace moelab
