// The op profile behind `moelab bench`: nothing is recorded while it is off; while on, every scope adds its calls,
// time and FLOPs under its name; a model step records each op with the FLOPs its shapes imply.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "core/op_profile.h"
#include "model/config.h"
#include "model/model.h"

namespace moelab {
namespace {

std::map<std::string, profile::OpStats> by_name() {
  std::map<std::string, profile::OpStats> out;
  for (const auto& op : profile::snapshot()) out[op.name] = op;
  return out;
}

TEST(OpProfile, RecordsOnlyWhileEnabled) {
  profile::reset();
  { profile::Scope p("off", 10); }
  EXPECT_TRUE(profile::snapshot().empty());
  profile::set_enabled(true);
  { profile::Scope p("b", 5); }
  { profile::Scope p("a", 1); }
  { profile::Scope p("b", 7); }
  profile::set_enabled(false);
  { profile::Scope p("b", 100); }
  const auto ops = profile::snapshot();
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].name, "b");  // first seen first
  EXPECT_EQ(ops[0].calls, 2);
  EXPECT_EQ(ops[0].flops, 12);
  EXPECT_GE(ops[0].seconds, 0);
  EXPECT_EQ(ops[1].name, "a");
  profile::reset();
  EXPECT_TRUE(profile::snapshot().empty());
}

TEST(OpProfile, AModelStepRecordsEachOpWithTheFlopsOfItsShapes) {
  Config cfg;
  cfg.model.vocab_size = 64, cfg.model.d_model = 16, cfg.model.n_layers = 2, cfg.model.n_heads = 2;
  cfg.model.max_seq_len = 8;
  cfg.moe.n_experts = 4, cfg.moe.expert_hidden = 12;
  cfg.train.seq_len = 8, cfg.train.batch_size = 3;
  validate(cfg);
  Model model(cfg);
  model.init_params(1);
  const int64_t B = 3, T = 8, N = B * T, d = 16, h = 12, V = 64, H = 2, D = 8;
  std::vector<int32_t> inputs(N), targets(N);
  for (int64_t i = 0; i < N; ++i)
    inputs[i] = static_cast<int32_t>(i % V), targets[i] = static_cast<int32_t>((5 * i) % V);
  profile::reset();
  profile::set_enabled(true);
  model.forward(inputs.data(), targets.data(), B, T);
  model.backward(1.0);
  profile::set_enabled(false);
  auto ops = by_name();
  double slots = 0;  // every MoE layer's expert rows: what the expert GEMMs multiply
  for (const auto& r : model.layer_routing()) slots += static_cast<double>(r.token_plan->n_slots());
  EXPECT_EQ(slots, 2.0 * N * 2);  // top-2 in both layers
  EXPECT_DOUBLE_EQ(ops["fwd ffn.gate_up_proj"].flops, 4.0 * slots * d * h);
  EXPECT_DOUBLE_EQ(ops["fwd ffn.down_proj"].flops, 2.0 * slots * h * d);
  EXPECT_DOUBLE_EQ(ops["bwd ffn.gate_up_proj"].flops, 8.0 * slots * d * h);
  EXPECT_DOUBLE_EQ(ops["fwd lm_head"].flops, 2.0 * N * d * V);
  EXPECT_DOUBLE_EQ(ops["bwd lm_head"].flops, 4.0 * N * d * V);
  EXPECT_DOUBLE_EQ(ops["fwd attention.qkv_proj"].flops, 2 * 2.0 * N * d * 3 * d);
  EXPECT_DOUBLE_EQ(ops["fwd attention.core"].flops, 2 * 2.0 * B * H * D * T * (T + 1));
  EXPECT_DOUBLE_EQ(ops["bwd attention.core"].flops, 2 * ops["fwd attention.core"].flops);
  EXPECT_EQ(ops["fwd attention.norm"].calls, 2);
  EXPECT_EQ(ops["fwd residual_add"].calls, 4);
  EXPECT_EQ(ops["bwd residual_add"].calls, 4);
  for (const char* name : {"fwd embedding", "fwd moe.routing", "fwd moe.dispatch", "fwd moe.combine",
                           "fwd cross_entropy", "bwd cross_entropy", "bwd moe.routing", "bwd embedding"})
    EXPECT_EQ(ops[name].calls, name[4] == 'm' ? 2 : 1) << name;
  profile::reset();
}

}  // namespace
}  // namespace moelab
