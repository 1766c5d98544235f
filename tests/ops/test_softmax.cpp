#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <ostream>

#include "ops/softmax.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::random_vector;

// Plain reference in double: exp(l - max) / sum.
std::vector<double> softmax_reference(const std::vector<double>& l, int64_t N, int64_t C) {
  std::vector<double> p(N * C);
  for (int64_t n = 0; n < N; ++n) {
    double m = -INFINITY, s = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, l[n * C + c]);
    for (int64_t c = 0; c < C; ++c) s += std::exp(l[n * C + c] - m);
    for (int64_t c = 0; c < C; ++c) p[n * C + c] = std::exp(l[n * C + c] - m) / s;
  }
  return p;
}

struct SoftmaxCase {
  int N, C;
};
void PrintTo(const SoftmaxCase& c, std::ostream* os) { *os << "N=" << c.N << " C=" << c.C; }
class SoftmaxShapes : public ::testing::TestWithParam<SoftmaxCase> {};

TEST_P(SoftmaxShapes, ForwardFloatMatchesReference) {
  auto [N, C] = GetParam();
  auto l = random_vector(N * C, 11, 4.0);
  auto l_f = testing::to_float(l);
  std::vector<float> p(N * C);
  ops::softmax_forward(p.data(), l_f.data(), N, C);
  // Reference from the float-rounded logits, so what is measured is the float arithmetic alone; elementwise
  // relative, since small probabilities matter as much as large ones.
  auto ref = softmax_reference(testing::to_double(l_f), N, C);
  for (size_t i = 0; i < p.size(); ++i) ASSERT_NEAR(p[i], ref[i], 1e-6 * ref[i]) << "element " << i;
}

class SoftmaxGradient : public ::testing::TestWithParam<SoftmaxCase> {};

TEST_P(SoftmaxGradient, MatchesFiniteDifferences) {
  auto [N, C] = GetParam();
  auto l = random_vector(N * C, 12, 3.0), r = random_vector(N * C, 13);
  std::vector<double> p(N * C), d_l(N * C);
  ops::softmax_forward(p.data(), l.data(), N, C);
  ops::softmax_backward(d_l.data(), r.data(), p.data(), N, C);
  auto loss = [&] {
    ops::softmax_forward(p.data(), l.data(), N, C);
    return testing::dot(p, r);
  };
  testing::expect_gradient_matches("d_logits", l, d_l, loss);
}

TEST_P(SoftmaxShapes, BackwardFloatMatchesDouble) {
  auto [N, C] = GetParam();
  auto l = random_vector(N * C, 14, 3.0), r = random_vector(N * C, 15);
  std::vector<double> p(N * C), d_l(N * C);
  ops::softmax_forward(p.data(), l.data(), N, C);
  ops::softmax_backward(d_l.data(), r.data(), p.data(), N, C);
  auto p_f = testing::to_float(p), r_f = testing::to_float(r);
  std::vector<float> d_l_f(N * C);
  ops::softmax_backward(d_l_f.data(), r_f.data(), p_f.data(), N, C);
  EXPECT_LT(testing::max_rel_error(d_l_f, d_l), 1e-5);
}

// (1,1) is the degenerate row; (300,64) crosses the threads threshold; (2,1031) a long prime row.
INSTANTIATE_TEST_SUITE_P(Shapes, SoftmaxShapes,
                         ::testing::Values(SoftmaxCase{.N = 1, .C = 1}, SoftmaxCase{.N = 1, .C = 8},
                                           SoftmaxCase{.N = 7, .C = 5}, SoftmaxCase{.N = 33, .C = 17},
                                           SoftmaxCase{.N = 300, .C = 64}, SoftmaxCase{.N = 2, .C = 1031}));
// Finite differences stay below the threads threshold: hundreds of forward calls, each cheap.
INSTANTIATE_TEST_SUITE_P(Shapes, SoftmaxGradient,
                         ::testing::Values(SoftmaxCase{.N = 1, .C = 1}, SoftmaxCase{.N = 1, .C = 8},
                                           SoftmaxCase{.N = 7, .C = 5}, SoftmaxCase{.N = 33, .C = 17},
                                           SoftmaxCase{.N = 2, .C = 1031}));

// The float path uses its own exponential: check it over the whole range a shifted logit can take, including
// where e^x underflows, against the double reference.
TEST(Softmax, FloatAccurateOverTheExponentRange) {
  const int64_t C = 2001;
  std::vector<double> l(C);
  for (int64_t c = 0; c < C; ++c) l[c] = -100.0 + 0.05 * c;  // shifted range [-100, 0]
  auto l_f = testing::to_float(l);
  std::vector<float> p(C);
  ops::softmax_forward(p.data(), l_f.data(), 1, C);
  auto ref = softmax_reference(testing::to_double(l_f), 1, C);
  for (int64_t c = 0; c < C; ++c) {
    if (ref[c] > 1e-37) {
      ASSERT_NEAR(p[c], ref[c], 3e-7 * ref[c]) << "logit " << l_f[c];  // ~2.5 float ulps
    } else {
      ASSERT_LE(p[c], 1e-37) << "logit " << l_f[c];
    }
  }
}

TEST(Softmax, LargeLogitsAndMinusInfinity) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> l = {1000.f, 999.f, -inf, -1000.f, 88.f, 90.f, -inf, 89.f};
  std::vector<float> p(8);
  ops::softmax_forward(p.data(), l.data(), 2, 4);
  const double e1 = std::exp(-1.0), e2 = std::exp(-2.0);
  EXPECT_NEAR(p[0], 1 / (1 + e1), 1e-6);
  EXPECT_NEAR(p[1], e1 / (1 + e1), 1e-6);
  EXPECT_EQ(p[2], 0.f);
  EXPECT_EQ(p[3], 0.f);
  EXPECT_NEAR(p[4], e2 / (1 + e1 + e2), 1e-6);
  EXPECT_NEAR(p[5], 1 / (1 + e1 + e2), 1e-6);
  EXPECT_EQ(p[6], 0.f);
  EXPECT_NEAR(p[7], e1 / (1 + e1 + e2), 1e-6);
}

TEST(Softmax, InPlace) {
  const int64_t N = 5, C = 9;
  auto l = random_vector(N * C, 16, 2.0);
  auto ref = softmax_reference(l, N, C);
  ops::softmax_forward(l.data(), l.data(), N, C);
  EXPECT_LT(testing::max_rel_error(l, ref), 1e-14);
}

}  // namespace
}  // namespace moelab
