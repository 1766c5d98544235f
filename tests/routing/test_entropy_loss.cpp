#include <gtest/gtest.h>

#include <cmath>
#include <ostream>

#include "routing/entropy_loss.h"
#include "support/gradcheck.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

TEST(EntropyLoss, UniformGivesLogE) {
  for (int64_t E : {1, 2, 5, 64}) {
    const int64_t N = 3;
    const std::vector<double> probs(N * E, 1.0 / E);
    EXPECT_NEAR(routing::entropy_loss_forward(probs.data(), N, E), std::log(double(E)), 1e-14) << "E = " << E;
    const std::vector<float> probs_f(N * E, 1.0f / E);
    EXPECT_NEAR(routing::entropy_loss_forward(probs_f.data(), N, E), std::log(double(E)), 1e-6) << "E = " << E;
  }
}

TEST(EntropyLoss, OneHotGivesZeroAndFiniteGradient) {
  const std::vector<double> probs = {0.0, 1.0, 0.0,  //
                                     0.0, 0.0, 1.0};
  EXPECT_EQ(routing::entropy_loss_forward(probs.data(), 2, 3), 0.0);
  // -(coef / N) (log p + 1), with p = 0 clamped to the smallest normal float.
  const double coef = 0.5, c = -coef / 2, at_zero = c * (std::log(routing::kEntropyLogFloor) + 1);
  EXPECT_NEAR(at_zero, 0.25 * 86.3365, 1e-3);  // log of the floor is -87.3365
  std::vector<double> d(6, 1.0);
  routing::entropy_loss_backward(d.data(), coef, probs.data(), 2, 3);
  const std::vector<double> want = {1 + at_zero, 1 + c,       1 + at_zero,  //
                                    1 + at_zero, 1 + at_zero, 1 + c};
  for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(d[i], want[i], 1e-13) << i;
  std::vector<float> d_f(6, 1.0f);
  const auto probs_f = testing::to_float(probs);
  routing::entropy_loss_backward(d_f.data(), coef, probs_f.data(), 2, 3);
  for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(d_f[i], want[i], 1e-5) << i;
}

TEST(EntropyLoss, HandComputedTwoExperts) {
  const std::vector<double> probs = {0.25, 0.75,  //
                                     0.5, 0.5};
  const double h0 = -(0.25 * std::log(0.25) + 0.75 * std::log(0.75)), h1 = std::log(2.0);
  EXPECT_NEAR(routing::entropy_loss_forward(probs.data(), 2, 2), (h0 + h1) / 2, 1e-15);
  // Added to what is there (2): 2 - coef/N (log p + 1).
  std::vector<double> d(4, 2.0);
  routing::entropy_loss_backward(d.data(), 0.1, probs.data(), 2, 2);
  const double c = -0.1 / 2;
  const std::vector<double> want = {2 + c * (std::log(0.25) + 1), 2 + c * (std::log(0.75) + 1),
                                    2 + c * (std::log(0.5) + 1), 2 + c * (std::log(0.5) + 1)};
  for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(d[i], want[i], 1e-15) << i;
}

// Random rows of positive probabilities summing to 1, some of them exactly 0.
std::vector<double> random_probs(int64_t N, int64_t E, uint64_t seed, bool with_zeros) {
  auto p = testing::random_vector(N * E, seed);
  for (int64_t t = 0; t < N; ++t) {
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) {
      double& v = p[t * E + e];
      v = (with_zeros && v < -0.6) ? 0.0 : std::exp(2 * v);
      sum += v;
    }
    if (sum == 0) p[t * E] = sum = 1;
    for (int64_t e = 0; e < E; ++e) p[t * E + e] /= sum;
  }
  return p;
}

struct EntropyLossCase {
  int N, E;
};
void PrintTo(const EntropyLossCase& c, std::ostream* os) { *os << "N=" << c.N << " E=" << c.E; }
class EntropyLossGradient : public ::testing::TestWithParam<EntropyLossCase> {};
class EntropyLossShapes : public ::testing::TestWithParam<EntropyLossCase> {};

TEST_P(EntropyLossGradient, MatchesFiniteDifferencesAndAdds) {
  auto [N, E] = GetParam();
  auto probs = random_probs(N, E, 81 + N, false);
  const double coef = 0.37;
  const auto base = testing::random_vector(N * E, 82);
  auto d = base;
  routing::entropy_loss_backward(d.data(), coef, probs.data(), N, E);
  for (size_t i = 0; i < d.size(); ++i) d[i] -= base[i];
  auto loss = [&] { return coef * routing::entropy_loss_forward(probs.data(), N, E); };
  testing::expect_gradient_matches("d_probs", probs, d, loss);
}

TEST_P(EntropyLossShapes, FloatMatchesDouble) {
  auto [N, E] = GetParam();
  const auto probs = random_probs(N, E, 83 + N, true);
  const auto probs_f = testing::to_float(probs);
  const double want = routing::entropy_loss_forward(probs.data(), N, E);
  EXPECT_NEAR(routing::entropy_loss_forward(probs_f.data(), N, E), want, 1e-6 * std::max(want, 1.0));
  // The forward widens to double: bit-identical to the double forward on the widened values.
  EXPECT_EQ(routing::entropy_loss_forward(probs_f.data(), N, E),
            routing::entropy_loss_forward(testing::to_double(probs_f).data(), N, E));
  std::vector<double> d(N * E, 0.0);
  std::vector<float> d_f(N * E, 0.f);
  routing::entropy_loss_backward(d.data(), 1.0, probs.data(), N, E);
  routing::entropy_loss_backward(d_f.data(), 1.0, probs_f.data(), N, E);
  EXPECT_LT(testing::max_rel_error(d_f, d), 1e-6);
  for (float g : d_f) ASSERT_TRUE(std::isfinite(g));
}

// 97 tokens: more than the forward's 64 blocks. The gradient shapes keep E small: with E = 64 probabilities near
// 1e-3 make the finite difference's truncation error (h^2 / p^2) exceed the tolerance. (300, 64) crosses the
// threads threshold.
INSTANTIATE_TEST_SUITE_P(Shapes, EntropyLossGradient,
                         ::testing::Values(EntropyLossCase{.N = 1, .E = 1}, EntropyLossCase{.N = 3, .E = 2},
                                           EntropyLossCase{.N = 17, .E = 7}, EntropyLossCase{.N = 97, .E = 16}));
INSTANTIATE_TEST_SUITE_P(Shapes, EntropyLossShapes,
                         ::testing::Values(EntropyLossCase{.N = 1, .E = 1}, EntropyLossCase{.N = 3, .E = 2},
                                           EntropyLossCase{.N = 17, .E = 7}, EntropyLossCase{.N = 97, .E = 16},
                                           EntropyLossCase{.N = 300, .E = 64}));

TEST(EntropyLoss, IndependentOfThreadCount) {
  const int64_t N = 1000, E = 32;
  const auto probs = testing::to_float(random_probs(N, E, 84, true));
  auto value = [&](int threads) {
    testing::OmpThreads guard(threads);
    return routing::entropy_loss_forward(probs.data(), N, E);
  };
  EXPECT_EQ(value(1), value(2));
}

}  // namespace
}  // namespace moelab
