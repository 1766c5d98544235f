// The routing tally over several forward passes against counts taken by hand from each pass's plans and router
// probabilities.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "eval/routing_tally.h"
#include "model/model.h"
#include "support/small_model.h"

namespace moelab {
namespace {

TEST(RoutingTally, SumsEveryPassOfEveryMoeLayer) {
  Config cfg = testing::small_model_config("f32", 8, 2);
  cfg.routing.rule = SelectionRule::TopP, cfg.routing.top_p = 0.5;  // tokens use different numbers of experts
  validate(cfg);
  Model model(cfg);
  model.init_params(5);
  const int64_t B = 2, T = 8, N = B * T, E = cfg.moe.n_experts;
  const testing::TwoBatches batches = testing::two_batches(N, cfg.model.vocab_size);

  RoutingTally tally;
  const size_t L = model.layer_routing().size();
  ASSERT_EQ(L, 2u);
  std::vector<std::vector<double>> slots(L, std::vector<double>(E, 0));     // [L][E]
  std::vector<std::vector<double>> hist(L, std::vector<double>(E + 1, 0));  // [L][E+1]
  std::vector<double> entropy(L, 0);                                        // [L]
  for (const auto* inputs : {&batches.first, &batches.second}) {
    model.forward(inputs->data(), nullptr, B, T);
    tally.add(model);
    const auto routing = model.layer_routing();
    for (size_t l = 0; l < L; ++l) {
      const auto& plan = *routing[l].plan;
      for (int64_t t = 0; t < N; ++t) {
        hist[l][plan.token_offsets[t + 1] - plan.token_offsets[t]] += 1;
        double h = 0;
        for (int64_t e = 0; e < E; ++e) {
          const double p = routing[l].probs[t * E + e];
          if (p > 0) h -= p * std::log(p);
        }
        entropy[l] += h;
      }
      for (int32_t e : plan.slot_expert) slots[l][e] += 1;
    }
  }

  const nlohmann::json j = tally.to_json(/*baseline_k=*/2);
  ASSERT_EQ(j.size(), L);
  for (size_t l = 0; l < L; ++l) {
    SCOPED_TRACE("MoE layer " + std::to_string(l));
    EXPECT_EQ(j[l]["layer"], model.layer_routing()[l].layer);
    EXPECT_EQ(j[l]["tokens"], 2 * N);
    double total = 0;
    for (int64_t e = 0; e < E; ++e) {
      EXPECT_NEAR(j[l]["expert_fraction"][e].get<double>(), slots[l][e] / (2 * N), 1e-12);
      total += slots[l][e];
    }
    for (int64_t k = 0; k <= E; ++k)
      EXPECT_NEAR(j[l]["experts_per_token_hist"][k].get<double>(), hist[l][k] / (2 * N), 1e-12);
    EXPECT_NEAR(j[l]["mean_experts_per_token"].get<double>(), total / (2 * N), 1e-12);
    EXPECT_NEAR(j[l]["active_vs_topk"].get<double>(), total / (2 * N) / 2, 1e-12);
    EXPECT_NEAR(j[l]["mean_entropy"].get<double>(), entropy[l] / (2 * N), 1e-6);
    const double max_load = *std::max_element(slots[l].begin(), slots[l].end());
    EXPECT_NEAR(j[l]["load_max_over_mean"].get<double>(), max_load / (total / E), 1e-12);
  }
}

}  // namespace
}  // namespace moelab
