// End to end through the routing core under top-p: router -> top-p -> dispatch -> one fixed linear "expert" per
// expert -> combine, plus the load-balance loss with f_divisor 1 (paper 2 does not divide by the kept count) and
// the dynamic (entropy) loss, with the gradient of the input and of the router weight checked by finite
// differences. Tokens own different numbers of slots here, which top-k never produces.
#include <gtest/gtest.h>

#include "routing/entropy_loss.h"
#include "routing/linear_experts.h"
#include "routing/load_balance_loss.h"
#include "routing/router.h"
#include "routing/top_p.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::random_vector;

struct TopPPipeline {
  TopPPipeline(int64_t N, int64_t d, int64_t E, double p, int64_t max_k) : N(N), d(d), E(E), p(p), max_k(max_k) {}

  int64_t N, d, E;
  double p;
  int64_t max_k;
  double lb_coef = 0.3, entropy_coef = 0.2;
  std::vector<double> x, w_router, r /*upstream gradient of the output [N,d]*/;
  // Activations.
  std::vector<double> logits, probs, out;
  testing::LinearExperts experts;  // experts.w [E,d,d]
  routing::DispatchPlan<double> plan;

  double forward() {
    logits.resize(N * E);
    probs.resize(N * E);
    routing::router_forward(logits.data(), probs.data(), x.data(), w_router.data(), N, d, E);
    routing::top_p_forward(plan, probs.data(), N, E, p, max_k);
    experts.forward(out, x, plan, d);
    return testing::dot(out, r) + lb_coef * routing::load_balance_forward(probs.data(), plan, 1.0) +
           entropy_coef * routing::entropy_loss_forward(probs.data(), N, E);
  }

  // Gradients of forward()'s loss with respect to x and w_router (accumulated into d_w_router).
  void backward(std::vector<double>& d_x, std::vector<double>& d_w_router) {
    std::vector<double> d_weight, d_probs(N * E), scratch(N * E), d_x_router(N * d);
    experts.backward(d_x, d_weight, r, plan, d);
    // The selection assigns d_probs; both auxiliary losses add into it.
    routing::top_p_backward(d_probs.data(), d_weight.data(), plan);
    routing::load_balance_backward(d_probs.data(), lb_coef, plan, 1.0);
    routing::entropy_loss_backward(d_probs.data(), entropy_coef, probs.data(), N, E);
    routing::router_backward<double>(d_x_router.data(), d_w_router.data(), scratch.data(), d_probs.data(), nullptr,
                                     x.data(), w_router.data(), probs.data(), N, d, E);
    for (int64_t i = 0; i < N * d; ++i) d_x[i] += d_x_router[i];  // the residual-style sum the MoE layer does
  }
};

class TopPRoutingPipeline : public ::testing::TestWithParam<std::tuple<int, int, int, double, int>> {};

TEST_P(TopPRoutingPipeline, GradientsMatchFiniteDifferences) {
  auto [N, d, E, p, max_k] = GetParam();
  TopPPipeline pipe(N, d, E, p, max_k);
  pipe.x = random_vector(N * d, 201 + N);
  pipe.w_router = random_vector(E * d, 202 + E);
  pipe.experts.w = random_vector(E * d * d, 203, 0.5);
  pipe.r = random_vector(N * d, 204);
  pipe.forward();
  const auto selected = pipe.plan.slot_expert;
  if (E >= 4) {
    EXPECT_GT(pipe.plan.n_slots(), N) << "the case must have tokens that keep several experts";
  }
  std::vector<double> d_x, d_w_router(E * d, 0.0);
  pipe.backward(d_x, d_w_router);
  auto loss = [&] {
    const double l = pipe.forward();
    EXPECT_EQ(pipe.plan.slot_expert, selected) << "a perturbation changed the selection";
    return l;
  };
  testing::expect_gradient_matches("d_x", pipe.x, d_x, loss);
  testing::expect_gradient_matches("d_router_weight", pipe.w_router, d_w_router, loss);
}

// (N, d, E, p, max_k)
INSTANTIATE_TEST_SUITE_P(Shapes, TopPRoutingPipeline,
                         ::testing::Values(std::tuple{1, 3, 2, 0.4, 0}, std::tuple{5, 4, 3, 0.4, 0},
                                           std::tuple{11, 6, 4, 0.4, 0}, std::tuple{11, 6, 4, 0.7, 2},
                                           std::tuple{13, 7, 8, 0.4, 0}, std::tuple{9, 5, 6, 1.0, 0}));

}  // namespace
}  // namespace moelab
