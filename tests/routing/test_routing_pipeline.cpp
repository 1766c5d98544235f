// End to end through the routing core: router -> top-k -> dispatch -> one fixed linear "expert" per expert ->
// combine, plus the load-balance and z-losses, with the gradient of the input and of the router weight checked by
// finite differences. This is the chain the MoE layer runs; the test pins down how the pieces connect (which
// gradient is assigned, which is added, where the z-loss enters).
#include <gtest/gtest.h>

#include "routing/linear_experts.h"
#include "routing/load_balance_loss.h"
#include "routing/router.h"
#include "routing/top_k.h"
#include "routing/z_loss.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::random_vector;

struct Pipeline {
  Pipeline(int64_t N, int64_t d, int64_t E, int64_t k, bool renormalize)
      : N(N), d(d), E(E), k(k), renormalize(renormalize) {}

  int64_t N, d, E, k;
  bool renormalize;
  double lb_coef = 0.3, z_coef = 0.2;
  std::vector<double> x, w_router, r /*upstream gradient of the output [N,d]*/;
  // Activations.
  std::vector<double> logits, probs, out;
  testing::LinearExperts experts;  // experts.w [E,d,d]
  routing::DispatchPlan<double> plan;

  double forward() {
    logits.resize(N * E);
    probs.resize(N * E);
    routing::router_forward(logits.data(), probs.data(), x.data(), w_router.data(), N, d, E);
    routing::top_k_forward(plan, probs.data(), N, E, k, renormalize);
    experts.forward(out, x, plan, d);
    return testing::dot(out, r) + lb_coef * routing::load_balance_forward(probs.data(), plan, double(k)) +
           z_coef * routing::z_loss_forward(logits.data(), N, E);
  }

  // Gradients of forward()'s loss with respect to x and w_router (accumulated into d_w_router).
  void backward(std::vector<double>& d_x, std::vector<double>& d_w_router) {
    std::vector<double> d_weight, d_probs(N * E), d_logits_z(N * E, 0.0), scratch(N * E), d_x_router(N * d);
    experts.backward(d_x, d_weight, r, plan, d);
    routing::top_k_backward(d_probs.data(), d_weight.data(), probs.data(), plan, renormalize);
    routing::load_balance_backward(d_probs.data(), lb_coef, plan, double(k));
    routing::z_loss_backward(d_logits_z.data(), z_coef, logits.data(), N, E);
    routing::router_backward(d_x_router.data(), d_w_router.data(), scratch.data(), d_probs.data(), d_logits_z.data(),
                             x.data(), w_router.data(), probs.data(), N, d, E);
    for (int64_t i = 0; i < N * d; ++i) d_x[i] += d_x_router[i];  // the residual-style sum the MoE layer does
  }
};

class RoutingPipeline : public ::testing::TestWithParam<std::tuple<int, int, int, int, bool>> {};

TEST_P(RoutingPipeline, GradientsMatchFiniteDifferences) {
  auto [N, d, E, k, renormalize] = GetParam();
  Pipeline p(N, d, E, k, renormalize);
  p.x = random_vector(N * d, 101 + N);
  p.w_router = random_vector(E * d, 102 + E);
  p.experts.w = random_vector(E * d * d, 103, 0.5);
  p.r = random_vector(N * d, 104);
  p.forward();
  const auto selected = p.plan.slot_expert;
  std::vector<double> d_x, d_w_router(E * d, 0.0);
  p.backward(d_x, d_w_router);
  auto loss = [&] {
    const double l = p.forward();
    EXPECT_EQ(p.plan.slot_expert, selected) << "a perturbation changed the selection";
    return l;
  };
  testing::expect_gradient_matches("d_x", p.x, d_x, loss);
  testing::expect_gradient_matches("d_router_weight", p.w_router, d_w_router, loss);
}

// (N, d, E, k, renormalize)
INSTANTIATE_TEST_SUITE_P(Shapes, RoutingPipeline,
                         ::testing::Values(std::tuple{1, 3, 2, 1, false}, std::tuple{5, 4, 3, 1, true},
                                           std::tuple{11, 6, 4, 2, true}, std::tuple{11, 6, 4, 2, false},
                                           std::tuple{13, 7, 8, 3, true}, std::tuple{6, 5, 3, 3, false}));

}  // namespace
}  // namespace moelab
