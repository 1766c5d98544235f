// train.precision = "bf16": the model's matrix multiplies take bf16 inputs (f32 accumulation). The same weights
// give logits, loss and gradients close to the f32 model's (bf16 has 8 significant bits), but not identical.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/model.h"
#include "support/gradcheck.h"
#include "support/small_model.h"

namespace moelab {
namespace {

Config small(const std::string& precision) { return testing::small_model_config(precision, 16, 4); }

TEST(Bf16Precision, CloseToF32ButNotIdentical) {
  Model f32(small("f32")), bf16(small("bf16"));
  f32.init_params(5);
  bf16.mutable_params() = f32.params();
  const int64_t B = 4, T = 16, N = B * T, V = 96;
  std::vector<int32_t> inputs(N), targets(N);
  for (int64_t i = 0; i < N; ++i)
    inputs[i] = static_cast<int32_t>((7 * i) % V), targets[i] = static_cast<int32_t>((3 * i + 1) % V);
  const Losses a = f32.forward(inputs.data(), targets.data(), B, T);
  std::vector<float> logits_f32(f32.logits(), f32.logits() + N * V);
  const Losses b = bf16.forward(inputs.data(), targets.data(), B, T);
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < N * V; ++i)
    diff = testing::worse(diff, std::abs(bf16.logits()[i] - logits_f32[i])),
    scale = std::max(scale, static_cast<double>(std::abs(logits_f32[i])));
  EXPECT_GT(diff, 0.0);           // bf16 really was used
  EXPECT_LT(diff, 0.03 * scale);  // and stays within bf16 rounding
  EXPECT_NEAR(b.ce, a.ce, 0.01 * a.ce);
  f32.zero_grads(), bf16.zero_grads();
  f32.backward(1.0), bf16.backward(1.0);
  double dot = 0, n1 = 0, n2 = 0;  // the gradients point the same way
  for (size_t i = 0; i < f32.grads().size(); ++i)
    dot += static_cast<double>(f32.grads()[i]) * bf16.grads()[i], n1 += std::pow(f32.grads()[i], 2),
        n2 += std::pow(bf16.grads()[i], 2);
  EXPECT_GT(dot / std::sqrt(n1 * n2), 0.999);
  EXPECT_NEAR(std::sqrt(n2), std::sqrt(n1), 0.02 * std::sqrt(n1));
}

// Each forward rounds the weights to bf16 afresh, so weights changed between steps (an optimizer step) are the ones
// used: a model whose weights were changed after a forward gives what a model built with those weights gives.
TEST(Bf16Precision, EachForwardUsesTheCurrentWeights) {
  Model changed(small("bf16")), fresh(small("bf16"));
  changed.init_params(5);
  const int64_t B = 4, T = 16, N = B * T, V = 96;
  std::vector<int32_t> inputs(N), targets(N);
  for (int64_t i = 0; i < N; ++i)
    inputs[i] = static_cast<int32_t>((5 * i) % V), targets[i] = static_cast<int32_t>((i + 2) % V);
  const Losses before = changed.forward(inputs.data(), targets.data(), B, T);
  for (float& w : changed.mutable_params()) w *= 1.5f;
  fresh.mutable_params() = changed.params();
  const Losses after = changed.forward(inputs.data(), targets.data(), B, T);
  const Losses expected = fresh.forward(inputs.data(), targets.data(), B, T);
  EXPECT_NE(after.ce, before.ce);
  EXPECT_EQ(after.ce, expected.ce);
  EXPECT_EQ(std::vector<float>(changed.logits(), changed.logits() + N * V),
            std::vector<float>(fresh.logits(), fresh.logits() + N * V));
  changed.zero_grads(), fresh.zero_grads();
  changed.backward(1.0), fresh.backward(1.0);
  EXPECT_EQ(changed.grads(), fresh.grads());
}

// Two backwards add their gradients: the first after zeroing writes the expert weight gradients (staged, without
// reading grads), the second adds to them. Each expert gradient after both must be the float sum of the two taken
// alone; the other gradients accumulate inside their kernels (embedding rows one token at a time), so they agree
// to rounding.
TEST(Bf16Precision, TwoBackwardsAddTheirGradients) {
  Model model(small("bf16"));
  model.init_params(7);
  const int64_t B = 4, T = 16, N = B * T, V = 96;
  const testing::TwoBatches data = testing::two_batches(N, V);
  const auto& in1 = data.first;
  const auto& in2 = data.second;
  const auto& targets = data.targets;
  auto grads_of = [&](const std::vector<const std::vector<int32_t>*>& batches) {
    model.zero_grads();
    for (const auto* inputs : batches) {
      model.forward(inputs->data(), targets.data(), B, T);
      model.backward(1.0);
    }
    return model.grads();
  };
  const std::vector<float> g1 = grads_of({&in1}), g2 = grads_of({&in2}), both = grads_of({&in1, &in2});
  int64_t expert_values = 0;
  double worst = 0, scale = 0;
  for (const auto& spec : model.table().specs()) {
    const bool expert = spec.name.find(".experts.") != std::string::npos;
    for (int64_t i = spec.offset; i < spec.offset + spec.numel; ++i) {
      const float sum = g1[i] + g2[i];
      if (expert) {
        ASSERT_EQ(both[i], sum) << spec.name << " element " << i - spec.offset;
        ++expert_values;
      }
      worst = testing::worse(worst, std::abs(both[i] - sum));
      scale = std::max(scale, static_cast<double>(std::abs(sum)));
    }
  }
  EXPECT_GT(expert_values, 0);
  EXPECT_LT(worst, 1e-6 * scale);
  EXPECT_NE(g1, g2);  // two batches, two gradients: the sum is not a doubling
}

}  // namespace
}  // namespace moelab
