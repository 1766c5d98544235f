#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <ostream>

#include "routing/top_k.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using routing::DispatchPlan;

struct Selected {
  std::vector<int32_t> experts;
  std::vector<double> weights;
};

Selected token_slots(const DispatchPlan<double>& plan, int64_t t) {
  Selected s;
  for (int32_t i = plan.token_offsets[t]; i < plan.token_offsets[t + 1]; ++i) {
    s.experts.push_back(plan.slot_expert[i]);
    s.weights.push_back(plan.slot_weight[i]);
  }
  return s;
}

void expect_weights(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-15) << "slot " << i;
}

TEST(TopK, K1) {
  const std::vector<double> probs = {0.1, 0.6, 0.3,  //
                                     0.5, 0.2, 0.3};
  DispatchPlan<double> plan;
  routing::top_k_forward(plan, probs.data(), 2, 3, 1, false);
  EXPECT_EQ(plan.token_offsets, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{1, 0}));
  expect_weights(plan.slot_weight, {0.6, 0.5});
  EXPECT_EQ(plan.expert_offsets, (std::vector<int32_t>{0, 1, 2, 2}));
  EXPECT_EQ(plan.row_token, (std::vector<int32_t>{1, 0}));
  routing::top_k_forward(plan, probs.data(), 2, 3, 1, true);  // renormalised over one expert: weight 1
  expect_weights(plan.slot_weight, {1.0, 1.0});
}

TEST(TopK, K2RawAndRenormalized) {
  const std::vector<double> probs = {0.1, 0.2,  0.3, 0.4,  //
                                     0.5, 0.05, 0.4, 0.05};
  DispatchPlan<double> plan;
  routing::top_k_forward(plan, probs.data(), 2, 4, 2, false);
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{3, 2, 0, 2}));
  expect_weights(plan.slot_weight, {0.4, 0.3, 0.5, 0.4});
  routing::top_k_forward(plan, probs.data(), 2, 4, 2, true);
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{3, 2, 0, 2}));
  expect_weights(plan.slot_weight, {0.4 / 0.7, 0.3 / 0.7, 0.5 / 0.9, 0.4 / 0.9});
  EXPECT_EQ(plan.expert_offsets, (std::vector<int32_t>{0, 1, 1, 3, 4}));
  EXPECT_EQ(plan.row_token, (std::vector<int32_t>{1, 0, 1, 0}));
}

TEST(TopK, TiesGoToLowerExpertIndex) {
  const std::vector<double> probs = {0.25, 0.25, 0.25, 0.25,  //
                                     0.1,  0.4,  0.1,  0.4,   //
                                     0.3,  0.1,  0.3,  0.3};
  DispatchPlan<double> plan;
  routing::top_k_forward(plan, probs.data(), 3, 4, 3, false);
  EXPECT_EQ(token_slots(plan, 0).experts, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(token_slots(plan, 1).experts, (std::vector<int32_t>{1, 3, 0}));
  EXPECT_EQ(token_slots(plan, 2).experts, (std::vector<int32_t>{0, 2, 3}));
  routing::top_k_forward(plan, probs.data(), 3, 4, 1, false);
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{0, 1, 0}));
}

TEST(TopK, KEqualsEKeepsEveryExpertInDescendingOrder) {
  const std::vector<double> probs = {0.2, 0.5, 0.1, 0.2};
  DispatchPlan<double> plan;
  routing::top_k_forward(plan, probs.data(), 1, 4, 4, true);
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{1, 0, 3, 2}));
  expect_weights(plan.slot_weight, {0.5, 0.2, 0.2, 0.1});  // the probabilities sum to 1 already
  EXPECT_EQ(plan.expert_offsets, (std::vector<int32_t>{0, 1, 2, 3, 4}));
}

// Against a stable sort of every row, in float, on a size large enough to run threaded.
TEST(TopK, FloatMatchesSortReference) {
  const int64_t N = 300, E = 64, k = 5;
  auto probs = testing::random_vector<float>(N * E, 21);
  for (auto& p : probs) p = std::round(std::abs(p) * 64) / 64;  // coarse values in [0, 1]: many ties
  DispatchPlan<float> plan;
  routing::top_k_forward(plan, probs.data(), N, E, k, true);
  ASSERT_EQ(plan.n_slots(), N * k);
  std::vector<int32_t> order(E);
  for (int64_t t = 0; t < N; ++t) {
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return probs[t * E + a] > probs[t * E + b]; });
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += probs[t * E + order[j]];
    for (int64_t j = 0; j < k; ++j) {
      ASSERT_EQ(plan.slot_expert[t * k + j], order[j]) << "token " << t << " slot " << j;
      ASSERT_NEAR(plan.slot_weight[t * k + j], probs[t * E + order[j]] / sum, 1e-6);
    }
  }
}

