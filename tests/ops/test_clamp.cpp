// clip_qkv's clamp: values beyond the limit become the limit and pass no gradient; values at the limit or inside it
// pass theirs (torch.clamp's convention).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/clamp.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

TEST(Clamp, ForwardClampsAndMarksOnlyValuesBeyondTheLimit) {
  std::vector<double> x = {-3.0, -1.5, -1.0, 0.25, 1.0, 1.0000001, 7.0};
  const std::vector<double> want = {-1.0, -1.0, -1.0, 0.25, 1.0, 1.0, 1.0};
  const std::vector<uint8_t> want_clipped = {1, 1, 0, 0, 0, 1, 1};
  std::vector<uint8_t> clipped(x.size(), 9);
  ops::clamp_forward(x.data(), clipped.data(), static_cast<int64_t>(x.size()), 1.0);
  EXPECT_EQ(x, want);
  EXPECT_EQ(clipped, want_clipped);
}

TEST(Clamp, BackwardMatchesFiniteDifferencesAwayFromTheLimit) {
  const int64_t n = 40;
  auto x = testing::random_vector(n, 1, 3.0), r = testing::random_vector(n, 2);
  for (double& v : x)  // keep every value at least 0.1 away from the limit, where the clamp has no derivative
    if (std::abs(std::abs(v) - 1.0) < 0.1) v += 0.3;
  std::vector<uint8_t> clipped(n);
  auto loss = [&] {
    auto y = x;
    ops::clamp_forward(y.data(), clipped.data(), n, 1.0);
    return testing::dot(y, r);
  };
  loss();
  ASSERT_GT(std::count(clipped.begin(), clipped.end(), 1), 5) << "the case must clip some values";
  ASSERT_GT(std::count(clipped.begin(), clipped.end(), 0), 5) << "and keep others";
  auto d = r;
  ops::clamp_backward(d.data(), clipped.data(), n);
  testing::expect_gradient_matches("d_x", x, d, loss);
}

}  // namespace
}  // namespace moelab
