// Paper 1's router baselines: a frozen router never changes and has no optimizer state; a resampled router is
// redrawn from its initial distribution at every step (reproducibly), and is not trained either.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/config.h"
#include "model/model.h"
#include "support/synthetic_data.h"
#include "support/temp_dir.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace moelab {
namespace {

constexpr int64_t kVocab = 48;

Config tiny(const testing::TempDir& dir, const std::string& router, const std::string& out) {
  Config cfg;
  cfg.data.dir = dir.file("data");
  cfg.model.d_model = 16, cfg.model.n_layers = 2, cfg.model.n_heads = 2, cfg.model.max_seq_len = 16;
  cfg.moe.n_experts = 4, cfg.moe.expert_hidden = 16;
  cfg.routing.router = parse_design<RouterKind>(router, "router");
  cfg.train.seq_len = 16, cfg.train.batch_size = 2, cfg.train.steps = 6, cfg.train.warmup_steps = 1;
  cfg.train.eval_every = 0, cfg.train.eval_tokens = 256, cfg.train.checkpoint_every = 3;
  cfg.train.out_dir = dir.file(out);
  validate(cfg);
  return cfg;
}

// The router weights (all MoE layers, concatenated) and every other weight, of a checkpoint.
struct Weights {
  std::vector<float> router, rest;
};

Weights weights_of(const std::string& checkpoint) {
  Model m(load_checkpoint_config(checkpoint));
  load_model_weights(checkpoint, m);
  Weights w;
  for (const auto& spec : m.table().specs()) {
    auto& dst = spec.group == ParamGroup::Router ? w.router : w.rest;
    dst.insert(dst.end(), m.params().begin() + spec.offset, m.params().begin() + spec.offset + spec.numel);
  }
  return w;
}

Weights initial_weights(Config cfg) {
  cfg.model.vocab_size = kVocab;
  Model m(cfg);
  m.init_params(cfg.train.seed);
  Weights w;
  for (const auto& spec : m.table().specs()) {
    auto& dst = spec.group == ParamGroup::Router ? w.router : w.rest;
    dst.insert(dst.end(), m.params().begin() + spec.offset, m.params().begin() + spec.offset + spec.numel);
  }
  return w;
}

bool optimizer_has_router_state(const std::string& checkpoint) {
  const auto file = SafetensorsFile::open(checkpoint + "/optimizer.safetensors");
  for (const auto& name : file.names())
    if (name.find("block_sparse_moe.gate") != std::string::npos) return true;
  return false;
}

TEST(RouterKinds, FrozenRouterIsBitIdenticalAfterTrainingAndHasNoOptimizerState) {
  testing::TempDir dir;
  testing::write_bigram_data_folder(dir.file("data"), kVocab);
  const Config cfg = tiny(dir, "frozen", "run");
  train(cfg, "");
  const std::string ckpt = resolve_checkpoint(dir.file("run"));
  const Weights before = initial_weights(cfg), after = weights_of(ckpt);
  ASSERT_FALSE(after.router.empty());
  EXPECT_EQ(after.router, before.router);
  EXPECT_NE(after.rest, before.rest);  // everything else did train
  EXPECT_FALSE(optimizer_has_router_state(ckpt));
}

TEST(RouterKinds, LearnedRouterTrainsAndHasOptimizerState) {
  testing::TempDir dir;
  testing::write_bigram_data_folder(dir.file("data"), kVocab);
  const Config cfg = tiny(dir, "learned", "run");
  train(cfg, "");
  const std::string ckpt = resolve_checkpoint(dir.file("run"));
  EXPECT_NE(weights_of(ckpt).router, initial_weights(cfg).router);
  EXPECT_TRUE(optimizer_has_router_state(ckpt));
}

TEST(RouterKinds, ResampledRouterIsRedrawnEveryStepReproducibly) {
  testing::TempDir dir;
  testing::write_bigram_data_folder(dir.file("data"), kVocab);
  const Config cfg = tiny(dir, "resampled", "a");
  train(cfg, "");
  train(tiny(dir, "resampled", "b"), "");
  const std::string a6 = dir.file("a/checkpoints/step-00000006"), a3 = dir.file("a/checkpoints/step-00000003");
  const Weights w6 = weights_of(a6), w3 = weights_of(a3);
  EXPECT_NE(w6.router, w3.router);                                             // redrawn between steps
  EXPECT_NE(w6.router, initial_weights(cfg).router);                           // not the initial draw
  EXPECT_EQ(w6.router, weights_of(resolve_checkpoint(dir.file("b"))).router);  // a function of (seed, step)
  // The draw of the last step is what a model built for that step holds.
  Config c = cfg;
  c.model.vocab_size = kVocab;
  Model m(c);
  m.resample_routers(c.train.seed, 5);  // step index 5 is the 6th step
  std::vector<float> drawn;
  for (const auto& spec : m.table().specs())
    if (spec.group == ParamGroup::Router)
      drawn.insert(drawn.end(), m.params().begin() + spec.offset, m.params().begin() + spec.offset + spec.numel);
  EXPECT_EQ(drawn, w6.router);
  EXPECT_FALSE(optimizer_has_router_state(a6));
}

TEST(LossFreeBalancing, BiasMovesAgainstEachExpertsLoadError) {
  Config cfg;
  cfg.model.vocab_size = kVocab, cfg.model.d_model = 16, cfg.model.n_layers = 1, cfg.model.n_heads = 2;
  cfg.moe.n_experts = 4, cfg.moe.expert_hidden = 8;
  cfg.routing.bias_update_rate = 0.01;
  validate(cfg);
  Model m(cfg);
  m.init_params(3);
  const auto& spec = m.table().find("model.layers.0.block_sparse_moe.e_score_correction_bias");
  EXPECT_FALSE(spec.trainable);
  std::vector<int32_t> ids(64);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 13) % kVocab);
  m.forward(ids.data(), nullptr, 4, 16);
  const auto& plan = *m.layer_routing()[0].plan;
  m.update_selection_bias();
  const double mean = static_cast<double>(plan.n_slots()) / 4;
  int moved = 0;
  for (int64_t e = 0; e < 4; ++e) {
    const float b = m.params()[spec.offset + e];
    const double load = static_cast<double>(plan.expert_rows(e));
    EXPECT_FLOAT_EQ(b, load > mean ? -0.01f : load < mean ? 0.01f : 0.0f) << "expert " << e << " load " << load;
    moved += b != 0;
  }
  EXPECT_GT(moved, 0);
}

}  // namespace
}  // namespace moelab
