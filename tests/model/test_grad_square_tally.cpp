// GradSquareTally and the model's gradient norm: recorded sums of squares replace reading those gradients, the
// rest is read, forgetting goes back to reading; a bf16 model's backward records every expert weight gradient and
// its norm is the norm of its gradients, after one backward or two; an f32 model records nothing and its norm is
// global_grad_norm's, bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "model/config.h"
#include "model/grad_square_tally.h"
#include "model/model.h"
#include "support/small_model.h"
#include "train/grad_clip.h"

namespace moelab {
namespace {

double double_norm(const float* g, int64_t n) {
  long double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<long double>(g[i]) * g[i];
  return std::sqrt(static_cast<double>(sum));
}

double squares(const float* g, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(g[i]) * g[i];
  return sum;
}

std::vector<float> random_grads(int64_t n) {
  Rng rng(9, 0);
  std::vector<float> g(n);  // [n]
  for (float& v : g) v = static_cast<float>(rng.normal());
  return g;
}

TEST(GradSquareTally, WithNothingRecordedIsGlobalGradNorm) {
  const std::vector<float> g = random_grads(200'003);
  const GradSquareTally tally(g.data());
  EXPECT_EQ(tally.norm(200'003), global_grad_norm(g.data(), 200'003));
  EXPECT_EQ(tally.known_values(), 0);
}

TEST(GradSquareTally, UsesRecordedSumsAndReadsTheRest) {
  const int64_t n = 100'000;
  const std::vector<float> g = random_grads(n);
  GradSquareTally tally(g.data());
  // Two tensors recorded with their true sums (one at the start, one inside), recorded out of order.
  tally.record(g.data() + 50'000, 30'000, squares(g.data() + 50'000, 30'000));
  tally.record(g.data(), 1'000, squares(g.data(), 1'000));
  EXPECT_EQ(tally.known_values(), 31'000);
  EXPECT_NEAR(tally.norm(n), double_norm(g.data(), n), 1e-12 * double_norm(g.data(), n));
  // A recorded sum is taken as given, not read: 100 more in it is 100 more in the squared norm.
  tally.record(g.data() + 50'000, 30'000, squares(g.data() + 50'000, 30'000) + 100.0);
  const double plain = double_norm(g.data(), n);
  EXPECT_NEAR(tally.norm(n) * tally.norm(n), plain * plain + 100.0, 1e-9 * plain * plain);
  tally.forget();
  EXPECT_EQ(tally.known_values(), 0);
  EXPECT_EQ(tally.norm(n), global_grad_norm(g.data(), n));
}

TEST(GradSquareTallyDeathTest, RefusesOverlapsAndSizeChanges) {
  const std::vector<float> g(100, 1.0f);
  GradSquareTally tally(g.data());
  tally.record(g.data() + 10, 20, 20.0);
  EXPECT_DEATH(tally.record(g.data() + 10, 21, 21.0), "recorded with two sizes");
  EXPECT_DEATH(tally.record(g.data() + 25, 10, 10.0), "overlap");
  EXPECT_DEATH(tally.record(g.data(), 11, 11.0), "overlap");
}

Config small(const std::string& precision) { return testing::small_model_config(precision, 16, 4); }

int64_t expert_weight_values(const Model& model) {
  int64_t n = 0;
  for (const auto& spec : model.table().specs()) n += spec.name.find(".experts.") != std::string::npos ? spec.numel : 0;
  return n;
}

TEST(ModelGradNorm, Bf16BackwardRecordsTheExpertGradientsAndTheNormIsTheirs) {
  Model model(small("bf16"));
  model.init_params(3);
  const int64_t B = 4, T = 16, N = B * T, V = 96;
  const testing::TwoBatches data = testing::two_batches(N, V);
  const auto& in1 = data.first;
  const auto& in2 = data.second;
  const auto& targets = data.targets;
  const Model& read = model;  // reading gradients through the const view forgets nothing
  const auto expect_norm_of_grads = [&](const char* when) {
    const float* g = read.grads().data();
    const int64_t n = static_cast<int64_t>(read.grads().size());
    EXPECT_EQ(read.grad_squares().known_values(), expert_weight_values(model)) << when;
    EXPECT_NEAR(model.grad_norm(), double_norm(g, n), 1e-12 * double_norm(g, n)) << when;
  };
  model.zero_grads();
  model.forward(in1.data(), targets.data(), B, T);
  model.backward(1.0);  // writes the expert gradients (they held zeros)
  expect_norm_of_grads("after one backward");
  model.forward(in2.data(), targets.data(), B, T);
  model.backward(1.0);  // adds to them
  expect_norm_of_grads("after two backwards");
  model.grads();  // may change them: the sums are forgotten
  EXPECT_EQ(read.grad_squares().known_values(), 0);
  const float* g = read.grads().data();
  EXPECT_EQ(model.grad_norm(), global_grad_norm(g, static_cast<int64_t>(read.grads().size())));
}

TEST(ModelGradNorm, F32RecordsNothingAndIsGlobalGradNorm) {
  Model model(small("f32"));
  model.init_params(3);
  const int64_t B = 4, T = 16, N = B * T, V = 96;
  std::vector<int32_t> inputs(N), targets(N);
  for (int64_t i = 0; i < N; ++i)
    inputs[i] = static_cast<int32_t>((5 * i) % V), targets[i] = static_cast<int32_t>((i + 2) % V);
  model.zero_grads();
  model.forward(inputs.data(), targets.data(), B, T);
  model.backward(1.0);
  const Model& read = model;
  EXPECT_EQ(read.grad_squares().known_values(), 0);
  EXPECT_GT(model.grad_norm(), 0.0);
  EXPECT_EQ(model.grad_norm(), global_grad_norm(read.grads().data(), static_cast<int64_t>(read.grads().size())));
}

}  // namespace
}  // namespace moelab
