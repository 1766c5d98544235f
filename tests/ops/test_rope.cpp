#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "ops/rope.h"
#include "support/gradcheck.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

using testing::OmpThreads;
using testing::random_vector;

// Plain reference, written from the definition: pair (i, i + D/2) at position t turns by t * theta^(-2i/D).
std::vector<double> rope_reference(const std::vector<double>& x, int64_t B, int64_t T, int64_t H, int64_t D,
                                   double theta) {
  std::vector<double> y(x.size());
  const int64_t half = D / 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const double angle = t * std::pow(theta, -2.0 * i / D);
          const int64_t lo = ((b * T + t) * H + h) * D + i, hi = lo + half;
          y[lo] = x[lo] * std::cos(angle) - x[hi] * std::sin(angle);
          y[hi] = x[hi] * std::cos(angle) + x[lo] * std::sin(angle);
        }
  return y;
}

struct RopeShape {
  int64_t B, T, H, D;
};

class RopeShapes : public ::testing::TestWithParam<RopeShape> {};

TEST_P(RopeShapes, ForwardFloatMatchesReference) {
  auto [B, T, H, D] = GetParam();
  auto x = random_vector(B * T * H * D, 1);
  auto y = testing::to_float(x);
  ops::rope_forward(y.data(), B, T, H, D, 10000.0);
  EXPECT_LT(testing::max_rel_error(y, rope_reference(x, B, T, H, D, 10000.0)), 1e-5);
}

TEST_P(RopeShapes, BackwardMatchesFiniteDifferences) {
  auto [B, T, H, D] = GetParam();
  auto x = random_vector(B * T * H * D, 2), r = random_vector(B * T * H * D, 3);
  auto d_x = r;
  ops::rope_backward(d_x.data(), B, T, H, D, 10000.0);
  std::vector<double> y;
  auto loss = [&] {
    y = x;
    ops::rope_forward(y.data(), B, T, H, D, 10000.0);
    return testing::dot(y, r);
  };
  // The analytic gradient above took the parallel path where the shape is large enough; the finite differences
  // run the forward hundreds of times, serially, since on a loaded machine each parallel region can wait a whole
  // time slice for a descheduled thread. (The forward's parallel path is checked by the forward test.)
  const OmpThreads serial(1);
  testing::expect_gradient_matches("d_x", x, d_x, loss);
}

TEST_P(RopeShapes, BackwardAfterForwardRestoresInput) {
  auto [B, T, H, D] = GetParam();
  auto x = random_vector<float>(B * T * H * D, 4);
  auto y = x;
  ops::rope_forward(y.data(), B, T, H, D, 10000.0);
  ops::rope_backward(y.data(), B, T, H, D, 10000.0);
  EXPECT_LT(testing::max_rel_error(y, x), 1e-6);
}

TEST(Rope, PositionZeroIsIdentityAndPairNormsArePreserved) {
  const int64_t B = 2, T = 50, H = 3, D = 8, half = D / 2;
  auto x = random_vector(B * T * H * D, 5);
  auto y = x;
  ops::rope_forward(y.data(), B, T, H, D, 10000.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t d = 0; d < D; ++d) {
        const int64_t at = (b * T * H + h) * D + d;  // t = 0
        EXPECT_EQ(y[at], x[at]);
      }
  for (int64_t row = 0; row < B * T * H; ++row)
    for (int64_t i = 0; i < half; ++i) {
      const int64_t lo = row * D + i, hi = lo + half;
      EXPECT_NEAR(y[lo] * y[lo] + y[hi] * y[hi], x[lo] * x[lo] + x[hi] * x[hi], 1e-14);
    }
}

TEST(Rope, FarPositionsStayAccurate) {
  // Angles up to ~4000 rad, where floats are 4.9e-4 apart: an angle t * theta^(-2i/D) rounded to float would be
  // off by up to ~2.4e-4 rad, i.e. ~2e-4 relative error in y, far above the 1e-6 asked here.
  const int64_t T = 4096, D = 64;
  auto x = random_vector(T * D, 6);
  auto y = testing::to_float(x);
  ops::rope_forward(y.data(), 1, T, 1, D, 10000.0);
  EXPECT_LT(testing::max_rel_error(y, rope_reference(x, 1, T, 1, D, 10000.0)), 1e-6);
}

TEST(Rope, ResultDoesNotDependOnEarlierCalls) {
  // Calls with different lengths, head sizes and bases in a row must each match the reference on their own.
  const RopeShape shapes[] = {{1, 5, 2, 6}, {1, 9, 2, 6}, {1, 3, 2, 6}, {1, 9, 1, 10}, {1, 9, 1, 10}};
  const double thetas[] = {10000.0, 10000.0, 10000.0, 10000.0, 500000.0};
  for (int k = 0; k < 5; ++k) {
    auto [B, T, H, D] = shapes[k];
    auto x = random_vector(B * T * H * D, 7 + k);
    auto y = x;
    ops::rope_forward(y.data(), B, T, H, D, thetas[k]);
    EXPECT_LT(testing::max_rel_error(y, rope_reference(x, B, T, H, D, thetas[k])), 1e-14) << "call " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RopeShapes,
                         ::testing::Values(RopeShape{1, 1, 1, 2}, RopeShape{2, 7, 3, 10}, RopeShape{3, 13, 5, 6},
                                           RopeShape{2, 64, 4, 64}));

}  // namespace
}  // namespace moelab
