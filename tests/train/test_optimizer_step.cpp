// optimizer_step's one pass also rounds a bf16 model's weights into its copy and zeroes the gradients, so that the
// next forward and zero_grads() skip their own passes (Model::optimizer_access). A model trained so must follow
// the very same trajectory as one that is made to redo both passes every step.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/config.h"
#include "model/model.h"
#include "support/small_model.h"
#include "train/trainer.h"

namespace moelab {
namespace {

constexpr int64_t kB = 2, kT = 16, kV = 64;

// router: frozen makes a tensor the optimizer skips, whose rounded copy must stay right all the same; "bias" is a
// learned router with loss-free balancing, whose bias moves outside the optimizer after each step.
Config small(const std::string& precision, const std::string& router) {
  Config cfg = testing::small_model_config(precision, kT, kB);
  cfg.model.vocab_size = kV;
  cfg.routing.router = parse_design<RouterKind>(router == "bias" ? "learned" : router, "router");
  if (router == "bias") cfg.routing.bias_update_rate = 0.05;
  cfg.train.lr = 1e-2;
  validate(cfg);
  return cfg;
}

struct Trajectory {
  std::vector<double> losses;
  std::vector<float> params;
};

// Steps as the trainer takes them (update_selection_bias does nothing without loss-free balancing). redo_passes:
// the weights and gradients are handed out through mutable_params() and grads() before each step, which tells the model
// that its rounded copy is stale and its gradients are not zero.
Trajectory run(const Config& cfg, bool redo_passes) {
  Model model(cfg);
  model.init_params(11);
  OptimizerState opt{std::vector<float>(model.table().total_numel()), std::vector<float>(model.table().total_numel())};
  std::vector<int32_t> inputs(kB * kT), targets(kB * kT);
  Trajectory out;
  for (int64_t step = 0; step < 4; ++step) {
    for (int64_t i = 0; i < kB * kT; ++i)
      inputs[i] = static_cast<int32_t>((7 * i + 3 * step) % kV), targets[i] = static_cast<int32_t>((i + step) % kV);
    if (redo_passes) model.mutable_params(), model.grads();
    model.zero_grads();
    out.losses.push_back(model.forward(inputs.data(), targets.data(), kB, kT).total);
    model.backward(1.0);
    const GradientNorm g = measure_gradients(model, cfg.train.grad_clip);
    optimizer_step(model, opt, cfg.train, cfg.train.lr, step + 1, g.clip_factor);
    model.update_selection_bias();
    for (float x : std::as_const(model).grads()) EXPECT_EQ(x, 0.0f) << "optimizer_step leaves the gradients at 0";
  }
  out.params = std::as_const(model).params();
  return out;
}

class FusedOptimizerStep : public ::testing::TestWithParam<std::string> {};

TEST_P(FusedOptimizerStep, FollowsTheTrajectoryOfSeparatePasses) {
  for (const std::string router : {"learned", "frozen", "bias"}) {
    const Config cfg = small(GetParam(), router);
    const Trajectory fused = run(cfg, false), separate = run(cfg, true);
    EXPECT_EQ(fused.losses, separate.losses) << router;
    EXPECT_EQ(fused.params, separate.params) << router;
    EXPECT_NE(fused.losses.front(), fused.losses.back()) << router;  // the weights did move
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, FusedOptimizerStep, ::testing::Values("f32", "bf16"));

}  // namespace
}  // namespace moelab
