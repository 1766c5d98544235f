#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <ostream>

#include "routing/z_loss.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

TEST(ZLoss, HandComputed) {
  // logsumexp per token: ln 2, ln(3 + 1) = ln 4, 1 + ln 2.
  const std::vector<double> logits = {0.0,           0.0,  //
                                      std::log(3.0), 0.0,  //
                                      1.0,           1.0};
  const double l2 = std::log(2.0), l4 = std::log(4.0);
  const double want = (l2 * l2 + l4 * l4 + (1 + l2) * (1 + l2)) / 3;
  EXPECT_NEAR(routing::z_loss_forward(logits.data(), 3, 2), want, 1e-15);
  // d/dl[t,i] = coef * 2/N * lse_t * softmax_i, added to what is there (1). Softmaxes: {1/2, 1/2}, {3/4, 1/4},
  // {1/2, 1/2}.
  std::vector<double> d(6, 1.0);
  routing::z_loss_backward(d.data(), 0.5, logits.data(), 3, 2);
  const double c = 0.5 * 2 / 3;
  const std::vector<double> want_d = {1 + c * l2 * 0.5,       1 + c * l2 * 0.5,   //
                                      1 + c * l4 * 0.75,      1 + c * l4 * 0.25,  //
                                      1 + c * (1 + l2) * 0.5, 1 + c * (1 + l2) * 0.5};
  for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(d[i], want_d[i], 1e-15) << i;
}

TEST(ZLoss, LargeLogitsDoNotOverflow) {
  const std::vector<float> logits = {1000.f, 1000.f, -1000.f};
  const double lse = 1000.0 + std::log(2.0);
  EXPECT_NEAR(routing::z_loss_forward(logits.data(), 1, 3), lse * lse, 1e-9 * lse * lse);
  std::vector<float> d(3, 0.f);
  routing::z_loss_backward(d.data(), 1.0, logits.data(), 1, 3);
  EXPECT_NEAR(d[0], lse, 1e-3);
  EXPECT_NEAR(d[1], lse, 1e-3);
  EXPECT_EQ(d[2], 0.f);
}

struct ZLossCase {
  int N, E;
};
void PrintTo(const ZLossCase& c, std::ostream* os) { *os << "N=" << c.N << " E=" << c.E; }
class ZLossGradient : public ::testing::TestWithParam<ZLossCase> {};
class ZLossShapes : public ::testing::TestWithParam<ZLossCase> {};

TEST_P(ZLossGradient, MatchesFiniteDifferencesAndAdds) {
  auto [N, E] = GetParam();
  auto logits = testing::random_vector(N * E, 71, 3.0);
  const double coef = 0.29;
  auto base = testing::random_vector(N * E, 72);
  auto d = base;
  routing::z_loss_backward(d.data(), coef, logits.data(), N, E);
  for (size_t i = 0; i < d.size(); ++i) d[i] -= base[i];
  auto loss = [&] { return coef * routing::z_loss_forward(logits.data(), N, E); };
  testing::expect_gradient_matches("d_logits", logits, d, loss);
}

TEST_P(ZLossShapes, FloatMatchesDouble) {
  auto [N, E] = GetParam();
  auto logits = testing::random_vector(N * E, 73, 3.0);
  auto logits_f = testing::to_float(logits);
  const double want = routing::z_loss_forward(testing::to_double(logits_f).data(), N, E);
  EXPECT_NEAR(routing::z_loss_forward(logits_f.data(), N, E), want, 1e-12 * want);
  std::vector<double> d(N * E, 0.0);
  std::vector<float> d_f(N * E, 0.f);
  routing::z_loss_backward(d.data(), 1.0, logits.data(), N, E);
  routing::z_loss_backward(d_f.data(), 1.0, logits_f.data(), N, E);
  EXPECT_LT(testing::max_rel_error(d_f, d), 1e-6);
}

// 97 tokens: more than the forward's 64 blocks, some blocks with 1 token and some with 2.
INSTANTIATE_TEST_SUITE_P(Shapes, ZLossGradient,
                         ::testing::Values(ZLossCase{.N = 1, .E = 1}, ZLossCase{.N = 3, .E = 2},
                                           ZLossCase{.N = 17, .E = 7}, ZLossCase{.N = 97, .E = 16}));
// (300, 64) also crosses the threads threshold.
INSTANTIATE_TEST_SUITE_P(Shapes, ZLossShapes,
                         ::testing::Values(ZLossCase{.N = 1, .E = 1}, ZLossCase{.N = 3, .E = 2},
                                           ZLossCase{.N = 97, .E = 16}, ZLossCase{.N = 300, .E = 64}));

TEST(ZLoss, IndependentOfThreadCount) {
  const int64_t N = 1000, E = 32;
  auto logits = testing::random_vector<float>(N * E, 74, 5.0);
  auto value = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    const double v = routing::z_loss_forward(logits.data(), N, E);
    omp_set_num_threads(saved);
    return v;
  };
  EXPECT_EQ(value(1), value(2));
}

}  // namespace
}  // namespace moelab
