// The model's sublayers (SwiGLU MLP, attention block, MoE FFN) composed from the ops: every gradient by finite
// differences in double precision, so a wrong wiring between ops (a missing branch, a swapped buffer) fails here
// before the whole-model oracle test has to find it.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/attention_block.h"
#include "model/moe_ffn.h"
#include "model/swiglu_mlp.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::dot;
using testing::expect_gradient_matches;
using testing::random_vector;

TEST(SwigluMlp, GradientsMatchFiniteDifferences) {
  const int64_t n = 5, d = 6, h = 7;
  auto x = random_vector(n * d, 1), gate = random_vector(h * d, 2), up = random_vector(h * d, 3),
       down = random_vector(d * h, 4), r = random_vector(n * d, 5);
  std::vector<double> out(n * d), g(n * h), u(n * h), act(n * h);
  auto weights = [&] { return SwigluMlpWeights<double>{gate.data(), up.data(), down.data()}; };
  auto loss = [&] {
    swiglu_mlp_forward(out.data(), g.data(), u.data(), act.data(), x.data(), weights(), n, d, h);
    return dot(out, r);
  };
  loss();
  std::vector<double> d_x(n * d), d_gate(h * d, 0.0), d_up(h * d, 0.0), d_down(d * h, 0.0), s1(n * h), s2(n * h),
      s3(n * h);
  swiglu_mlp_backward(d_x.data(), SwigluMlpGrads<double>{d_gate.data(), d_up.data(), d_down.data()}, s1.data(),
                      s2.data(), s3.data(), r.data(), x.data(), g.data(), u.data(), act.data(), weights(), n, d, h);
  expect_gradient_matches("d_x", x, d_x, loss);
  expect_gradient_matches("d_gate", gate, d_gate, loss);
  expect_gradient_matches("d_up", up, d_up, loss);
  expect_gradient_matches("d_down", down, d_down, loss);
}

class AttentionBlockShapes : public ::testing::TestWithParam<std::tuple<int, int, int, int, int>> {};

TEST_P(AttentionBlockShapes, GradientsMatchFiniteDifferences) {
  auto [B, T, H, Hkv, D] = GetParam();
  const int64_t d = 8, N = B * T;
  const AttentionShape s{B, T, d, H, Hkv, D, 10000.0, 1e-6};
  auto x = random_vector(N * d, 10), norm = random_vector(d, 11, 0.5), wq = random_vector(H * D * d, 12),
       wk = random_vector(Hkv * D * d, 13), wv = random_vector(Hkv * D * d, 14), wo = random_vector(d * H * D, 15),
       r = random_vector(N * d, 16);
  for (auto& v : norm) v += 1.0;
  std::vector<double> out(N * d);
  AttentionActivations<double> act;
  auto weights = [&] { return AttentionWeights<double>{norm.data(), wq.data(), wk.data(), wv.data(), wo.data()}; };
  auto loss = [&] {
    attention_block_forward(out.data(), act, x.data(), weights(), s);
    return dot(out, r);
  };
  loss();
  std::vector<double> d_x(N * d), g_norm(d, 0.0), g_q(wq.size(), 0.0), g_k(wk.size(), 0.0), g_v(wv.size(), 0.0),
      g_o(wo.size(), 0.0);
  AttentionScratch<double> scratch;
  attention_block_backward(d_x.data(), AttentionGrads<double>{g_norm.data(), g_q.data(), g_k.data(), g_v.data(),
                                                              g_o.data()},
                           scratch, r.data(), x.data(), act, weights(), s);
  expect_gradient_matches("d_x", x, d_x, loss);
  expect_gradient_matches("d_norm", norm, g_norm, loss);
  expect_gradient_matches("d_wq", wq, g_q, loss);
  expect_gradient_matches("d_wk", wk, g_k, loss);
  expect_gradient_matches("d_wv", wv, g_v, loss);
  expect_gradient_matches("d_wo", wo, g_o, loss);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionBlockShapes,
                         ::testing::Values(std::tuple{1, 1, 1, 1, 2}, std::tuple{2, 5, 2, 2, 4},
                                           std::tuple{1, 7, 4, 2, 2}));

// The MoE FFN end to end: router, top-k, dispatch, experts, combine and both auxiliary losses, with the loss
// sum(out * r) + lb_coef * LB + z_coef * Z. Router weights are scaled so that the top-k choice keeps a margin far
// above the finite-difference step (the selection is piecewise constant).
class MoeFfnCases : public ::testing::TestWithParam<std::tuple<int, int, bool>> {};

TEST_P(MoeFfnCases, GradientsMatchFiniteDifferences) {
  auto [E, k, renormalize] = GetParam();
  const int64_t N = 9, d = 6, h = 5;
  const MoeFfnShape s{N, d, E, h, k, renormalize};
  const double lb_coef = 0.3, z_coef = 0.05;
  auto x = random_vector(N * d, 20), router = random_vector(E * d, 21, 3.0), r = random_vector(N * d, 22);
  std::vector<std::vector<double>> gate, up, down;
  for (int e = 0; e < E; ++e) {
    gate.push_back(random_vector(h * d, 30 + e));
    up.push_back(random_vector(h * d, 60 + e));
    down.push_back(random_vector(d * h, 90 + e));
  }
  auto weights = [&] {
    MoeFfnWeights<double> w{router.data(), {}};
    for (int e = 0; e < E; ++e) w.experts.push_back({gate[e].data(), up[e].data(), down[e].data()});
    return w;
  };
  std::vector<double> out(N * d);
  MoeFfnActivations<double> act;
  auto loss = [&] {
    const MoeAuxLosses aux = moe_ffn_forward(out.data(), act, x.data(), weights(), s);
    return dot(out, r) + lb_coef * aux.load_balance + z_coef * aux.z_loss;
  };
  loss();
  std::vector<double> d_x(N * d), d_router(E * d, 0.0);
  std::vector<std::vector<double>> d_gate(E, std::vector<double>(h * d, 0.0)), d_up = d_gate,
                                   d_down(E, std::vector<double>(d * h, 0.0));
  MoeFfnGrads<double> grads{d_router.data(), {}};
  for (int e = 0; e < E; ++e) grads.experts.push_back({d_gate[e].data(), d_up[e].data(), d_down[e].data()});
  MoeFfnScratch<double> scratch;
  moe_ffn_backward(d_x.data(), grads, scratch, r.data(), x.data(), act, weights(), s, lb_coef, z_coef);
  const auto plan = act.plan;  // the finite differences below must not change the selection
  expect_gradient_matches("d_x", x, d_x, loss, 1e-6, 400, 1e-6);
  expect_gradient_matches("d_router", router, d_router, loss, 1e-6, 400, 1e-6);
  for (int e = 0; e < E; ++e) {
    expect_gradient_matches("d_gate", gate[e], d_gate[e], loss);
    expect_gradient_matches("d_up", up[e], d_up[e], loss);
    expect_gradient_matches("d_down", down[e], d_down[e], loss);
  }
  loss();
  EXPECT_EQ(act.plan.slot_expert, plan.slot_expert) << "the selection changed during the check";
}

INSTANTIATE_TEST_SUITE_P(Routing, MoeFfnCases,
                         ::testing::Values(std::tuple{4, 2, true}, std::tuple{4, 2, false}, std::tuple{5, 1, false},
                                           std::tuple{3, 3, true}));

}  // namespace
}  // namespace moelab
