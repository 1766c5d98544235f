#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "routing/hash_router.h"

namespace moelab::routing {
namespace {

TEST(HashRouter, SameTokenSameExpertsDistinctAndWeighted) {
  const int64_t E = 8, k = 3;
  const std::vector<int32_t> ids = {5, 17, 5, 1000, 17, 0};
  DispatchPlan<float> plan;
  hash_route(plan, ids.data(), static_cast<int64_t>(ids.size()), E, k, 42);
  ASSERT_EQ(plan.n_slots(), static_cast<int64_t>(ids.size()) * k);
  auto experts_of = [&](int64_t t) {
    return std::vector<int32_t>(plan.slot_expert.begin() + plan.token_offsets[t],
                                plan.slot_expert.begin() + plan.token_offsets[t + 1]);
  };
  for (size_t t = 0; t < ids.size(); ++t) {
    const auto e = experts_of(t);
    EXPECT_EQ(std::set<int32_t>(e.begin(), e.end()).size(), static_cast<size_t>(k)) << "experts must be distinct";
    for (int32_t x : e) EXPECT_TRUE(x >= 0 && x < E);
    for (int64_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s)
      EXPECT_FLOAT_EQ(plan.slot_weight[s], 1.0f / k);
  }
  EXPECT_EQ(experts_of(0), experts_of(2));  // token 5 twice
  EXPECT_EQ(experts_of(1), experts_of(4));  // token 17 twice
  // Expert groups are consistent with the slots.
  for (int64_t e = 0; e < E; ++e)
    for (int64_t r = plan.expert_offsets[e]; r < plan.expert_offsets[e + 1]; ++r)
      EXPECT_EQ(plan.slot_expert[plan.row_slot[r]], e);
}

TEST(HashRouter, DeterministicPerSeedAndSpreadOverExperts) {
  const int64_t E = 8, n = 8000;
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(i);
  DispatchPlan<double> a, b, c;
  hash_route(a, ids.data(), n, E, 1, 7);
  hash_route(b, ids.data(), n, E, 1, 7);
  hash_route(c, ids.data(), n, E, 1, 8);
  EXPECT_EQ(a.slot_expert, b.slot_expert);
  EXPECT_NE(a.slot_expert, c.slot_expert);  // another layer, another table
  for (int64_t e = 0; e < E; ++e) {         // 1000 expected per expert; a fair hash stays within 15%
    EXPECT_GT(a.expert_rows(e), 850) << e;
    EXPECT_LT(a.expert_rows(e), 1150) << e;
  }
}

}  // namespace
}  // namespace moelab::routing
