#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "routing/random_plan.h"
#include "routing/routing_stats.h"

namespace moelab {
namespace {

// 4 tokens, 3 experts: t0 -> {0, 1}, t1 -> {0}, t2 -> {}, t3 -> {2, 0}. Expert loads {3, 1, 1}, 5 slots.
template <typename T = double>
routing::DispatchPlan<T> hand_plan() {
  routing::DispatchPlan<T> plan;
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

// Router probabilities for hand_plan's 4 tokens (the plan need not be their top-k for the statistics):
//   t0 (0.5, 0.5, 0)    entropy ln 2, margin 0 (a tie)
//   t1 (1, 0, 0)        entropy 0, margin 1
//   t2 (0.2, 0.3, 0.5)  entropy 1.0296530140645737, margin 0.2
//   t3 (0.3, 0.1, 0.6)  entropy 0.8979457248567798, margin 0.3
const std::vector<double> kHandProbs = {0.5, 0.5, 0.0, 1.0, 0.0, 0.0, 0.2, 0.3, 0.5, 0.3, 0.1, 0.6};
constexpr double kHandEntropy = (0.6931471805599453 + 0.0 + 1.0296530140645737 + 0.8979457248567798) / 4;

TEST(RoutingStats, HandComputedProbabilityFields) {
  // 3 slots dropped by capacity beside the 5 kept: dropped fraction 3 / 8; baseline top-2.
  const auto s = routing::routing_stats(hand_plan(), kHandProbs.data(), 3, 2);
  expect_hand_stats(s);
  ASSERT_TRUE(s.mean_entropy.has_value());
  EXPECT_NEAR(*s.mean_entropy, kHandEntropy, 1e-14);
  EXPECT_NEAR(-(0.2 * std::log(0.2) + 0.3 * std::log(0.3) + 0.5 * std::log(0.5)), 1.0296530140645737, 1e-15);
  ASSERT_TRUE(s.mean_top_margin.has_value());
  EXPECT_NEAR(*s.mean_top_margin, (0 + 1 + 0.2 + 0.3) / 4, 1e-15);
  EXPECT_DOUBLE_EQ(s.dropped_fraction, 0.375);
  EXPECT_DOUBLE_EQ(s.activated_fraction_of_all, 1.25 / 3);
  EXPECT_EQ(s.baseline_k, 2);
  ASSERT_TRUE(s.activated_fraction_of_topk.has_value());
  EXPECT_DOUBLE_EQ(*s.activated_fraction_of_topk, 0.625);
}

// The plan-only path measures no probabilities and gives no baseline: those fields stay empty.
TEST(RoutingStats, PlanOnlyLeavesProbabilityFieldsEmpty) {
  const auto s = routing::routing_stats(hand_plan());
  EXPECT_FALSE(s.mean_entropy.has_value());
  EXPECT_FALSE(s.mean_top_margin.has_value());
  EXPECT_FALSE(s.activated_fraction_of_topk.has_value());
  EXPECT_EQ(s.dropped_fraction, 0.0);
  EXPECT_DOUBLE_EQ(s.activated_fraction_of_all, 1.25 / 3);
}

// Means are over the tokens whose probabilities were counted, across batches; drops add up.
TEST(RoutingStats, ProbabilityFieldsAccumulateOverBatches) {
  routing::RoutingCounts counts;
  routing::accumulate_routing_counts(counts, hand_plan(), kHandProbs.data(), 3);
  routing::accumulate_routing_counts(counts, hand_plan());  // e.g. a batch logged without probabilities
  const std::vector<double> uniform(12, 1.0 / 3);
  routing::accumulate_routing_counts(counts, hand_plan(), uniform.data(), 1);
  EXPECT_EQ(counts.prob_tokens, 8);
  EXPECT_EQ(counts.slots_dropped, 4);
  const auto s = routing::routing_stats(counts, 1);
  EXPECT_NEAR(*s.mean_entropy, (4 * kHandEntropy + 4 * std::log(3.0)) / 8, 1e-14);
  EXPECT_NEAR(*s.mean_top_margin, (1.5 + 0) / 8, 1e-15);
  EXPECT_DOUBLE_EQ(s.dropped_fraction, 4.0 / (15 + 4));
  EXPECT_DOUBLE_EQ(*s.activated_fraction_of_topk, 1.25);
}

// Scores that are not a distribution (sigmoid gating) are normalised for the entropy; the margin stays in score
// units. With one expert the margin is the score itself and the entropy 0.
TEST(RoutingStats, UnnormalisedScoresAndOneExpert) {
  auto scaled = kHandProbs;
  for (auto& p : scaled) p *= 3;
  const auto s = routing::routing_stats(hand_plan(), scaled.data(), 0, 0);
  EXPECT_NEAR(*s.mean_entropy, kHandEntropy, 1e-14);
  EXPECT_NEAR(*s.mean_top_margin, 3 * 0.375, 1e-15);
  const std::vector<float> zeros(12, 0.0f);  // no distribution at all: entropy 0, not NaN
  EXPECT_EQ(*routing::routing_stats(hand_plan<float>(), zeros.data(), 0, 0).mean_entropy, 0.0);

  routing::DispatchPlan<double> one;
  one.n_tokens = 2;
  one.n_experts = 1;
  one.token_offsets = {0, 1, 2};
  one.slot_expert = {0, 0};
  one.slot_weight = {0.7, 0.4};
  routing::build_expert_groups(one);
  const std::vector<double> p = {0.7, 0.4};
  const auto s1 = routing::routing_stats(one, p.data(), 0, 1);
  EXPECT_NEAR(*s1.mean_entropy, 0.0, 1e-15);
  EXPECT_NEAR(*s1.mean_top_margin, 0.55, 1e-15);
  EXPECT_EQ(s1.activated_fraction_of_all, 1.0);
}

// Capacity dropped every slot: the dropped fraction is 1 and every token uses 0 experts.
TEST(RoutingStats, EverySlotDropped) {
  routing::DispatchPlan<double> plan;
  plan.n_tokens = 2;
  plan.n_experts = 2;
  plan.token_offsets = {0, 0, 0};
  routing::build_expert_groups(plan);
  const std::vector<double> p = {0.6, 0.4, 0.1, 0.9};
  const auto s = routing::routing_stats(plan, p.data(), 4, 2);
  EXPECT_EQ(s.dropped_fraction, 1.0);
  EXPECT_EQ(s.experts_per_token, (std::vector<double>{1, 0, 0}));
  EXPECT_EQ(s.mean_experts_per_token, 0.0);
  EXPECT_EQ(*s.activated_fraction_of_topk, 0.0);
  EXPECT_NEAR(*s.mean_top_margin, 0.5, 1e-15);
}

TEST(RoutingStats, JsonFieldNames) {
  const auto j = routing::to_json(routing::routing_stats(hand_plan(), kHandProbs.data(), 3, 2));
  EXPECT_EQ(j.size(), 12u);
  EXPECT_EQ(j.at("tokens"), 4);
  EXPECT_EQ(j.at("expert_fraction"), (std::vector<double>{0.75, 0.25, 0.25}));
  EXPECT_DOUBLE_EQ(j.at("load_max_over_mean").get<double>(), 1.8);
  EXPECT_NEAR(j.at("load_cv").get<double>(), 0.565685424949238, 1e-12);
  EXPECT_DOUBLE_EQ(j.at("mean_experts_per_token").get<double>(), 1.25);
  EXPECT_EQ(j.at("experts_per_token_hist"), (std::vector<double>{0.25, 0.25, 0.5, 0.0}));
  EXPECT_NEAR(j.at("mean_entropy").get<double>(), kHandEntropy, 1e-14);
  EXPECT_NEAR(j.at("mean_top1_top2_margin").get<double>(), 0.375, 1e-15);
  EXPECT_DOUBLE_EQ(j.at("dropped_fraction").get<double>(), 0.375);
  EXPECT_DOUBLE_EQ(j.at("active_expert_fraction").get<double>(), 1.25 / 3);
  EXPECT_EQ(j.at("baseline_k"), 2);
  EXPECT_DOUBLE_EQ(j.at("active_vs_topk").get<double>(), 0.625);

  const auto plain = routing::to_json(routing::routing_stats(hand_plan()));
  EXPECT_TRUE(plain.at("mean_entropy").is_null());
  EXPECT_TRUE(plain.at("mean_top1_top2_margin").is_null());
  EXPECT_TRUE(plain.at("baseline_k").is_null());
  EXPECT_TRUE(plain.at("active_vs_topk").is_null());
  EXPECT_EQ(plain.at("dropped_fraction"), 0.0);
}

}  // namespace
}  // namespace moelab
