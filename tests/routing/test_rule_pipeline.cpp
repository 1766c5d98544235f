// End to end through the routing core, for every selection rule of the registry: router -> rule ->
// dispatch -> one fixed linear "expert" per expert -> combine, plus the load-balance loss (divided by k under
// top-k, as the MoE layer does, else by 1: paper 2 does not divide by the kept count), the z-loss and the dynamic
// (entropy) loss, with the gradients of the input and of the router weight checked by finite differences. This is
// the chain the MoE layer runs; the test pins down how the pieces connect (which gradient is assigned, which is
// added, where the z-loss enters) and how each rule's slots (k per token; a varying count under top-p; any count,
// none included, under expert choice) reach them.
#include <gtest/gtest.h>

#include <string>

#include "moelab/designs.h"
#include "routing/entropy_loss.h"
#include "routing/linear_experts.h"
#include "routing/load_balance_loss.h"
#include "routing/router.h"
#include "routing/selection_rule.h"
#include "routing/z_loss.h"
#include "support/gradcheck.h"

namespace moelab {
namespace {

using testing::random_vector;

struct RuleCase {
  SelectionRule rule;
  int64_t N, d, E;
  int64_t k = 1;                 // top_k: experts per token; expert_choice: the k of its capacity
  bool renormalize = false;      // top_k
  double p = 0.4;                // top_p
  int64_t max_k = 0;             // top_p
  double capacity_factor = 1.0;  // expert_choice
};

std::string case_name(const ::testing::TestParamInfo<RuleCase>& info) {
  const RuleCase& c = info.param;
  return std::string(name_of(c.rule)) + "_N" + std::to_string(c.N) + "_E" + std::to_string(c.E) + "_" +
         std::to_string(info.index);
}

struct Pipeline {
  // Random inputs, router, experts and upstream gradient, fixed by the case's sizes.
  explicit Pipeline(const RuleCase& c)
      : c(c),
        x(random_vector(c.N * c.d, 101 + c.N)),
        w_router(random_vector(c.E * c.d, 102 + c.E)),
        r(random_vector(c.N * c.d, 104)) {
    experts.w = random_vector(c.E * c.d * c.d, 103, 0.5);
  }

  RuleCase c;
  double lb_coef = 0.3, z_coef = 0.2, entropy_coef = 0.15;
  std::vector<double> x, w_router, r /*upstream gradient of the output [N,d]*/;
  // Activations.
  std::vector<double> logits, probs, out;
  testing::LinearExperts experts;  // experts.w [E,d,d]
  routing::DispatchPlan<double> plan;

  const routing::SelectionRuleInfo& rule() const { return routing::selection_rule(c.rule); }
  routing::RuleSettings settings() const { return {c.k, c.renormalize, c.p, c.max_k, c.capacity_factor}; }
  routing::RouterRows<double> rows() const { return {probs.data(), logits.data(), c.N, c.E}; }

  double forward() {
    const int64_t N = c.N, d = c.d, E = c.E;
    logits.resize(N * E);
    probs.resize(N * E);
    routing::router_forward(cpu::ComputeContext{}, logits.data(), probs.data(), x.data(), w_router.data(), N, d, E);
    rule().ops<double>().forward(plan, rows(), settings());
    experts.forward(out, x, plan, d);
    const double lb_divisor = rule().load_balance_divisor(c.k);
    return testing::dot(out, r) + lb_coef * routing::load_balance_forward(probs.data(), plan, lb_divisor) +
           z_coef * routing::z_loss_forward(logits.data(), N, E) +
           entropy_coef * routing::entropy_loss_forward(probs.data(), N, E);
  }

