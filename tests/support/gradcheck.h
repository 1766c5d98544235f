// Shared test support: random inputs and finite-difference gradient checks in double precision.
//
// The pattern every op test uses: pick a fixed random "upstream gradient" R of the output's shape and treat
// loss = sum(out * R) as the scalar; then d_out = R, and the op's backward must give d_loss/d_input, which
// central differences of the forward approximate to O(h^2). In double precision with h = 1e-5 the two agree to
// about 1e-8 relative for smooth ops, so a bug (wrong index, missing term) shows up as an error of order 1.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/rng.h"

namespace moelab::testing {

// n values uniform in [-scale, scale), reproducible from seed.
template <typename T = double>
std::vector<T> random_vector(size_t n, uint64_t seed, double scale = 1.0) {
  Rng rng(seed, 0);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>((2.0 * rng.uniform() - 1.0) * scale);
  return v;
}

inline std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }
inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The larger of an error so far and a new one, where a NaN counts as infinitely large: std::max would drop it
// (every comparison with a NaN is false), and tests that poison outputs with NaN to catch an unwritten element
// rely on seeing it.
inline double worse(double worst, double error) {
  return std::isnan(error) ? std::numeric_limits<double>::infinity() : std::max(worst, error);
}

// Error of a against the reference b relative to b's scale: max_i |a_i - b_i| / max_i |b_i|. Elementwise
// relative errors explode where values cross zero; this one measures what matters for a kernel: how far off
// the result is compared with the size of the numbers it produces. A NaN or infinity on either side makes the
// error infinite (see worse()).
template <typename A, typename B>
double max_rel_error(const std::vector<A>& a, const std::vector<B>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0, scale = 1e-30;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
    if (!std::isfinite(x) || !std::isfinite(y)) return std::numeric_limits<double>::infinity();
    worst = worse(worst, std::fabs(x - y));
    scale = std::max(scale, std::fabs(y));
  }
  return worst / scale;
}

// Central differences of loss() with respect to every element of x (perturbed in place and restored),
// compared with the analytic gradient. At most max_checks elements are probed, spread evenly, so large
// tensors stay fast while every region of the buffer is still visited.
inline void expect_gradient_matches(const std::string& what, std::vector<double>& x,
                                    const std::vector<double>& analytic, const std::function<double()>& loss,
                                    double tolerance = 1e-6, size_t max_checks = 400, double h = 1e-5) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  // Elements far smaller than the largest gradient are judged against 1% of it: their finite difference carries
  // the loss's rounding error (~1e-16 x |loss| / h) which is meaningless relative to a near-zero value.
  double largest = 0;
  for (double g : analytic) largest = std::max(largest, std::fabs(g));
  const double floor = std::max(1e-2 * largest, 1e-8);
  size_t stride = std::max<size_t>(1, x.size() / max_checks);
  double worst = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < x.size(); i += stride) {
    double saved = x[i];
    x[i] = saved + h;
    double up = loss();
    x[i] = saved - h;
    double down = loss();
    x[i] = saved;
    double numeric = (up - down) / (2 * h);
    double denom = std::max({std::fabs(numeric), std::fabs(analytic[i]), floor});
    double err = std::fabs(numeric - analytic[i]) / denom;
    if (err > worst) worst = err, worst_at = i;
  }
  EXPECT_LT(worst, tolerance) << what << ": analytic and finite-difference gradients differ at element " << worst_at
                              << " (analytic " << analytic[worst_at] << ")";
}

}  // namespace moelab::testing
