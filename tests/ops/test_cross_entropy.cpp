#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <ostream>

#include "ops/cross_entropy.h"
#include "support/gradcheck.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

using testing::OmpThreads;
using testing::random_vector;

// Targets uniform in [0, V), with every ignore_every-th row set to -1 (ignored) when ignore_every > 0.
std::vector<int32_t> random_targets(int64_t N, int64_t V, uint64_t seed, int64_t ignore_every = 0) {
  Rng rng(seed, 1);
  std::vector<int32_t> t(N);
  for (int64_t n = 0; n < N; ++n) {
    t[n] = ignore_every > 0 && n % ignore_every == 1 ? -1 : static_cast<int32_t>(rng.below(V));
  }
  return t;
}

// Plain reference per row: logsumexp(l) - l[target], written the direct way (shifted by the max for range only).
std::vector<double> loss_reference(const std::vector<double>& logits, const std::vector<int32_t>& targets, int64_t N,
                                   int64_t V) {
  std::vector<double> loss(N, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    double m = logits[n * V];
    for (int64_t v = 0; v < V; ++v) m = std::max(m, logits[n * V + v]);
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp(logits[n * V + v] - m);
    loss[n] = m + std::log(s) - logits[n * V + targets[n]];
  }
  return loss;
}

// Plain reference gradient: scale * (softmax - onehot) on valid rows, 0 on ignored ones.
std::vector<double> gradient_reference(const std::vector<double>& logits, const std::vector<int32_t>& targets,
                                       int64_t N, int64_t V, double scale) {
  std::vector<double> d(N * V, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    double m = logits[n * V];
    for (int64_t v = 0; v < V; ++v) m = std::max(m, logits[n * V + v]);
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp(logits[n * V + v] - m);
    for (int64_t v = 0; v < V; ++v) d[n * V + v] = scale * std::exp(logits[n * V + v] - m) / s;
    d[n * V + targets[n]] -= scale;
  }
  return d;
}

// max |a - b| / scale. The float gradient at the target is scale * (p - 1), which cancels when p is near 1: its
// error is a few float ulps of scale (~1e-7 scale), however small the row's largest gradient is. So gradients are
// judged against scale, not against their own largest value as max_rel_error would.
double max_error_over_scale(const std::vector<float>& a, const std::vector<double>& b, double scale) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = testing::worse(worst, std::fabs(a[i] - b[i]));
  return worst / scale;
}

double sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

struct CrossEntropyCase {
  int N, V;
};
void PrintTo(const CrossEntropyCase& c, std::ostream* os) { *os << "N=" << c.N << " V=" << c.V; }
class CrossEntropyShapes : public ::testing::TestWithParam<CrossEntropyCase> {};

TEST_P(CrossEntropyShapes, ForwardFloatMatchesReference) {
  auto [N, V] = GetParam();
  auto logits = random_vector(N * V, 1, 5.0);
  auto targets = random_targets(N, V, 2);
  auto logits_f = testing::to_float(logits);
  std::vector<float> row_loss(N);
  const double total = ops::cross_entropy_forward(row_loss.data(), logits_f.data(), targets.data(), N, V);
  auto ref = loss_reference(logits, targets, N, V);
  EXPECT_LT(testing::max_rel_error(row_loss, ref), 1e-5);
  EXPECT_NEAR(total, sum(ref), 1e-5 * std::max(1.0, std::fabs(sum(ref))));
}

TEST_P(CrossEntropyShapes, BackwardMatchesFiniteDifferences) {
  auto [N, V] = GetParam();
  auto logits = random_vector(N * V, 3, 3.0);
  auto targets = random_targets(N, V, 4, 3);
  const double scale = 0.37;
  std::vector<double> d_logits(N * V);
  ops::cross_entropy_backward(d_logits.data(), logits.data(), targets.data(), N, V, scale);
  auto loss = [&] { return scale * ops::cross_entropy_forward<double>(nullptr, logits.data(), targets.data(), N, V); };
  // The analytic gradient above took the parallel path where the shape is large enough; the finite differences
  // run the forward hundreds of times, serially, since on a loaded machine each parallel region can wait a whole
  // time slice for a descheduled thread. (The forward's parallel path is checked by the forward test.)
  const OmpThreads serial(1);
  testing::expect_gradient_matches("d_logits", logits, d_logits, loss);
}

