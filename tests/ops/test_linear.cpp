#include <gtest/gtest.h>

#include "ops/linear.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::random_vector;

// Plain reference: out[n,o] = sum_i in[n,i] * W[o,i].
std::vector<double> linear_reference(const std::vector<double>& in, const std::vector<double>& w, int64_t N,
                                     int64_t I, int64_t O) {
  std::vector<double> out(N * O, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) out[n * O + o] += in[n * I + i] * w[o * I + i];
  return out;
}

class LinearShapes : public ::testing::TestWithParam<std::tuple<int, int, int>> {};

TEST_P(LinearShapes, ForwardFloatMatchesReference) {
  auto [N, I, O] = GetParam();
  auto in = random_vector(N * I, 1), w = random_vector(O * I, 2);
  auto in_f = testing::to_float(in), w_f = testing::to_float(w);
  std::vector<float> out(N * O);
  ops::linear_forward(out.data(), in_f.data(), w_f.data(), N, I, O);
  EXPECT_LT(testing::max_rel_error(out, linear_reference(in, w, N, I, O)), 1e-5);
}

TEST_P(LinearShapes, BackwardMatchesFiniteDifferences) {
  auto [N, I, O] = GetParam();
  auto in = random_vector(N * I, 3), w = random_vector(O * I, 4), r = random_vector(N * O, 5);
  std::vector<double> d_in(N * I), d_w(O * I, 0.0), out(N * O);
  ops::linear_backward(d_in.data(), d_w.data(), r.data(), in.data(), w.data(), N, I, O);
  auto loss = [&] {
    ops::linear_forward(out.data(), in.data(), w.data(), N, I, O);
    return testing::dot(out, r);
  };
  testing::expect_gradient_matches("d_in", in, d_in, loss);
  testing::expect_gradient_matches("d_weight", w, d_w, loss);
}

TEST(Linear, WeightGradientAccumulates) {
  const int N = 3, I = 4, O = 5;
  auto in = random_vector(N * I, 6), w = random_vector(O * I, 7), r = random_vector(N * O, 8);
  std::vector<double> d_w(O * I, 0.0);
  ops::linear_backward<double>(nullptr, d_w.data(), r.data(), in.data(), w.data(), N, I, O);
  auto once = d_w;
  ops::linear_backward<double>(nullptr, d_w.data(), r.data(), in.data(), w.data(), N, I, O);
  for (size_t i = 0; i < d_w.size(); ++i) EXPECT_NEAR(d_w[i], 2 * once[i], 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearShapes,
                         ::testing::Values(std::tuple{1, 1, 1}, std::tuple{7, 5, 3}, std::tuple{16, 32, 24},
                                           std::tuple{33, 17, 65}));

}  // namespace
}  // namespace moelab
