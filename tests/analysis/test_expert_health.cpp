#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "analysis/expert_health.h"
#include "analysis/owned_experts.h"
#include "core/error.h"

namespace moelab {
namespace {

// E experts of d 4, h 3 (12 weights per matrix) drawn from a seeded normal stream.
testing::OwnedExperts experts_of(int64_t E) { return testing::random_experts(E, 4, 3, 42); }

TEST(ExpertHealth, NormsHandChecked) {
  auto L = experts_of(2);
  L.w1[0] = {3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};   // 5
  L.w3[0].assign(12, 0.0f);                         // 0
  L.w2[0] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 12};  // sqrt(145)
  L.w1[1].assign(12, 1.0f);                         // sqrt(12)
  L.w3[1].assign(12, 2.0f);                         // sqrt(48)
  L.w2[1].assign(12, -1.0f);                        // sqrt(12)
  const auto h = analysis::expert_health(L.view(), nullptr);
  EXPECT_EQ(h.norm_gate, (std::vector<double>{5, std::sqrt(12.0)}));
  EXPECT_EQ(h.norm_up, (std::vector<double>{0, std::sqrt(48.0)}));
  EXPECT_EQ(h.norm_down, (std::vector<double>{std::sqrt(145.0), std::sqrt(12.0)}));
  EXPECT_DOUBLE_EQ(h.norm_total[0], std::sqrt(170.0));
  EXPECT_DOUBLE_EQ(h.norm_total[1], std::sqrt(72.0));
  // Whole cosine: (w1 dot 3 + 4, w3 dot 0, w2 dot -1 - 12) / (sqrt(170) sqrt(72)).
  EXPECT_NEAR(h.whole_similarity[1], -6.0 / std::sqrt(170.0 * 72.0), 1e-15);
  EXPECT_NEAR(h.whole_similarity[2], h.whole_similarity[1], 0.0);
  EXPECT_FALSE(h.has_tokens);
  EXPECT_TRUE(h.dead.empty() && h.rare.empty());
}

// Expert 2 an exact copy of expert 0, expert 3 a scaled copy of expert 1: both pairs collapsed with cosine 1;
// random pairs are not.
TEST(ExpertHealth, CopiesAreCollapsed) {
  auto L = experts_of(5);
  L.w1[2] = L.w1[0], L.w3[2] = L.w3[0], L.w2[2] = L.w2[0];
  for (auto* m : {&L.w1, &L.w3, &L.w2})
    for (size_t i = 0; i < (*m)[1].size(); ++i) (*m)[3][i] = 2.5f * (*m)[1][i];
  const auto h = analysis::expert_health(L.view(), nullptr);
  ASSERT_EQ(h.collapsed.size(), 2u);
  EXPECT_EQ(h.collapsed[0].a, 0);
  EXPECT_EQ(h.collapsed[0].b, 2);
  EXPECT_NEAR(h.collapsed[0].cosine, 1.0, 1e-12);
  EXPECT_EQ(h.collapsed[1].a, 1);
  EXPECT_EQ(h.collapsed[1].b, 3);
  EXPECT_NEAR(h.collapsed[1].cosine, 1.0, 1e-12);
  for (int64_t e = 0; e < L.E; ++e) EXPECT_NEAR(h.whole_similarity[e * L.E + e], 1.0, 1e-12);
}

// A noisy copy is collapsed below its cosine's threshold and not above it.
TEST(ExpertHealth, CollapseThreshold) {
  auto L = experts_of(2);
  for (auto* m : {&L.w1, &L.w3, &L.w2})
    for (size_t i = 0; i < (*m)[0].size(); ++i) (*m)[1][i] = (*m)[0][i] + 0.3f * (*m)[1][i];
  const double cos = analysis::expert_health(L.view(), nullptr).whole_similarity[1];
  ASSERT_GT(cos, 0.8);
  ASSERT_LT(cos, 0.99);
  analysis::HealthOptions opt;
  opt.collapse_threshold = cos - 0.01;
  EXPECT_EQ(analysis::expert_health(L.view(), nullptr, opt).collapsed.size(), 1u);
  opt.collapse_threshold = cos + 0.01;
  EXPECT_TRUE(analysis::expert_health(L.view(), nullptr, opt).collapsed.empty());
}

// Counts {100, 0, 4, 96, 50}: 250 tokens, uniform share 50, rare below 5: expert 1 dead, expert 2 rare.
TEST(ExpertHealth, DeadAndRareExperts) {
  auto L = experts_of(5);
  const std::vector<int64_t> tokens = {100, 0, 4, 96, 50};
  auto h = analysis::expert_health(L.view(), tokens.data());
  EXPECT_TRUE(h.has_tokens);
  EXPECT_EQ(h.tokens, tokens);
  EXPECT_EQ(h.dead, (std::vector<int64_t>{1}));
  EXPECT_EQ(h.rare, (std::vector<int64_t>{2}));
  analysis::HealthOptions opt;
  opt.rare_fraction = 0.08;  // below 4: expert 2 is no longer rare
  h = analysis::expert_health(L.view(), tokens.data(), opt);
  EXPECT_EQ(h.dead, (std::vector<int64_t>{1}));
  EXPECT_TRUE(h.rare.empty());
  const std::vector<int64_t> none = {0, 0, 0, 0, 0};
  EXPECT_EQ(analysis::expert_health(L.view(), none.data()).dead, (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(ExpertHealth, RejectsBadInput) {
  auto L = experts_of(2);
  analysis::HealthOptions opt;
  opt.collapse_threshold = 1.5;
  EXPECT_THROW(analysis::expert_health(L.view(), nullptr, opt), Error);
  opt = {};
  opt.rare_fraction = -0.1;
  EXPECT_THROW(analysis::expert_health(L.view(), nullptr, opt), Error);
  const std::vector<int64_t> negative = {3, -1};
  EXPECT_THROW(analysis::expert_health(L.view(), negative.data()), Error);
}

TEST(ExpertHealth, Json) {
  auto L = experts_of(3);
  L.w1[1] = L.w1[0], L.w3[1] = L.w3[0], L.w2[1] = L.w2[0];
  const std::vector<int64_t> tokens = {10, 0, 20};
  nlohmann::json j = analysis::to_json(analysis::expert_health(L.view(), tokens.data()));
  EXPECT_EQ(j["layer"], 3);
  EXPECT_EQ(j["experts"], 3);
  EXPECT_EQ(j["norm_total"].size(), 3u);
  EXPECT_EQ(j["whole_similarity"].size(), 3u);
  ASSERT_EQ(j["collapsed"].size(), 1u);
  EXPECT_EQ(j["collapsed"][0]["a"], 0);
  EXPECT_EQ(j["collapsed"][0]["b"], 1);
  EXPECT_DOUBLE_EQ(j["collapse_threshold"].get<double>(), 0.95);
  EXPECT_EQ(j["dead"], nlohmann::json({1}));
  EXPECT_EQ(j["tokens"], nlohmann::json({10, 0, 20}));
  j = analysis::to_json(analysis::expert_health(L.view(), nullptr));
  EXPECT_TRUE(j["dead"].is_null() && j["rare"].is_null() && j["tokens"].is_null());
}

}  // namespace
}  // namespace moelab
