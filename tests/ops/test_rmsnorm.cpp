#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <ostream>

#include "ops/rmsnorm.h"
#include "support/gradcheck.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

using testing::OmpThreads;
using testing::random_vector;

constexpr double kEps = 1e-6;

// Gains around 1, as after initialisation, but distinct so that a swapped index shows.
std::vector<double> random_weight(int64_t C, uint64_t seed) {
  auto w = random_vector(C, seed, 0.5);
  for (auto& v : w) v += 1.0;
  return w;
}

// Plain reference: out[n,c] = x[n,c] / sqrt(mean_c x^2 + eps) * w[c]; also returns rstd.
std::vector<double> rmsnorm_reference(std::vector<double>* rstd, const std::vector<double>& x,
                                      const std::vector<double>& w, int64_t N, int64_t C) {
  std::vector<double> out(N * C);
  rstd->assign(N, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += x[n * C + c] * x[n * C + c];
    (*rstd)[n] = 1.0 / std::sqrt(ss / C + kEps);
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = x[n * C + c] * (*rstd)[n] * w[c];
  }
  return out;
}

struct RmsNormCase {
  int N, C;
};
void PrintTo(const RmsNormCase& c, std::ostream* os) { *os << "N=" << c.N << " C=" << c.C; }
class RmsNormShapes : public ::testing::TestWithParam<RmsNormCase> {};

TEST_P(RmsNormShapes, ForwardFloatMatchesReference) {
  auto [N, C] = GetParam();
  auto x = random_vector(N * C, 1, 3.0), w = random_weight(C, 2);
  auto x_f = testing::to_float(x), w_f = testing::to_float(w);
  std::vector<float> out(N * C), rstd(N);
  ops::rmsnorm_forward(out.data(), rstd.data(), x_f.data(), w_f.data(), N, C, kEps);
  std::vector<double> rstd_ref;
  auto out_ref = rmsnorm_reference(&rstd_ref, x, w, N, C);
  EXPECT_LT(testing::max_rel_error(out, out_ref), 1e-5);
  EXPECT_LT(testing::max_rel_error(rstd, rstd_ref), 1e-5);
}

TEST_P(RmsNormShapes, BackwardMatchesFiniteDifferences) {
  auto [N, C] = GetParam();
  auto x = random_vector(N * C, 3), w = random_weight(C, 4), r = random_vector(N * C, 5);
  std::vector<double> out(N * C), rstd(N), d_x(N * C), d_w(C, 0.0);
  ops::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, kEps);
  ops::rmsnorm_backward(d_x.data(), d_w.data(), r.data(), x.data(), w.data(), rstd.data(), N, C);
  std::vector<double> scratch_rstd(N);
  auto loss = [&] {
    ops::rmsnorm_forward(out.data(), scratch_rstd.data(), x.data(), w.data(), N, C, kEps);
    return testing::dot(out, r);
  };
  // The analytic gradient above took the parallel path where the shape is large enough; the finite differences
  // run the forward hundreds of times, serially, since on a loaded machine each parallel region can wait a whole
  // time slice for a descheduled thread. (The forward's parallel path is checked by the forward test.)
  const OmpThreads serial(1);
  testing::expect_gradient_matches("d_x", x, d_x, loss);
  testing::expect_gradient_matches("d_weight", w, d_w, loss);
}

TEST(RmsNorm, WeightGradientAccumulatesAndMayBeNull) {
  const int N = 5, C = 7;
  auto x = random_vector(N * C, 6), w = random_weight(C, 7), r = random_vector(N * C, 8);
  std::vector<double> out(N * C), rstd(N), d_x(N * C), d_x_alone(N * C), d_w(C, 0.0);
  ops::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, kEps);
  ops::rmsnorm_backward(d_x.data(), d_w.data(), r.data(), x.data(), w.data(), rstd.data(), N, C);
  auto once = d_w;
  ops::rmsnorm_backward(d_x.data(), d_w.data(), r.data(), x.data(), w.data(), rstd.data(), N, C);
  for (int c = 0; c < C; ++c) EXPECT_NEAR(d_w[c], 2 * once[c], 1e-12);
  ops::rmsnorm_backward<double>(d_x_alone.data(), nullptr, r.data(), x.data(), w.data(), rstd.data(), N, C);
  EXPECT_EQ(d_x_alone, d_x);  // d_x is assigned, and the same with or without the weight gradient
}

TEST(RmsNorm, WeightGradientIsIndependentOfThreadCount) {
  const int64_t N = 301, C = 128;  // large enough for the parallel path; N not a multiple of the row block
  auto x = random_vector<float>(N * C, 9), d_out = random_vector<float>(N * C, 10);
  auto w = testing::to_float(random_weight(C, 11));
  std::vector<float> out(N * C), rstd(N);
  ops::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, kEps);
  auto run = [&](int threads) {
    const OmpThreads scope(threads);
    std::vector<float> d_x(N * C), d_w(C, 0.0f);
    ops::rmsnorm_backward(d_x.data(), d_w.data(), d_out.data(), x.data(), w.data(), rstd.data(), N, C);
    return d_w;
  };
  const auto one = run(1);
  EXPECT_EQ(one, run(2));
  EXPECT_EQ(one, run(3));
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsNormShapes,
                         ::testing::Values(RmsNormCase{.N = 1, .C = 1}, RmsNormCase{.N = 1, .C = 5},
                                           RmsNormCase{.N = 7, .C = 3}, RmsNormCase{.N = 13, .C = 31},
                                           RmsNormCase{.N = 64, .C = 256}, RmsNormCase{.N = 131, .C = 257}));

}  // namespace
}  // namespace moelab
