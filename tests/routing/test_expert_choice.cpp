#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <ostream>
#include <tuple>

#include "routing/capacity.h"
#include "routing/expert_choice.h"
#include "routing/random_plan.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::distinct_probs;

using routing::DispatchPlan;

// The groups agree with the slots, every expert holds exactly min(C, N) rows, and each token's slots are in
// increasing expert order with the probability as weight.
template <typename T>
void expect_expert_choice_plan(const DispatchPlan<T>& plan, const std::vector<T>& probs, int64_t C) {
  DispatchPlan<T> rebuilt = plan;
  routing::build_expert_groups(rebuilt);
  EXPECT_EQ(plan.expert_offsets, rebuilt.expert_offsets);
  EXPECT_EQ(plan.row_slot, rebuilt.row_slot);
  EXPECT_EQ(plan.slot_row, rebuilt.slot_row);
  EXPECT_EQ(plan.row_token, rebuilt.row_token);
  const int64_t N = plan.n_tokens, E = plan.n_experts;
  ASSERT_EQ(static_cast<int64_t>(plan.token_offsets.size()), N + 1);
  EXPECT_EQ(plan.token_offsets[0], 0);
  EXPECT_EQ(plan.n_slots(), E * std::min(C, N));
  for (int64_t e = 0; e < E; ++e) EXPECT_EQ(plan.expert_rows(e), std::min(C, N)) << "expert " << e;
  for (int64_t t = 0; t < N; ++t) {
    for (int32_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s) {
      if (s > plan.token_offsets[t]) {
        EXPECT_LT(plan.slot_expert[s - 1], plan.slot_expert[s]) << "token " << t;
      }
      EXPECT_EQ(plan.slot_weight[s], probs[t * E + plan.slot_expert[s]]);
    }
  }
}

TEST(ExpertChoice, HandComputed) {
  const std::vector<double> probs = {0.9, 0.1,  //
                                     0.6, 0.4,  //
                                     0.3, 0.7,  //
                                     0.8, 0.2};
  DispatchPlan<double> plan;
  routing::expert_choice_forward(plan, probs.data(), 4, 2, 2);
  // Expert 0 takes t0 (0.9) and t3 (0.8); expert 1 takes t2 (0.7) and t1 (0.4), though t1 prefers expert 0.
  EXPECT_EQ(plan.token_offsets, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{0, 1, 1, 0}));
  EXPECT_EQ(plan.slot_weight, (std::vector<double>{0.9, 0.4, 0.7, 0.8}));
  EXPECT_EQ(plan.expert_offsets, (std::vector<int32_t>{0, 2, 4}));
  EXPECT_EQ(plan.row_token, (std::vector<int32_t>{0, 3, 1, 2}));
  expect_expert_choice_plan(plan, probs, 2);
}

// A token can get every expert or none; equal probabilities go to the lower token index.
TEST(ExpertChoice, TiesAndZeroToEExpertsPerToken) {
  const std::vector<double> flat(4 * 3, 0.25);
  DispatchPlan<double> plan;
  routing::expert_choice_forward(plan, flat.data(), 4, 3, 1);
  EXPECT_EQ(plan.token_offsets, (std::vector<int32_t>{0, 3, 3, 3, 3}));
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{0, 1, 2}));
  const std::vector<double> probs = {0.2, 0.5, 0.3,  //
                                     0.5, 0.2, 0.3,  //
                                     0.5, 0.3, 0.2};
  routing::expert_choice_forward(plan, probs.data(), 3, 3, 2);
  // Expert 0: t1, t2 (0.5 tie, both in); expert 1: t0 (0.5), t2 (0.3); expert 2: t0, t1 (0.3 tie) over t2 (0.2).
  EXPECT_EQ(plan.token_offsets, (std::vector<int32_t>{0, 2, 4, 6}));
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{1, 2, 0, 2, 0, 1}));
  routing::expert_choice_forward(plan, probs.data(), 3, 3, 1);
  // Expert 0: t1 over t2 (0.5 tie); expert 1: t0; expert 2: t0 over t1 (0.3 tie).
  EXPECT_EQ(plan.token_offsets, (std::vector<int32_t>{0, 2, 3, 3}));
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{1, 2, 0}));
  expect_expert_choice_plan(plan, probs, 1);
}

TEST(ExpertChoice, CapacityAboveTokensTakesAllAndZeroTakesNone) {
  const std::vector<double> probs = {0.1, 0.9, 0.7, 0.3};
  DispatchPlan<double> plan;
  routing::expert_choice_forward(plan, probs.data(), 2, 2, 5);
  EXPECT_EQ(plan.token_offsets, (std::vector<int32_t>{0, 2, 4}));
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{0, 1, 0, 1}));
  expect_expert_choice_plan(plan, probs, 5);
  routing::expert_choice_forward(plan, probs.data(), 2, 2, 0);
  EXPECT_EQ(plan.token_offsets, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(plan.n_slots(), 0);
  expect_expert_choice_plan(plan, probs, 0);
}

