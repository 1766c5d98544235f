#include <gtest/gtest.h>

#include <cmath>

#include "routing/random_plan.h"
#include "routing/routing_stats.h"

namespace moelab {
namespace {

// 4 tokens, 3 experts: t0 -> {0, 1}, t1 -> {0}, t2 -> {}, t3 -> {2, 0}. Expert loads {3, 1, 1}, 5 slots.
routing::DispatchPlan<double> hand_plan() {
  routing::DispatchPlan<double> plan;
  plan.n_tokens = 4;
  plan.n_experts = 3;
  plan.token_offsets = {0, 2, 3, 3, 5};
  plan.slot_expert = {0, 1, 0, 2, 0};
  plan.slot_weight = {0.5, 0.5, 1.0, 0.6, 0.4};
  routing::build_expert_groups(plan);
  return plan;
}

void expect_hand_stats(const routing::RoutingStats& s) {
  const double mean = 5.0 / 3;
  const double cv = std::sqrt(((3 - mean) * (3 - mean) + 2 * (1 - mean) * (1 - mean)) / 3) / mean;  // 0.5657
  ASSERT_EQ(s.expert_fraction.size(), 3u);
  EXPECT_DOUBLE_EQ(s.expert_fraction[0], 0.75);
  EXPECT_DOUBLE_EQ(s.expert_fraction[1], 0.25);
  EXPECT_DOUBLE_EQ(s.expert_fraction[2], 0.25);
  EXPECT_DOUBLE_EQ(s.load_max_over_mean, 1.8);
  EXPECT_NEAR(s.load_cv, cv, 1e-15);
  EXPECT_NEAR(s.load_cv, 0.565685424949238, 1e-12);
  EXPECT_DOUBLE_EQ(s.mean_experts_per_token, 1.25);
  EXPECT_EQ(s.experts_per_token, (std::vector<double>{0.25, 0.25, 0.5, 0.0}));
}

TEST(RoutingStats, HandComputed) { expect_hand_stats(routing::routing_stats(hand_plan())); }

// Two batches of the same routing give the same fractions as one.
TEST(RoutingStats, AccumulatesOverBatches) {
  routing::RoutingCounts counts;
  routing::accumulate_routing_counts(counts, hand_plan());
  routing::accumulate_routing_counts(counts, hand_plan());
  EXPECT_EQ(counts.n_tokens, 8);
  EXPECT_EQ(counts.expert_slots, (std::vector<int64_t>{6, 2, 2}));
  expect_hand_stats(routing::routing_stats(counts));
}

TEST(RoutingStats, PerfectBalance) {
  routing::DispatchPlan<float> plan;
  plan.n_tokens = 4;
  plan.n_experts = 2;
  plan.token_offsets = {0, 1, 2, 3, 4};
  plan.slot_expert = {1, 0, 0, 1};
  plan.slot_weight = {1, 1, 1, 1};
  routing::build_expert_groups(plan);
  auto s = routing::routing_stats(plan);
  EXPECT_DOUBLE_EQ(s.load_max_over_mean, 1.0);
  EXPECT_DOUBLE_EQ(s.load_cv, 0.0);
  EXPECT_DOUBLE_EQ(s.mean_experts_per_token, 1.0);
}

TEST(RoutingStats, NothingRouted) {
  routing::RoutingCounts counts;
  auto s = routing::routing_stats(counts);
  EXPECT_TRUE(s.expert_fraction.empty());
  EXPECT_EQ(s.load_cv, 0.0);
  routing::DispatchPlan<double> plan;
  plan.n_tokens = 2;
  plan.n_experts = 3;
  plan.token_offsets = {0, 0, 0};
  routing::build_expert_groups(plan);
  s = routing::routing_stats(plan);
  EXPECT_EQ(s.expert_fraction, (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(s.load_max_over_mean, 0.0);
  EXPECT_EQ(s.mean_experts_per_token, 0.0);
}

// On a random plan, against counts taken straight from the slot list.
TEST(RoutingStats, RandomPlanMatchesSlotCounts) {
  const int64_t N = 101, E = 13;
  auto plan = testing::random_plan(N, E, 5, 91);
  std::vector<double> count(E, 0.0);
  for (int32_t e : plan.slot_expert) count[e] += 1;
  auto s = routing::routing_stats(plan);
  double sum_hist = 0;
  for (double h : s.experts_per_token) sum_hist += h;
  EXPECT_NEAR(sum_hist, 1.0, 1e-12);
  for (int64_t e = 0; e < E; ++e) EXPECT_DOUBLE_EQ(s.expert_fraction[e], count[e] / N);
  EXPECT_DOUBLE_EQ(s.mean_experts_per_token, static_cast<double>(plan.n_slots()) / N);
}

}  // namespace
}  // namespace moelab
