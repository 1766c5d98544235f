// The sigmoid gate of a shared expert: forward against a plain loop, every gradient by finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops/sigmoid_gate.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::random_vector;

TEST(SigmoidGate, ForwardAddsTheGatedBranch) {
  const int64_t N = 4, D = 6;
  auto x = random_vector(N * D, 1), w = random_vector(D, 2), y = random_vector(N * D, 3), out = random_vector(N * D, 4);
  auto want = out;
  std::vector<double> want_gate(N);
  for (int64_t n = 0; n < N; ++n) {
    double z = 0;
    for (int64_t i = 0; i < D; ++i) z += x[n * D + i] * w[i];
    want_gate[n] = 1 / (1 + std::exp(-z));
    for (int64_t i = 0; i < D; ++i) want[n * D + i] += want_gate[n] * y[n * D + i];
  }
  std::vector<double> gate(N);
  ops::sigmoid_gate_forward(out.data(), gate.data(), {x.data(), w.data(), y.data(), nullptr}, N, D);
  EXPECT_LT(testing::max_rel_error(out, want), 1e-14);
  EXPECT_LT(testing::max_rel_error(gate, want_gate), 1e-14);
}

TEST(SigmoidGate, BackwardMatchesFiniteDifferences) {
  const int64_t N = 5, D = 7;
  auto x = random_vector(N * D, 5), w = random_vector(D, 6), y = random_vector(N * D, 7), r = random_vector(N * D, 8);
  std::vector<double> gate(N);
  auto loss = [&] {
    std::vector<double> out(N * D, 0.0);
    ops::sigmoid_gate_forward(out.data(), gate.data(), {x.data(), w.data(), y.data(), nullptr}, N, D);
    return testing::dot(out, r);
  };
  loss();
  std::vector<double> d_y(N * D), d_w(D, 0.0), d_x = random_vector(N * D, 9);
  const auto d_x_before = d_x;
  ops::sigmoid_gate_backward<double>({d_y.data(), d_x.data(), d_w.data()}, r.data(),
                                     {x.data(), w.data(), y.data(), gate.data()}, N, D);
  for (size_t i = 0; i < d_x.size(); ++i) d_x[i] -= d_x_before[i];  // d_x is added to
  testing::expect_gradient_matches("d_x", x, d_x, loss);
  testing::expect_gradient_matches("d_w", w, d_w, loss);
  testing::expect_gradient_matches("d_y", y, d_y, loss);
}

}  // namespace
}  // namespace moelab