  // Gradients of forward()'s loss with respect to x and w_router (accumulated into d_w_router).
  void backward(std::vector<double>& d_x, std::vector<double>& d_w_router) {
    const int64_t N = c.N, d = c.d, E = c.E;
    std::vector<double> d_weight, d_probs(N * E, 0.0), d_logits(N * E, 0.0), scratch(N * E), d_x_router(N * d);
    experts.backward(d_x, d_weight, r, plan, d);
    // The rule assigns the gradient of the probabilities, or of the logits for a rule that reads them; the
    // load-balance and entropy losses add into the probabilities', the z-loss into the logits'.
    rule().ops<double>().backward(rule().reads_logits ? d_logits.data() : d_probs.data(), d_weight.data(), rows(), plan,
                                  settings());
    routing::load_balance_backward(d_probs.data(), lb_coef, plan, rule().load_balance_divisor(c.k));
    routing::entropy_loss_backward(d_probs.data(), entropy_coef, probs.data(), N, E);
    routing::z_loss_backward(d_logits.data(), z_coef, logits.data(), N, E);
    routing::router_backward(d_x_router.data(), d_w_router.data(), scratch.data(), {d_probs.data(), d_logits.data()},
                             {x.data(), w_router.data(), probs.data()}, {N, d, E});
    for (int64_t i = 0; i < N * d; ++i) d_x[i] += d_x_router[i];  // the residual-style sum the MoE layer does
  }
};

class RulePipeline : public ::testing::TestWithParam<RuleCase> {};

TEST_P(RulePipeline, GradientsMatchFiniteDifferences) {
  const RuleCase& c = GetParam();
  Pipeline p(c);
  p.forward();
  const auto selected = p.plan.slot_expert;
  const auto owned = p.plan.token_offsets;
  std::vector<double> d_x, d_w_router(c.E * c.d, 0.0);
  p.backward(d_x, d_w_router);
  auto loss = [&] {
    const double l = p.forward();
    EXPECT_EQ(p.plan.slot_expert, selected) << "a perturbation changed the selection";
    EXPECT_EQ(p.plan.token_offsets, owned) << "a perturbation changed the selection";
    return l;
  };
  testing::expect_gradient_matches("d_x", p.x, d_x, loss);
  testing::expect_gradient_matches("d_router_weight", p.w_router, d_w_router, loss);
}

// What sets each rule's cases apart from top-k's k slots a token is there to be exercised: tokens that keep
// several experts under top-p, tokens with other than k slots (none included) under expert choice.
TEST_P(RulePipeline, TheCaseExercisesWhatSetsItsRuleApart) {
  const RuleCase& c = GetParam();
  Pipeline p(c);
  p.forward();
  if (c.rule == SelectionRule::TopP && c.E >= 4) {
    EXPECT_GT(p.plan.n_slots(), c.N) << "no token kept several experts";
  }
  if (c.rule == SelectionRule::ExpertChoice && c.N > c.E) {
    bool uneven = false;
    for (int64_t t = 0; t < c.N; ++t) uneven |= p.plan.token_offsets[t + 1] - p.plan.token_offsets[t] != c.k;
    EXPECT_TRUE(uneven) << "every token got exactly k experts";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rules, RulePipeline,
    ::testing::Values(
        RuleCase{.rule = SelectionRule::TopK, .N = 1, .d = 3, .E = 2, .k = 1},
        RuleCase{.rule = SelectionRule::TopK, .N = 5, .d = 4, .E = 3, .k = 1, .renormalize = true},
        RuleCase{.rule = SelectionRule::TopK, .N = 11, .d = 6, .E = 4, .k = 2, .renormalize = true},
        RuleCase{.rule = SelectionRule::TopK, .N = 11, .d = 6, .E = 4, .k = 2},
        RuleCase{.rule = SelectionRule::TopK, .N = 13, .d = 7, .E = 8, .k = 3, .renormalize = true},
        RuleCase{.rule = SelectionRule::TopK, .N = 6, .d = 5, .E = 3, .k = 3},
        RuleCase{.rule = SelectionRule::TopP, .N = 1, .d = 3, .E = 2},
        RuleCase{.rule = SelectionRule::TopP, .N = 5, .d = 4, .E = 3},
        RuleCase{.rule = SelectionRule::TopP, .N = 11, .d = 6, .E = 4},
        RuleCase{.rule = SelectionRule::TopP, .N = 11, .d = 6, .E = 4, .p = 0.7, .max_k = 2},
        RuleCase{.rule = SelectionRule::TopP, .N = 13, .d = 7, .E = 8},
        RuleCase{.rule = SelectionRule::TopP, .N = 9, .d = 5, .E = 6, .p = 1.0},
        RuleCase{.rule = SelectionRule::TopKThenSoftmax, .N = 1, .d = 3, .E = 2, .k = 1},
        RuleCase{.rule = SelectionRule::TopKThenSoftmax, .N = 11, .d = 6, .E = 4, .k = 2},
        RuleCase{.rule = SelectionRule::TopKThenSoftmax, .N = 13, .d = 7, .E = 8, .k = 3},
        RuleCase{.rule = SelectionRule::ExpertChoice, .N = 1, .d = 3, .E = 2},
        RuleCase{.rule = SelectionRule::ExpertChoice, .N = 9, .d = 4, .E = 3, .k = 1},
        RuleCase{.rule = SelectionRule::ExpertChoice, .N = 12, .d = 5, .E = 4, .k = 2},
        RuleCase{.rule = SelectionRule::ExpertChoice, .N = 10, .d = 6, .E = 5, .k = 2, .capacity_factor = 1.5}),
    case_name);

}  // namespace
}  // namespace moelab
