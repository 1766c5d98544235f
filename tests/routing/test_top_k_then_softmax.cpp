// The top-k-then-softmax rule on hand cases, against top-k with renormalisation on softmax probabilities (the same
// function under softmax gating), and its backward against finite differences in double.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "routing/router.h"
#include "routing/top_k.h"
#include "routing/top_k_then_softmax.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using routing::DispatchPlan;

TEST(TopKThenSoftmax, KeepsTheLargestLogitsWeightedByTheirOwnSoftmax) {
  const std::vector<double> logits = {1,    3,   2,  0,     // experts 1 and 2: softmax of (3, 2)
                                      2,    2,   2,  -1,    // ties: the lower indices, half each
                                      1000, 999, -5, 998};  // large logits stay finite
  DispatchPlan<double> plan;
  routing::top_k_then_softmax_forward(plan, logits.data(), 3, 4, 2);
  EXPECT_EQ(plan.token_offsets, (std::vector<int32_t>{0, 2, 4, 6}));
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{1, 2, 0, 1, 0, 1}));
  const double e = std::exp(1.0);
  const std::vector<double> want = {e / (e + 1), 1 / (e + 1), 0.5, 0.5, e / (e + 1), 1 / (e + 1)};
  for (size_t s = 0; s < want.size(); ++s) EXPECT_NEAR(plan.slot_weight[s], want[s], 1e-15) << "slot " << s;
  // Every expert's rows, as the dispatch reads them.
  EXPECT_EQ(plan.expert_offsets, (std::vector<int32_t>{0, 2, 5, 6, 6}));
}

TEST(TopKThenSoftmax, IsTopKRenormalisedUnderSoftmaxGating) {
  constexpr int64_t N = 37, E = 8, d = 5;
  const std::vector<double> x64 = testing::random_vector(N * d, 1), w64 = testing::random_vector(E * d, 2, 2.0);
  const std::vector<float> x(x64.begin(), x64.end()), w(w64.begin(), w64.end());
  std::vector<float> logits(N * E), probs(N * E);
  routing::router_forward(cpu::ComputeContext{}, logits.data(), probs.data(), x.data(), w.data(), N, d, E);
  for (int64_t k : {1, 2, 3, 8}) {
    DispatchPlan<float> a, b;
    routing::top_k_then_softmax_forward(a, logits.data(), N, E, k);
    routing::top_k_forward(b, probs.data(), N, E, k, /*renormalize=*/true);
    EXPECT_EQ(a.slot_expert, b.slot_expert) << "k " << k;
    for (size_t s = 0; s < a.slot_weight.size(); ++s) EXPECT_NEAR(a.slot_weight[s], b.slot_weight[s], 2e-6);
  }
}

TEST(TopKThenSoftmax, BackwardMatchesFiniteDifferencesOfTheLogits) {
  for (int64_t k : {1, 2, 3}) {
    SCOPED_TRACE("k " + std::to_string(k));
    constexpr int64_t N = 6, E = 5;
    std::vector<double> logits = testing::random_vector(N * E, 10 + k, 2.0);
    const std::vector<double> g = testing::random_vector(N * k, 20 + k);  // d loss / d slot weight
    DispatchPlan<double> plan;
    routing::top_k_then_softmax_forward(plan, logits.data(), N, E, k);
    const auto chosen = plan.slot_expert;
    std::vector<double> d_logits(N * E, 123.0);  // assigned: the stale values must go
    routing::top_k_then_softmax_backward(d_logits.data(), g.data(), plan);
    testing::expect_gradient_matches("d_logits", logits, d_logits, [&] {
      routing::top_k_then_softmax_forward(plan, logits.data(), N, E, k);
      EXPECT_EQ(plan.slot_expert, chosen) << "a perturbation changed the selection";
      return testing::dot(plan.slot_weight, g);
    });
  }
}

}  // namespace
}  // namespace moelab