// Probabilities a perturbation of 1e-5 cannot reorder: each row a random permutation of well-spaced values.
std::vector<double> separated_probs(int64_t N, int64_t E, uint64_t seed) {
  Rng rng(seed, 0);
  std::vector<double> p(N * E);
  std::vector<int64_t> order(E);
  for (int64_t t = 0; t < N; ++t) {
    std::iota(order.begin(), order.end(), 0);
    for (int64_t j = E - 1; j > 0; --j) std::swap(order[j], order[rng.below(j + 1)]);
    for (int64_t e = 0; e < E; ++e) p[t * E + e] = (order[e] + 1 + 0.5 * rng.uniform()) / (E + 1.0);
  }
  return p;
}

struct TopKCase {
  int N, E, k;
  bool renormalize;
};
void PrintTo(const TopKCase& c, std::ostream* os) {
  *os << "N=" << c.N << " E=" << c.E << " k=" << c.k << " renormalize=" << c.renormalize;
}
class TopKGradient : public ::testing::TestWithParam<TopKCase> {};

TEST_P(TopKGradient, MatchesFiniteDifferences) {
  auto [N, E, k, renormalize] = GetParam();
  auto probs = separated_probs(N, E, 22 + N);
  DispatchPlan<double> plan;
  routing::top_k_forward(plan, probs.data(), N, E, k, renormalize);
  const auto selected = plan.slot_expert;
  auto r = testing::random_vector(plan.n_slots(), 23);  // loss = sum_s r_s * w_s
  std::vector<double> d_probs(N * E, 7.0);              // garbage: backward must assign
  routing::top_k_backward(d_probs.data(), r.data(), probs.data(), plan, renormalize);
  auto loss = [&] {
    routing::top_k_forward(plan, probs.data(), N, E, k, renormalize);
    EXPECT_EQ(plan.slot_expert, selected) << "a perturbation changed the selection";
    return testing::dot(plan.slot_weight, r);
  };
  testing::expect_gradient_matches("d_probs", probs, d_probs, loss);
  for (int64_t t = 0; t < N; ++t) {
    const auto first = selected.begin() + t * k, last = first + k;
    for (int64_t e = 0; e < E; ++e) {
      if (std::find(first, last, e) != last) continue;
      EXPECT_EQ(d_probs[t * E + e], 0.0) << "unselected expert " << e << " of token " << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, TopKGradient,
                         ::testing::Values(TopKCase{.N = 1, .E = 1, .k = 1, .renormalize = true},
                                           TopKCase{.N = 7, .E = 5, .k = 1, .renormalize = false},
                                           TopKCase{.N = 7, .E = 5, .k = 2, .renormalize = true},
                                           TopKCase{.N = 13, .E = 8, .k = 2, .renormalize = false},
                                           TopKCase{.N = 13, .E = 8, .k = 3, .renormalize = true},
                                           TopKCase{.N = 5, .E = 6, .k = 6, .renormalize = true},
                                           TopKCase{.N = 5, .E = 6, .k = 6, .renormalize = false}));

// The float backward against the double one (same formula, different rounding).
TEST(TopK, BackwardFloatMatchesDouble) {
  const int64_t N = 300, E = 64, k = 4;
  auto probs = separated_probs(N, E, 24);
  auto r = testing::random_vector(N * k, 25);
  DispatchPlan<double> plan;
  routing::top_k_forward(plan, probs.data(), N, E, k, true);
  std::vector<double> d(N * E);
  routing::top_k_backward(d.data(), r.data(), probs.data(), plan, true);
  auto probs_f = testing::to_float(probs), r_f = testing::to_float(r);
  DispatchPlan<float> plan_f;
  routing::top_k_forward(plan_f, probs_f.data(), N, E, k, true);
  std::vector<float> d_f(N * E);
  routing::top_k_backward(d_f.data(), r_f.data(), probs_f.data(), plan_f, true);
  EXPECT_LT(testing::max_rel_error(d_f, d), 1e-5);
}

}  // namespace
}  // namespace moelab
