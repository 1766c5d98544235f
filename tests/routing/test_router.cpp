#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <vector>

#include "backend/cpu/gemm_bf16.h"
#include "routing/router.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::random_vector;

struct RouterCase {
  int N, d, E;
};
void PrintTo(const RouterCase& c, std::ostream* os) { *os << "N=" << c.N << " d=" << c.d << " E=" << c.E; }
class RouterShapes : public ::testing::TestWithParam<RouterCase> {};

TEST_P(RouterShapes, ForwardFloatMatchesReference) {
  auto [N, d, E] = GetParam();
  auto x = random_vector(N * d, 81), w = random_vector(E * d, 82, 0.5);
  auto x_f = testing::to_float(x), w_f = testing::to_float(w);
  std::vector<float> logits(N * E), probs(N * E);
  routing::router_forward(cpu::ComputeContext{}, logits.data(), probs.data(), x_f.data(), w_f.data(), N, d, E);
  std::vector<double> ref_l(N * E), ref_p(N * E);
  for (int64_t n = 0; n < N; ++n) {
    double m = -INFINITY, s = 0;
    for (int64_t e = 0; e < E; ++e) {
      double acc = 0;
      for (int64_t i = 0; i < d; ++i) acc += x[n * d + i] * w[e * d + i];
      ref_l[n * E + e] = acc;
      m = std::max(m, acc);
    }
    for (int64_t e = 0; e < E; ++e) s += std::exp(ref_l[n * E + e] - m);
    for (int64_t e = 0; e < E; ++e) ref_p[n * E + e] = std::exp(ref_l[n * E + e] - m) / s;
  }
  EXPECT_LT(testing::max_rel_error(logits, ref_l), 1e-5);
  EXPECT_LT(testing::max_rel_error(probs, ref_p), 1e-5);
}

// loss = <probs, R> + <logits, Q>: the first term reaches the logits through the softmax, the second directly
// (as the z-loss does), so d_logits_extra = Q.
TEST_P(RouterShapes, BackwardMatchesFiniteDifferences) {
  auto [N, d, E] = GetParam();
  auto x = random_vector(N * d, 83), w = random_vector(E * d, 84, 0.5);
  auto r = random_vector(N * E, 85), q = random_vector(N * E, 86);
  std::vector<double> logits(N * E), probs(N * E), scratch(N * E), d_x(N * d, 9.0), d_w(E * d, 0.0);
  routing::router_forward(cpu::ComputeContext{}, logits.data(), probs.data(), x.data(), w.data(), N, d, E);
  routing::router_backward(d_x.data(), d_w.data(), scratch.data(), {r.data(), q.data()},
                           {x.data(), w.data(), probs.data()}, {N, d, E});
  auto loss = [&] {
    routing::router_forward(cpu::ComputeContext{}, logits.data(), probs.data(), x.data(), w.data(), N, d, E);
    return testing::dot(probs, r) + testing::dot(logits, q);
  };
  testing::expect_gradient_matches("d_x", x, d_x, loss);
  testing::expect_gradient_matches("d_weight", w, d_w, loss);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RouterShapes,
                         ::testing::Values(RouterCase{.N = 1, .d = 1, .E = 1}, RouterCase{.N = 1, .d = 4, .E = 2},
                                           RouterCase{.N = 7, .d = 5, .E = 3}, RouterCase{.N = 31, .d = 16, .E = 8},
                                           RouterCase{.N = 64, .d = 33, .E = 64}));

// No extra logit gradient, frozen weight (null d_weight), and accumulation into a trained one.
TEST(Router, OptionalGradients) {
  const int64_t N = 9, d = 6, E = 4;
  auto x = random_vector(N * d, 87), w = random_vector(E * d, 88), r = random_vector(N * E, 89);
  std::vector<double> logits(N * E), probs(N * E), scratch(N * E), d_x(N * d), d_x2(N * d), d_w(E * d, 0.0);
  routing::router_forward(cpu::ComputeContext{}, logits.data(), probs.data(), x.data(), w.data(), N, d, E);
  routing::router_backward<double>(d_x.data(), d_w.data(), scratch.data(), {r.data(), nullptr},
                                   {x.data(), w.data(), probs.data()}, {N, d, E});
  auto once = d_w;
  routing::router_backward<double>(d_x2.data(), nullptr, scratch.data(), {r.data(), nullptr},
                                   {x.data(), w.data(), probs.data()}, {N, d, E});
  EXPECT_EQ(d_x, d_x2);
  routing::router_backward<double>(d_x2.data(), d_w.data(), scratch.data(), {r.data(), nullptr},
                                   {x.data(), w.data(), probs.data()}, {N, d, E});
  for (size_t i = 0; i < d_w.size(); ++i) EXPECT_NEAR(d_w[i], 2 * once[i], 1e-14);
  auto loss = [&] {
    routing::router_forward(cpu::ComputeContext{}, logits.data(), probs.data(), x.data(), w.data(), N, d, E);
    return testing::dot(probs, r);
  };
  testing::expect_gradient_matches("d_x without extra", x, d_x, loss);
}

// A bf16 model's router keeps f32 products: under a bf16 precision scope the logits, probabilities and gradients
// are the same bits as without one.
TEST(Router, ProductsStayF32InABf16Model) {
  const int64_t N = 200, d = 64, E = 16;
  const auto x = testing::to_float(random_vector(N * d, 90)), w = testing::to_float(random_vector(E * d, 91, 0.5));
  const auto r = testing::to_float(random_vector(N * E, 92));
  struct Run {
    std::vector<float> logits, probs, d_x, d_w;
  };
  const auto run = [&](const cpu::ComputeContext& ctx) {
    Run o{std::vector<float>(N * E), std::vector<float>(N * E), std::vector<float>(N * d), std::vector<float>(E * d)};
    std::vector<float> scratch(N * E);
    routing::router_forward(ctx, o.logits.data(), o.probs.data(), x.data(), w.data(), N, d, E);
    routing::router_backward<float>(o.d_x.data(), o.d_w.data(), scratch.data(), {r.data(), nullptr},
                                    {x.data(), w.data(), o.probs.data()}, {N, d, E});
    return o;
  };
  cpu::ComputeContext bf16;
  bf16.precision = cpu::GemmPrecision::Bf16;
  const Run f32 = run(cpu::ComputeContext{});
  const Run in_bf16 = run(bf16);
  EXPECT_EQ(in_bf16.logits, f32.logits);
  EXPECT_EQ(in_bf16.probs, f32.probs);
  EXPECT_EQ(in_bf16.d_x, f32.d_x);
  EXPECT_EQ(in_bf16.d_w, f32.d_w);
}

}  // namespace
}  // namespace moelab