TEST_P(CrossEntropyShapes, FloatBackwardMatchesReference) {
  auto [N, V] = GetParam();
  auto logits = random_vector(N * V, 5, 5.0);
  auto targets = random_targets(N, V, 6, 4);
  auto logits_f = testing::to_float(logits);
  std::vector<float> d_logits(N * V);
  ops::cross_entropy_backward(d_logits.data(), logits_f.data(), targets.data(), N, V, 0.5);
  EXPECT_LT(max_error_over_scale(d_logits, gradient_reference(logits, targets, N, V, 0.5), 0.5), 1e-6);
}

TEST(CrossEntropy, IgnoredRowsGiveNoLossAndNoGradient) {
  const int64_t N = 6, V = 9;
  auto logits = random_vector<float>(N * V, 7, 4.0);
  const std::vector<int32_t> targets = {3, -1, 0, -1, -1, 8};
  std::vector<float> row_loss(N, 123.0f), d_logits(N * V, 123.0f);
  const double total = ops::cross_entropy_forward(row_loss.data(), logits.data(), targets.data(), N, V);
  ops::cross_entropy_backward(d_logits.data(), logits.data(), targets.data(), N, V, 1.0);
  double valid_sum = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] >= 0) {
      EXPECT_GT(row_loss[n], 0.0f);
      valid_sum += row_loss[n];
      continue;
    }
    EXPECT_EQ(row_loss[n], 0.0f);
    for (int64_t v = 0; v < V; ++v) EXPECT_EQ(d_logits[n * V + v], 0.0f) << "row " << n;
  }
  EXPECT_NEAR(total, valid_sum, 1e-5);
  const std::vector<int32_t> none(N, -1);
  EXPECT_EQ(ops::cross_entropy_forward<float>(nullptr, logits.data(), none.data(), N, V), 0.0);
}

TEST(CrossEntropy, InPlaceBackwardEqualsOutOfPlace) {
  const int64_t N = 37, V = 1031;  // large enough for the parallel path
  auto logits = random_vector<float>(N * V, 8, 6.0);
  auto targets = random_targets(N, V, 9, 5);
  std::vector<float> out_of_place(N * V);
  ops::cross_entropy_backward(out_of_place.data(), logits.data(), targets.data(), N, V, 0.25);
  auto in_place = logits;
  ops::cross_entropy_backward(in_place.data(), in_place.data(), targets.data(), N, V, 0.25);
  EXPECT_EQ(in_place, out_of_place);
}

TEST(CrossEntropy, HugeLogitsStayFinite) {
  const int64_t N = 5, V = 33;
  auto logits = random_vector(N * V, 10, 1e4);
  for (int64_t v = 0; v < V; ++v) logits[4 * V + v] = 1e4;  // a flat row: loss log(V), gradient uniform
  auto targets = random_targets(N, V, 11);
  auto logits_f = testing::to_float(logits);
  std::vector<float> row_loss(N), d_logits(N * V);
  const double total = ops::cross_entropy_forward(row_loss.data(), logits_f.data(), targets.data(), N, V);
  ops::cross_entropy_backward(d_logits.data(), logits_f.data(), targets.data(), N, V, 1.0);
  ASSERT_TRUE(std::isfinite(total));
  for (float g : d_logits) ASSERT_TRUE(std::isfinite(g));
  EXPECT_LT(testing::max_rel_error(row_loss, loss_reference(testing::to_double(logits_f), targets, N, V)), 1e-6);
  EXPECT_NEAR(row_loss[4], std::log(static_cast<double>(V)), 1e-5);
  EXPECT_LT(max_error_over_scale(d_logits, gradient_reference(testing::to_double(logits_f), targets, N, V, 1.0), 1.0),
            1e-6);
}

TEST(CrossEntropy, SumIsIndependentOfThreadCount) {
  const int64_t N = 211, V = 307;
  auto logits = random_vector<float>(N * V, 12, 5.0);
  auto targets = random_targets(N, V, 13, 7);
  auto run = [&](int threads) {
    const OmpThreads scope(threads);
    const double total = ops::cross_entropy_forward<float>(nullptr, logits.data(), targets.data(), N, V);
    return total;
  };
  const double one = run(1);
  EXPECT_EQ(one, run(2));
  EXPECT_EQ(one, run(3));
}

INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyShapes,
                         ::testing::Values(CrossEntropyCase{.N = 1, .V = 1}, CrossEntropyCase{.N = 1, .V = 2},
                                           CrossEntropyCase{.N = 7, .V = 5}, CrossEntropyCase{.N = 13, .V = 31},
                                           CrossEntropyCase{.N = 64, .V = 256}, CrossEntropyCase{.N = 17, .V = 2053}));

}  // namespace
}  // namespace moelab
