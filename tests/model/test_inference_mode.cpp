// Model::InferenceMode: forwards that no backward follows, with the weights frozen. They keep no attention
// probabilities and, in bf16, round the weights once per scope: the very bits of an ordinary forward. In f32 they
// read the weights packed for oneDNN's matmul, whose sums may round otherwise than sgemm's: equal to float
// rounding. What the scope promises (no backward, no weight changes) is enforced.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/memory_estimate.h"
#include "model/model.h"
#include "support/small_model.h"

namespace moelab {
namespace {

constexpr int64_t kB = 3, kT = 80, kV = 96;  // T spans two of attention's 64-row blocks

Config small(const std::string& precision) { return testing::small_model_config(precision, kT, kB); }

struct Batch {
  std::vector<int32_t> inputs, targets;  // [B,T]
};

Batch batch(int64_t seed) {
  Batch b{std::vector<int32_t>(kB * kT), std::vector<int32_t>(kB * kT)};
  for (int64_t i = 0; i < kB * kT; ++i)
    b.inputs[i] = static_cast<int32_t>((seed * i + 3) % kV), b.targets[i] = static_cast<int32_t>((i + seed) % kV);
  return b;
}

std::vector<float> logits_of(const Model& m) { return {m.logits(), m.logits() + kB * kT * kV}; }

// bf16: the same bits; f32: the same up to float rounding of sums over a few dozen terms.
void expect_same(const std::vector<float>& actual, const std::vector<float>& expected, const std::string& precision) {
  if (precision == "bf16") {
    EXPECT_EQ(actual, expected);
    return;
  }
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    ASSERT_NEAR(actual[i], expected[i], 1e-5 * (1 + std::fabs(expected[i]))) << i;
}

void expect_same(double actual, double expected, const std::string& precision) {
  if (precision == "bf16") {
    EXPECT_EQ(actual, expected);
    return;
  }
  EXPECT_NEAR(actual, expected, 1e-5 * (1 + std::fabs(expected)));
}

class InferenceModePrecisions : public ::testing::TestWithParam<std::string> {};

// A model built for inference holds no gradients, half an f32 model's memory, and computes the very function of one
// built for training: the same bits outside InferenceMode, with or without targets.
TEST_P(InferenceModePrecisions, AModelBuiltForInferenceHasNoGradientsAndTheSameForward) {
  const Config cfg = small(GetParam());
  Model training(cfg), inference(cfg, ModelUse::Inference);
  training.init_params(7), inference.init_params(7);
  EXPECT_EQ(std::as_const(training).grads().size(), training.params().size());
  EXPECT_TRUE(std::as_const(inference).grads().empty());
  const Batch b = batch(3);
  const Losses want = training.forward(b.inputs.data(), b.targets.data(), kB, kT);
  const std::vector<float> want_logits = logits_of(training);
  const Losses got = inference.forward(b.inputs.data(), b.targets.data(), kB, kT);
  EXPECT_EQ(got.total, want.total);
  EXPECT_EQ(logits_of(inference), want_logits);
  const MemoryEstimate model = estimate_memory(cfg, MemoryUse::Model),
                       weights = estimate_memory(cfg, MemoryUse::InferenceModel);
  EXPECT_EQ(model.bytes_per_param - weights.bytes_per_param, 4) << "the gradients' 4 bytes";
}

TEST_P(InferenceModePrecisions, GivesTheSameLogitsAndLossesAsAnOrdinaryForward) {
  Model model(small(GetParam()));
  model.init_params(7);
  const Batch b = batch(5);
  const Losses ordinary = model.forward(b.inputs.data(), b.targets.data(), kB, kT);
  const std::vector<float> expected = logits_of(model);
  const Model::InferenceMode inference(model);
  for (int pass = 0; pass < 2; ++pass) {  // the second pass reuses what the first rounded (bf16)
    SCOPED_TRACE(::testing::Message() << "pass " << pass);
    const Losses l = model.forward(b.inputs.data(), b.targets.data(), kB, kT);
    expect_same(l.ce, ordinary.ce, GetParam());
    expect_same(l.load_balance, ordinary.load_balance, GetParam());
    expect_same(logits_of(model), expected, GetParam());
  }
}

// Weights changed between two scopes are the ones the second scope uses: it rounds them afresh.
TEST_P(InferenceModePrecisions, ANewScopeUsesTheCurrentWeights) {
  Model changed(small(GetParam())), fresh(small(GetParam()));
  changed.init_params(7);
  const Batch b = batch(3);
  Losses before;
  {
    const Model::InferenceMode inference(changed);
    before = changed.forward(b.inputs.data(), b.targets.data(), kB, kT);
  }
  for (float& w : changed.mutable_params()) w *= 1.25f;
  fresh.mutable_params() = changed.params();
  const Model::InferenceMode inference(changed);
  const Losses after = changed.forward(b.inputs.data(), b.targets.data(), kB, kT);
  const Losses expected = fresh.forward(b.inputs.data(), b.targets.data(), kB, kT);
  EXPECT_GT(std::fabs(after.ce - before.ce), 1e-3);
  expect_same(after.ce, expected.ce, GetParam());
  expect_same(logits_of(changed), logits_of(fresh), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Precisions, InferenceModePrecisions, ::testing::Values("f32", "bf16"));

// An f32 model packs each weight matrix its forward reads (every expert's three included) at its first use in a
// scope, reuses the copies in the next forward, and drops them when the outermost scope ends; bf16 packs nothing.
TEST(InferenceMode, F32PacksTheWeightsForTheScopeOnly) {
  for (const std::string precision : {"f32", "bf16"}) {
    Model model(small(precision));
    model.init_params(2);
    const Batch b = batch(4);
    int64_t packed = 0;
    {
      const Model::InferenceMode outer(model);
      {
        const Model::InferenceMode inner(model);
        model.forward(b.inputs.data(), b.targets.data(), kB, kT);
        packed = model.packed_weight_matrices();
      }
      EXPECT_EQ(model.packed_weight_matrices(), packed) << precision << ": the outer scope keeps them";
      model.forward(b.inputs.data(), b.targets.data(), kB, kT);
      EXPECT_EQ(model.packed_weight_matrices(), packed) << precision << ": a second forward packs nothing new";
    }
    EXPECT_EQ(model.packed_weight_matrices(), 0) << precision;
    const auto& m = model.config().model;
    if (precision == "f32")
      EXPECT_GE(packed, m.n_layers * 3 * model.config().moe.n_experts + 1) << "experts' matrices and the LM head";
    else
      EXPECT_EQ(packed, 0);
  }
}

// Packing turned off (what a training run does for its evaluations): nothing is packed, and the forward is the
// ordinary one to the bit.
TEST(InferenceMode, PackingCanBeTurnedOff) {
  Model model(small("f32"));
  model.init_params(6);
  model.set_pack_weights_for_inference(false);
  const Batch b = batch(8);
  model.forward(b.inputs.data(), b.targets.data(), kB, kT);
  const std::vector<float> expected = logits_of(model);
  const Model::InferenceMode inference(model);
  model.forward(b.inputs.data(), b.targets.data(), kB, kT);
  EXPECT_EQ(model.packed_weight_matrices(), 0);
  EXPECT_EQ(logits_of(model), expected);
}

// Inference reuses one expert's SwiGLU rows for every expert: the same results under routing rules that give the
// experts very different row counts (none included), and with a shared expert beside the routed ones.
TEST(InferenceMode, SameResultsUnderEveryRoutingRule) {
  for (const std::string rule : {"top_p", "expert_choice"}) {
    Config cfg = small("f32");
    cfg.routing.rule = parse_design<SelectionRule>(rule, "rule");
    cfg.moe.n_shared_experts = rule == "top_p" ? 1 : 0;
    validate(cfg);
    Model model(cfg);
    model.init_params(4);
    const Batch b = batch(9);
    const Losses ordinary = model.forward(b.inputs.data(), b.targets.data(), kB, kT);
    const std::vector<float> expected = logits_of(model);
    const Model::InferenceMode inference(model);
    SCOPED_TRACE(rule);
    expect_same(model.forward(b.inputs.data(), b.targets.data(), kB, kT).ce, ordinary.ce, "f32");
    expect_same(logits_of(model), expected, "f32");
  }
}

// An ordinary forward after a scope keeps what backward needs again: its gradients equal a fresh model's.
TEST(InferenceMode, BackwardWorksAgainAfterTheScope) {
  Model model(small("f32")), fresh(small("f32"));
  model.init_params(9);
  fresh.mutable_params() = model.params();
  const Batch b = batch(7);
  {
    const Model::InferenceMode inference(model);
    model.forward(b.inputs.data(), b.targets.data(), kB, kT);
  }
  model.forward(b.inputs.data(), b.targets.data(), kB, kT);
  fresh.forward(b.inputs.data(), b.targets.data(), kB, kT);
  model.zero_grads(), fresh.zero_grads();
  model.backward(1.0), fresh.backward(1.0);
  EXPECT_EQ(model.grads(), fresh.grads());
}

using InferenceModeDeathTest = ::testing::Test;

TEST(InferenceModeDeathTest, RefusesBackwardAfterAnInferenceForward) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Model model(small("f32"));
  model.init_params(1);
  const Batch b = batch(2);
  {
    const Model::InferenceMode inference(model);
    model.forward(b.inputs.data(), b.targets.data(), kB, kT);
  }
  EXPECT_DEATH(model.backward(1.0), "backward needs a forward with targets, outside Model::InferenceMode");
}

TEST(InferenceModeDeathTest, AModelBuiltForInferenceRefusesBackward) {
  Model model(small("f32"), ModelUse::Inference);
  model.init_params(7);
  const Batch b = batch(3);
  model.forward(b.inputs.data(), b.targets.data(), kB, kT);
  EXPECT_DEATH(model.backward(1.0), "a model built for inference has no gradients");
  EXPECT_DEATH(model.zero_grads(), "a model built for inference has no gradients");
}

TEST(InferenceModeDeathTest, RefusesWeightChangesInsideTheScope) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Model model(small("bf16"));
  model.init_params(1);
  const Model::InferenceMode outer(model);
  {
    const Model::InferenceMode inner(model);  // scopes nest: the weights stay frozen after the inner one ends
  }
  EXPECT_DEATH(model.mutable_params()[0] = 1.0f, "the weights are frozen inside Model::InferenceMode");
  EXPECT_DEATH(model.init_params(2), "the weights are frozen inside Model::InferenceMode");
}

}  // namespace
}  // namespace moelab
