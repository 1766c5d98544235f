// Per-expert gradient norms: each is the L2 norm of exactly that expert's three gradient tensors, and an expert
// no token reached has norm 0.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/model.h"
#include "train/expert_grad_norms.h"

namespace moelab {
namespace {

Config tiny_config() {
  Config cfg;
  cfg.model.vocab_size = 16, cfg.model.d_model = 8, cfg.model.n_layers = 2, cfg.model.n_heads = 2;
  cfg.model.max_seq_len = 8;
  cfg.moe.n_experts = 4, cfg.moe.expert_hidden = 8, cfg.moe.first_dense_layers = 1;  // layer 1 is the MoE layer
  cfg.train.seq_len = 8, cfg.train.batch_size = 2;
  validate(cfg);
  return cfg;
}

TEST(ExpertGradNorms, EachNormIsItsExpertsGradientAlone) {
  Model model(tiny_config());
  model.init_params(3);
  std::vector<int32_t> inputs(16), targets(16);
  for (int i = 0; i < 16; ++i) inputs[i] = (i * 5) % 16, targets[i] = (i * 7 + 1) % 16;
  model.zero_grads();
  model.forward(inputs.data(), targets.data(), 2, 8);
  model.backward(1.0);
  // Silence expert 2 by hand: a gradient of 0 must give norm 0, and no other expert's norm may change.
  const nlohmann::json before = expert_grad_norms(model);
  for (const char* w : {"w1", "w3", "w2"}) {
    const ParamSpec& s = model.table().find(std::string("model.layers.1.block_sparse_moe.experts.2.") + w + ".weight");
    std::fill_n(model.grads().begin() + s.offset, s.numel, 0.0f);
  }
  const nlohmann::json after = expert_grad_norms(model);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0]["layer"], 1);
  for (int e = 0; e < 4; ++e) {
    double expected = 0;
    for (const char* w : {"w1", "w3", "w2"}) {
      const ParamSpec& s =
          model.table().find("model.layers.1.block_sparse_moe.experts." + std::to_string(e) + "." + w + ".weight");
      for (int64_t k = 0; k < s.numel; ++k) expected += std::pow(static_cast<double>(model.grads()[s.offset + k]), 2);
    }
    EXPECT_NEAR(after[0]["norms"][e].get<double>(), std::sqrt(expected), 1e-9 * (1 + std::sqrt(expected)));
    if (e != 2) {
      EXPECT_EQ(after[0]["norms"][e], before[0]["norms"][e]);
    }
  }
  EXPECT_EQ(after[0]["norms"][2].get<double>(), 0.0);
  EXPECT_GT(before[0]["norms"][2].get<double>(), 0.0);
}

}  // namespace
}  // namespace moelab