// Against a stable sort of every column, with coarse probabilities (many ties), in float, on sizes large enough to
// run threaded, and with C from the capacity formula.
TEST(ExpertChoice, FloatMatchesSortReference) {
  for (auto [N, E, k, cf] : {std::tuple{1000, 32, 2, 1.0}, std::tuple{37, 5, 1, 1.3}, std::tuple{600, 64, 1, 2.0}}) {
    SCOPED_TRACE(::testing::Message() << "N=" << N << " E=" << E);
    auto probs = testing::random_vector<float>(N * E, 70 + N);
    for (auto& p : probs) p = std::round(std::abs(p) * 16) / 16;
    const int64_t C = routing::expert_capacity(cf, N, k, E);
    DispatchPlan<float> plan;
    routing::expert_choice_forward(plan, probs.data(), N, E, C);
    std::vector<std::vector<int32_t>> want(N);  // experts of each token, increasing
    std::vector<int32_t> order(N);
    for (int64_t e = 0; e < E; ++e) {
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int32_t a, int32_t b) { return probs[a * E + e] > probs[b * E + e]; });
      for (int64_t i = 0; i < std::min<int64_t>(C, N); ++i) want[order[i]].push_back(static_cast<int32_t>(e));
    }
    for (int64_t t = 0; t < N; ++t) {
      const std::vector<int32_t> got(plan.slot_expert.begin() + plan.token_offsets[t],
                                     plan.slot_expert.begin() + plan.token_offsets[t + 1]);
      ASSERT_EQ(got, want[t]) << "token " << t;
    }
    expect_expert_choice_plan(plan, probs, C);
  }
}

struct ExpertChoiceCase {
  int N, E, C;
};
void PrintTo(const ExpertChoiceCase& c, std::ostream* os) { *os << "N=" << c.N << " E=" << c.E << " C=" << c.C; }
class ExpertChoiceGradient : public ::testing::TestWithParam<ExpertChoiceCase> {};

TEST_P(ExpertChoiceGradient, MatchesFiniteDifferences) {
  auto [N, E, C] = GetParam();
  auto probs = distinct_probs(N, E, 80 + N);
  DispatchPlan<double> plan;
  routing::expert_choice_forward(plan, probs.data(), N, E, C);
  const auto chosen = plan.slot_expert;
  auto r = testing::random_vector(plan.n_slots(), 81);  // loss = sum_s r_s * w_s
  std::vector<double> d_probs(N * E, 7.0);              // garbage: backward must assign
  routing::expert_choice_backward(d_probs.data(), r.data(), plan);
  auto loss = [&] {
    routing::expert_choice_forward(plan, probs.data(), N, E, C);
    EXPECT_EQ(plan.slot_expert, chosen) << "a perturbation changed the choice";
    return testing::dot(plan.slot_weight, r);
  };
  testing::expect_gradient_matches("d_probs", probs, d_probs, loss);
  int64_t zeros = 0;
  for (double d : d_probs) zeros += d == 0.0;
  EXPECT_EQ(zeros, N * E - plan.n_slots()) << "unchosen (token, expert) pairs get exactly 0";
}

INSTANTIATE_TEST_SUITE_P(Shapes, ExpertChoiceGradient,
                         ::testing::Values(ExpertChoiceCase{.N = 1, .E = 1, .C = 1},
                                           ExpertChoiceCase{.N = 7, .E = 3, .C = 2},
                                           ExpertChoiceCase{.N = 13, .E = 8, .C = 4},
                                           ExpertChoiceCase{.N = 5, .E = 6, .C = 5},
                                           ExpertChoiceCase{.N = 9, .E = 4, .C = 3}));

TEST(ExpertChoice, BackwardFloatMatchesDouble) {
  const int64_t N = 500, E = 40, C = 30;
  auto probs = distinct_probs(N, E, 90);
  auto probs_f = testing::to_float(probs);
  DispatchPlan<double> plan;
  DispatchPlan<float> plan_f;
  routing::expert_choice_forward(plan, probs.data(), N, E, C);
  routing::expert_choice_forward(plan_f, probs_f.data(), N, E, C);
  ASSERT_EQ(plan_f.slot_expert, plan.slot_expert);
  auto r = testing::random_vector(plan.n_slots(), 91);
  auto r_f = testing::to_float(r);
  std::vector<double> d(N * E);
  std::vector<float> d_f(N * E);
  routing::expert_choice_backward(d.data(), r.data(), plan);
  routing::expert_choice_backward(d_f.data(), r_f.data(), plan_f);
  EXPECT_LT(testing::max_rel_error(d_f, d), 1e-7);
}

}  // namespace
}  // namespace moelab
