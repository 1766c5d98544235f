#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <ostream>
#include <vector>

#include "backend/cpu/gemm_bf16.h"
#include "core/ordered_sum.h"
#include "ops/linear.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

const cpu::ComputeContext kF32;  // f32 products, no copies of the weights

using testing::random_vector;

// Plain reference: out[n,o] = sum_i in[n,i] * W[o,i].
std::vector<double> linear_reference(const std::vector<double>& in, const std::vector<double>& w, int64_t N, int64_t I,
                                     int64_t O) {
  std::vector<double> out(N * O, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) out[n * O + o] += in[n * I + i] * w[o * I + i];
  return out;
}

struct LinearCase {
  int N, I, O;
};
void PrintTo(const LinearCase& c, std::ostream* os) { *os << "N=" << c.N << " I=" << c.I << " O=" << c.O; }
class LinearShapes : public ::testing::TestWithParam<LinearCase> {};

TEST_P(LinearShapes, ForwardFloatMatchesReference) {
  auto [N, I, O] = GetParam();
  auto in = random_vector(N * I, 1), w = random_vector(O * I, 2);
  auto in_f = testing::to_float(in), w_f = testing::to_float(w);
  std::vector<float> out(N * O);
  ops::linear_forward(kF32, out.data(), in_f.data(), w_f.data(), N, I, O);
  EXPECT_LT(testing::max_rel_error(out, linear_reference(in, w, N, I, O)), 1e-5);
}

TEST_P(LinearShapes, BackwardMatchesFiniteDifferences) {
  auto [N, I, O] = GetParam();
  auto in = random_vector(N * I, 3), w = random_vector(O * I, 4), r = random_vector(N * O, 5);
  std::vector<double> d_in(N * I), d_w(O * I, 0.0), out(N * O);
  ops::linear_backward(kF32, d_in.data(), d_w.data(), r.data(), in.data(), w.data(), N, I, O);
  auto loss = [&] {
    ops::linear_forward(kF32, out.data(), in.data(), w.data(), N, I, O);
    return testing::dot(out, r);
  };
  testing::expect_gradient_matches("d_in", in, d_in, loss);
  testing::expect_gradient_matches("d_weight", w, d_w, loss);
}

TEST(Linear, WeightGradientAccumulates) {
  const int N = 3, I = 4, O = 5;
  auto in = random_vector(N * I, 6), w = random_vector(O * I, 7), r = random_vector(N * O, 8);
  std::vector<double> d_w(O * I, 0.0);
  ops::linear_backward<double>(kF32, nullptr, d_w.data(), r.data(), in.data(), w.data(), N, I, O);
  auto once = d_w;
  ops::linear_backward<double>(kF32, nullptr, d_w.data(), r.data(), in.data(), w.data(), N, I, O);
  for (size_t i = 0; i < d_w.size(); ++i) EXPECT_NEAR(d_w[i], 2 * once[i], 1e-12);
}

// The staged weight gradient (made in scratch rows, then added or written) against the GEMM accumulating into d_W,
// in f32 and through the bf16 GEMM. The rows start as NaN: they are overwritten, never read. Written (d_W declared
// 0) gives the gradient itself over whatever d_W held; added gives d_W + gradient. In f32 these are the GEMM's
// bits; oneDNN's bf16 kernels add d_W inside their accumulation, so there they agree to f32 rounding.
void expect_staged_weight_grad_matches_gemm(cpu::GemmPrecision precision) {
  cpu::ComputeContext ctx;
  ctx.precision = precision;
  const int64_t N = 37, I = 256, O = 288;  // O*I large enough for the add and the copy to use every thread
  const auto in = testing::to_float(random_vector(N * I, 9)), r = testing::to_float(random_vector(N * O, 10));
  const auto start = testing::to_float(random_vector(O * I, 11));
  const auto expect_same = [&](const std::vector<float>& got, const std::vector<float>& want, const char* what) {
    if (precision == cpu::GemmPrecision::F32) {
      EXPECT_EQ(got, want) << what;
    } else {
      EXPECT_LT(testing::max_rel_error(got, std::vector<double>(want.begin(), want.end())), 1e-6) << what;
    }
  };
  std::vector<float> direct = start;  // [O,I] the GEMM adding into d_W
  ops::linear_backward<float>(ctx, nullptr, direct.data(), r.data(), in.data(), nullptr, N, I, O);
  std::vector<float> rows(O * I, std::numeric_limits<float>::quiet_NaN());  // [O,I]
  std::vector<float> added = start;
  ops::linear_weight_grad_staged(ctx, added.data(), rows.data(), r.data(), in.data(), N, I, O, false);
  expect_same(added, direct, "added");
  std::vector<float> from_zero(O * I, 0.0f);
  ops::linear_backward<float>(ctx, nullptr, from_zero.data(), r.data(), in.data(), nullptr, N, I, O);
  std::vector<float> written = start;  // what d_W held is ignored when it is declared 0
  std::fill(rows.begin(), rows.end(), std::numeric_limits<float>::quiet_NaN());
  ops::linear_weight_grad_staged(ctx, written.data(), rows.data(), r.data(), in.data(), N, I, O, true);
  expect_same(written, from_zero, "written");
  // Asked for the sum of squares of the result as well: the same values, and their squares summed as ordered_sum
  // sums them.
  const auto ordered_squares = [](const std::vector<float>& v) {
    return ordered_sum(static_cast<int64_t>(v.size()), false, [&](int64_t i) { return double(v[i]) * v[i]; });
  };
  for (bool zero : {false, true}) {
    std::vector<float> with_squares = start;
    double squares = -1;
    ops::linear_weight_grad_staged(ctx, with_squares.data(), rows.data(), r.data(), in.data(), N, I, O, zero, &squares);
    EXPECT_EQ(with_squares, zero ? written : added) << "zero " << zero;
    EXPECT_EQ(squares, ordered_squares(with_squares)) << "zero " << zero;
  }
}

TEST(Linear, StagedWeightGradientMatchesTheGemmInF32) {
  expect_staged_weight_grad_matches_gemm(cpu::GemmPrecision::F32);
}

TEST(Linear, StagedWeightGradientMatchesTheGemmInBf16) {
  expect_staged_weight_grad_matches_gemm(cpu::GemmPrecision::Bf16);
}

TEST(Linear, StagedWeightGradientInDouble) {
  const int64_t N = 6, I = 5, O = 4;
  auto in = random_vector(N * I, 12), r = random_vector(N * O, 13), start = random_vector(O * I, 14);
  std::vector<double> direct = start, added = start, rows(O * I, std::nan(""));
  ops::linear_backward<double>(kF32, nullptr, direct.data(), r.data(), in.data(), nullptr, N, I, O);
  ops::linear_weight_grad_staged(kF32, added.data(), rows.data(), r.data(), in.data(), N, I, O, false);
  EXPECT_EQ(added, direct);
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearShapes,
                         ::testing::Values(LinearCase{.N = 1, .I = 1, .O = 1}, LinearCase{.N = 7, .I = 5, .O = 3},
                                           LinearCase{.N = 16, .I = 32, .O = 24},
                                           LinearCase{.N = 33, .I = 17, .O = 65}));

}  // namespace
}  // namespace moelab
