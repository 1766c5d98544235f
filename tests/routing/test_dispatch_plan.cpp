#include <gtest/gtest.h>

#include <ostream>

#include "routing/dispatch_plan.h"
#include "routing/random_plan.h"

namespace moelab {
namespace {

using routing::DispatchPlan;

// Every invariant consumers of a plan rely on, checked against the plan's own slot list.
void expect_plan_invariants(const DispatchPlan<double>& plan) {
  const int64_t N = plan.n_tokens, E = plan.n_experts, S = plan.n_slots();
  ASSERT_EQ(plan.expert_offsets.size(), static_cast<size_t>(E + 1));
  ASSERT_EQ(plan.row_slot.size(), static_cast<size_t>(S));
  ASSERT_EQ(plan.slot_row.size(), static_cast<size_t>(S));
  ASSERT_EQ(plan.row_token.size(), static_cast<size_t>(S));
  EXPECT_EQ(plan.expert_offsets[0], 0);
  EXPECT_EQ(plan.expert_offsets[E], S);
  for (int64_t e = 0; e < E; ++e) EXPECT_LE(plan.expert_offsets[e], plan.expert_offsets[e + 1]) << "expert " << e;
  for (int64_t s = 0; s < S; ++s) EXPECT_EQ(plan.row_slot[plan.slot_row[s]], s) << "slot " << s;
  for (int64_t t = 0; t < N; ++t) {
    for (int32_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s) {
      const int32_t r = plan.slot_row[s];
      EXPECT_EQ(plan.row_token[r], t) << "row " << r;
      const int32_t e = plan.slot_expert[s];
      EXPECT_GE(r, plan.expert_offsets[e]);
      EXPECT_LT(r, plan.expert_offsets[e + 1]);
    }
  }
  for (int64_t e = 0; e < E; ++e)
    for (int32_t r = plan.expert_offsets[e] + 1; r < plan.expert_offsets[e + 1]; ++r)
      EXPECT_LT(plan.row_token[r - 1], plan.row_token[r]) << "rows of expert " << e << " out of token order";
}

// The worked example of dispatch_plan.h, by hand.
TEST(DispatchPlan, HandExample) {
  DispatchPlan<double> plan;
  plan.n_tokens = 2;
  plan.n_experts = 3;
  plan.token_offsets = {0, 2, 3};
  plan.slot_expert = {2, 0, 2};
  plan.slot_weight = {0.5, 0.3, 0.9};
  routing::build_expert_groups(plan);
  EXPECT_EQ(plan.expert_offsets, (std::vector<int32_t>{0, 1, 1, 3}));
  EXPECT_EQ(plan.row_slot, (std::vector<int32_t>{1, 0, 2}));
  EXPECT_EQ(plan.slot_row, (std::vector<int32_t>{1, 0, 2}));
  EXPECT_EQ(plan.row_token, (std::vector<int32_t>{0, 0, 1}));
  EXPECT_EQ(plan.expert_rows(0), 1);
  EXPECT_EQ(plan.expert_rows(1), 0);
  EXPECT_EQ(plan.expert_rows(2), 2);
  EXPECT_EQ(plan.max_expert_rows(), 2);
  EXPECT_EQ(DispatchPlan<double>{}.max_expert_rows(), 0);  // no plan yet: no rows
}

TEST(DispatchPlan, TokensWithoutSlots) {
  DispatchPlan<double> plan;
  plan.n_tokens = 4;
  plan.n_experts = 2;
  plan.token_offsets = {0, 0, 1, 1, 2};  // tokens 0 and 2 have no slot
  plan.slot_expert = {1, 1};
  plan.slot_weight = {1.0, 1.0};
  routing::build_expert_groups(plan);
  EXPECT_EQ(plan.expert_offsets, (std::vector<int32_t>{0, 0, 2}));
  EXPECT_EQ(plan.row_token, (std::vector<int32_t>{1, 3}));
  expect_plan_invariants(plan);
}

TEST(DispatchPlan, NoTokens) {
  DispatchPlan<double> plan;
  plan.n_experts = 3;
  plan.token_offsets = {0};
  routing::build_expert_groups(plan);
  EXPECT_EQ(plan.expert_offsets, (std::vector<int32_t>{0, 0, 0, 0}));
  EXPECT_TRUE(plan.row_slot.empty());
}

struct DispatchPlanCase {
  int N, E, max_slots;
};
void PrintTo(const DispatchPlanCase& c, std::ostream* os) {
  *os << "N=" << c.N << " E=" << c.E << " max_slots=" << c.max_slots;
}
class DispatchPlanRandom : public ::testing::TestWithParam<DispatchPlanCase> {};

TEST_P(DispatchPlanRandom, Invariants) {
  auto [N, E, max_slots] = GetParam();
  expect_plan_invariants(testing::random_plan(N, E, max_slots, 100 + N));
}

INSTANTIATE_TEST_SUITE_P(Shapes, DispatchPlanRandom,
                         ::testing::Values(DispatchPlanCase{.N = 1, .E = 1, .max_slots = 1},
                                           DispatchPlanCase{.N = 5, .E = 3, .max_slots = 3},
                                           DispatchPlanCase{.N = 37, .E = 8, .max_slots = 2},
                                           DispatchPlanCase{.N = 257, .E = 64, .max_slots = 5},
                                           DispatchPlanCase{.N = 101, .E = 13, .max_slots = 13}));

// A plan rebuilt for a same-sized batch must not reallocate: the training loop reuses one plan per layer.
TEST(DispatchPlan, RebuildKeepsStorage) {
  auto plan = testing::random_plan(50, 8, 3, 5);
  auto other = testing::random_plan(50, 8, 2, 6);
  ASSERT_LE(other.n_slots(), plan.n_slots());  // fits in the first plan's capacity
  const auto* rows = plan.row_slot.data();
  const auto* offsets = plan.expert_offsets.data();
  plan.token_offsets = other.token_offsets;
  plan.slot_expert = other.slot_expert;
  plan.slot_weight = other.slot_weight;
  routing::build_expert_groups(plan);
  EXPECT_EQ(plan.row_slot.data(), rows);
  EXPECT_EQ(plan.expert_offsets.data(), offsets);
  EXPECT_EQ(plan.row_slot, other.row_slot);
  expect_plan_invariants(plan);
}

}  // namespace
}  // namespace moelab
