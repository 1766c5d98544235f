#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "ops/swiglu.h"
#include "support/gradcheck.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

using testing::OmpThreads;
using testing::random_vector;

double silu_reference(double g) { return g / (1.0 + std::exp(-g)); }

class SwigluSizes : public ::testing::TestWithParam<int> {};

TEST_P(SwigluSizes, ForwardFloatMatchesReference) {
  const int n = GetParam();
  auto gate = random_vector(n, 1, 12.0), up = random_vector(n, 2);  // gates over [-12, 12]: both sigmoid branches
  auto gate_f = testing::to_float(gate), up_f = testing::to_float(up);
  std::vector<float> h(n);
  ops::swiglu_forward(h.data(), gate_f.data(), up_f.data(), n);
  std::vector<double> ref(n);
  for (int i = 0; i < n; ++i) ref[i] = silu_reference(gate[i]) * up[i];
  EXPECT_LT(testing::max_rel_error(h, ref), 1e-5);
}

TEST_P(SwigluSizes, BackwardMatchesFiniteDifferences) {
  const int n = GetParam();
  auto gate = random_vector(n, 3, 4.0), up = random_vector(n, 4), r = random_vector(n, 5);
  std::vector<double> h(n), d_gate(n), d_up(n);
  ops::swiglu_backward(d_gate.data(), d_up.data(), r.data(), gate.data(), up.data(), n);
  auto loss = [&] {
    ops::swiglu_forward(h.data(), gate.data(), up.data(), n);
    return testing::dot(h, r);
  };
  // The analytic gradient above took the parallel path where the shape is large enough; the finite differences
  // run the forward hundreds of times, serially, since on a loaded machine each parallel region can wait a whole
  // time slice for a descheduled thread. (The forward's parallel path is checked by the forward test.)
  const OmpThreads serial(1);
  testing::expect_gradient_matches("d_gate", gate, d_gate, loss);
  testing::expect_gradient_matches("d_up", up, d_up, loss);
}

TEST(Swiglu, FloatBackwardMatchesDoubleReference) {
  const int n = 1000;
  auto gate = random_vector(n, 6, 12.0), up = random_vector(n, 7), d_h = random_vector(n, 8);
  auto gate_f = testing::to_float(gate), up_f = testing::to_float(up), d_h_f = testing::to_float(d_h);
  std::vector<float> d_gate(n), d_up(n);
  ops::swiglu_backward(d_gate.data(), d_up.data(), d_h_f.data(), gate_f.data(), up_f.data(), n);
  std::vector<double> ref_gate(n), ref_up(n);
  for (int i = 0; i < n; ++i) {
    const double s = 1.0 / (1.0 + std::exp(-gate[i]));
    ref_up[i] = d_h[i] * gate[i] * s;
    ref_gate[i] = d_h[i] * up[i] * s * (1.0 + gate[i] * (1.0 - s));
  }
  EXPECT_LT(testing::max_rel_error(d_gate, ref_gate), 1e-5);
  EXPECT_LT(testing::max_rel_error(d_up, ref_up), 1e-5);
}

TEST(Swiglu, FiniteAtLargeGates) {
  const std::vector<float> gate = {-100.0f, -88.0f, -50.0f, 0.0f, 50.0f, 88.0f, 100.0f};
  const std::vector<float> up(gate.size(), 2.0f), d_h(gate.size(), 1.0f);
  const int n = static_cast<int>(gate.size());
  std::vector<float> h(n), d_gate(n), d_up(n);
  ops::swiglu_forward(h.data(), gate.data(), up.data(), n);
  ops::swiglu_backward(d_gate.data(), d_up.data(), d_h.data(), gate.data(), up.data(), n);
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(std::isfinite(h[i]) && std::isfinite(d_gate[i]) && std::isfinite(d_up[i])) << "gate " << gate[i];
    // silu(g) -> g for large g and -> 0 for very negative g; silu'(g) -> 1 and -> 0.
    EXPECT_NEAR(h[i], 2.0 * silu_reference(gate[i]), 1e-5 * std::fabs(gate[i]) + 1e-30);
    EXPECT_NEAR(d_up[i], silu_reference(gate[i]), 1e-5 * std::fabs(gate[i]) + 1e-30);
  }
  EXPECT_FLOAT_EQ(d_gate[n - 1], 2.0f);
  EXPECT_FLOAT_EQ(d_gate[0], 0.0f);
  EXPECT_FLOAT_EQ(h[3], 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Sizes, SwigluSizes, ::testing::Values(1, 7, 61, 64 * 256, 32771));

}  // namespace
}  // namespace moelab
