#include <gtest/gtest.h>

#include <ostream>

#include "routing/load_balance_loss.h"
#include "routing/random_plan.h"
#include "routing/top_k.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

// 3 tokens, 2 experts. P = mean probabilities = {2/3, 1/3}.
const std::vector<double> kProbs = {0.7, 0.3,  //
                                    0.4, 0.6,  //
                                    0.9, 0.1};

TEST(LoadBalance, HandComputedTop1) {
  routing::DispatchPlan<double> plan;
  routing::top_k_forward(plan, kProbs.data(), 3, 2, 1, false);  // experts 0, 1, 0: f = {2/3, 1/3}
  // 2 * (2/3 * 2/3 + 1/3 * 1/3) = 10/9
  EXPECT_NEAR(routing::load_balance_forward(kProbs.data(), plan, 1.0), 10.0 / 9.0, 1e-15);
  // d/dp[t,i] = coef * E * f_i / N = coef * 2 * {2/3, 1/3} / 3
  std::vector<double> d(6, 1.0);
  routing::load_balance_backward(d.data(), 0.5, plan, 1.0);
  for (int t = 0; t < 3; ++t) {
    EXPECT_NEAR(d[t * 2 + 0], 1.0 + 0.5 * 2 * (2.0 / 3) / 3, 1e-15);
    EXPECT_NEAR(d[t * 2 + 1], 1.0 + 0.5 * 2 * (1.0 / 3) / 3, 1e-15);
  }
}

TEST(LoadBalance, HandComputedTop2DividedAndNot) {
  routing::DispatchPlan<double> plan;
  routing::top_k_forward(plan, kProbs.data(), 3, 2, 2, true);  // every token uses both experts
  // divided by k = 2: f = {1/2, 1/2}, loss = 2 * (1/2 * 2/3 + 1/2 * 1/3) = 1
  EXPECT_NEAR(routing::load_balance_forward(kProbs.data(), plan, 2.0), 1.0, 1e-15);
  // not divided (top-p convention): f = {1, 1}, loss = 2 * (2/3 + 1/3) = 2
  EXPECT_NEAR(routing::load_balance_forward(kProbs.data(), plan, 1.0), 2.0, 1e-15);
}

TEST(LoadBalance, FloatMatchesDouble) {
  const int64_t N = 300, E = 64;
  auto probs = testing::random_vector(N * E, 61);
  auto plan = testing::random_plan(N, E, 4, 62);
  auto probs_f = testing::to_float(probs);
  auto plan_f = testing::random_plan<float>(N, E, 4, 62);
  EXPECT_NEAR(routing::load_balance_forward(probs_f.data(), plan_f, 2.0),
              routing::load_balance_forward(probs.data(), plan, 2.0), 1e-6);
}

struct LoadBalanceCase {
  int N, E, max_slots;
};
void PrintTo(const LoadBalanceCase& c, std::ostream* os) {
  *os << "N=" << c.N << " E=" << c.E << " max_slots=" << c.max_slots;
}
class LoadBalanceGradient : public ::testing::TestWithParam<LoadBalanceCase> {};

// Through P only: the plan (hence f) is held fixed, as in training.
TEST_P(LoadBalanceGradient, MatchesFiniteDifferencesAndAdds) {
  auto [N, E, max_slots] = GetParam();
  auto probs = testing::random_vector(N * E, 63);
  auto plan = testing::random_plan(N, E, max_slots, 64);
  const double coef = 0.37, divisor = 1.5;
  auto base = testing::random_vector(N * E, 65);
  auto d = base;
  routing::load_balance_backward(d.data(), coef, plan, divisor);
  for (size_t i = 0; i < d.size(); ++i) d[i] -= base[i];
  auto loss = [&] { return coef * routing::load_balance_forward(probs.data(), plan, divisor); };
  testing::expect_gradient_matches("d_probs", probs, d, loss);
}

INSTANTIATE_TEST_SUITE_P(Shapes, LoadBalanceGradient,
                         ::testing::Values(LoadBalanceCase{.N = 1, .E = 1, .max_slots = 1},
                                           LoadBalanceCase{.N = 7, .E = 3, .max_slots = 2},
                                           LoadBalanceCase{.N = 29, .E = 8, .max_slots = 3},
                                           LoadBalanceCase{.N = 300, .E = 64, .max_slots = 4}));

}  // namespace
}  // namespace moelab
