#include <gtest/gtest.h>

#include <ostream>

#include "routing/granularity.h"
#include "routing/linear_experts.h"
#include "routing/random_plan.h"
#include "routing/router.h"
#include "routing/top_k.h"
#include "support/gradcheck.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

using routing::DispatchPlan;
using testing::random_vector;

// Plain double references, written from the definitions.
std::vector<double> reference_sequence_mean(const std::vector<double>& x, int64_t B, int64_t L, int64_t d) {
  std::vector<double> out(B * d, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < d; ++c) {
      for (int64_t t = 0; t < L; ++t) out[b * d + c] += x[(b * L + t) * d + c];
      out[b * d + c] /= double(L);
    }
  return out;
}

std::vector<double> reference_prefix_mean(const std::vector<double>& x, int64_t B, int64_t L, int64_t d) {
  std::vector<double> out(B * L * d, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t c = 0; c < d; ++c) {
        for (int64_t s = 0; s <= t; ++s) out[(b * L + t) * d + c] += x[(b * L + s) * d + c];
        out[(b * L + t) * d + c] /= double(t + 1);
      }
  return out;
}

void expect_all_eq(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_DOUBLE_EQ(got[i], want[i]) << "element " << i;
}

// x: sequence 0 = rows {1,2},{3,4},{5,9}; sequence 1 = rows {0,-3},{6,3},{-3,3}  (B=2, L=3, d=2)
const std::vector<double> kHandX = {1, 2, 3, 4, 5, 9, 0, -3, 6, 3, -3, 3};

TEST(Granularity, SequenceMeanHandValues) {
  std::vector<double> pooled(4);
  routing::sequence_mean_forward(pooled.data(), kHandX.data(), 2, 3, 2);
  expect_all_eq(pooled, {3, 5, 1, 1});
  // Backward adds d_pooled / L to every token of the sequence.
  std::vector<double> d_x(12, 1.0);
  const std::vector<double> d_pooled = {3, 6, 0, -9};
  routing::sequence_mean_backward(d_x.data(), d_pooled.data(), 2, 3, 2);
  expect_all_eq(d_x, {2, 3, 2, 3, 2, 3, 1, -2, 1, -2, 1, -2});
}

TEST(Granularity, PrefixRunningMeanHandValues) {
  std::vector<double> pooled(12);
  routing::prefix_mean_forward(pooled.data(), kHandX.data(), 2, 3, 2);
  expect_all_eq(pooled, {1, 2, 2, 3, 3, 5, 0, -3, 3, 0, 1, 1});
  // d_x[s] += sum over t >= s of d_pooled[t] / (t+1): {6,4,3} -> {6/1 + 4/2 + 3/3, 4/2 + 3/3, 3/3} = {9, 3, 1}.
  std::vector<double> d_x(3, 1.0);
  const std::vector<double> d_pooled = {6, 4, 3};
  routing::prefix_mean_backward(d_x.data(), d_pooled.data(), 1, 3, 1);
  expect_all_eq(d_x, {10, 4, 2});
}

TEST(Granularity, LengthOneSequencesPoolToThemselves) {
  const auto x = random_vector(5 * 7, 11);
  std::vector<double> seq(5 * 7), pre(5 * 7);
  routing::sequence_mean_forward(seq.data(), x.data(), 5, 1, 7);
  routing::prefix_mean_forward(pre.data(), x.data(), 5, 1, 7);
  EXPECT_EQ(seq, x);
  EXPECT_EQ(pre, x);
}

struct PoolingCase {
  int B, L, d;
};
void PrintTo(const PoolingCase& c, std::ostream* os) { *os << "B=" << c.B << " L=" << c.L << " d=" << c.d; }
class Pooling : public ::testing::TestWithParam<PoolingCase> {};

TEST_P(Pooling, ForwardMatchesReferenceInFloatAndDouble) {
  auto [B, L, d] = GetParam();
  const auto x = random_vector(B * L * d, 21 + B * L * d);
  const auto want_seq = reference_sequence_mean(x, B, L, d), want_pre = reference_prefix_mean(x, B, L, d);
  std::vector<double> seq(B * d), pre(B * L * d);
  routing::sequence_mean_forward(seq.data(), x.data(), B, L, d);
  routing::prefix_mean_forward(pre.data(), x.data(), B, L, d);
  EXPECT_LT(testing::max_rel_error(seq, want_seq), 1e-14);
  EXPECT_LT(testing::max_rel_error(pre, want_pre), 1e-14);
  const auto xf = testing::to_float(x);
  std::vector<float> seq_f(B * d), pre_f(B * L * d);
  routing::sequence_mean_forward(seq_f.data(), xf.data(), B, L, d);
  routing::prefix_mean_forward(pre_f.data(), xf.data(), B, L, d);
  EXPECT_LT(testing::max_rel_error(seq_f, want_seq), 1e-5);
  EXPECT_LT(testing::max_rel_error(pre_f, want_pre), 1e-5);
}

TEST_P(Pooling, BackwardsAddFiniteDifferenceGradients) {
  auto [B, L, d] = GetParam();
  auto x = random_vector(B * L * d, 31 + B);
  const auto r_seq = random_vector(B * d, 32), r_pre = random_vector(B * L * d, 33);
  const auto base = random_vector(B * L * d, 34);  // what dispatch_backward already put into d_x
  std::vector<double> pooled;
  for (const bool prefix : {false, true}) {
    SCOPED_TRACE(prefix ? "prefix" : "sequence");
    const auto& r = prefix ? r_pre : r_seq;
    auto loss = [&] {
      pooled.resize(r.size());
      if (prefix)
        routing::prefix_mean_forward(pooled.data(), x.data(), B, L, d);
      else
        routing::sequence_mean_forward(pooled.data(), x.data(), B, L, d);
      return testing::dot(pooled, r);
    };
    auto d_x = base;
    if (prefix)
      routing::prefix_mean_backward(d_x.data(), r.data(), B, L, d);
    else
      routing::sequence_mean_backward(d_x.data(), r.data(), B, L, d);
    for (size_t i = 0; i < d_x.size(); ++i) d_x[i] -= base[i];
    testing::expect_gradient_matches("d_x", x, d_x, loss);

    // Float agrees with double.
    const auto xf = testing::to_float(x), rf = testing::to_float(r);
    std::vector<float> d_xf(B * L * d, 0.0f);
    if (prefix)
      routing::prefix_mean_backward(d_xf.data(), rf.data(), B, L, d);
    else
      routing::sequence_mean_backward(d_xf.data(), rf.data(), B, L, d);
    EXPECT_LT(testing::max_rel_error(d_xf, d_x), 1e-5);
  }
}

// (B, L, d): L = 1; odd d; d across the 64-column blocks (65, 129, 130). Above the parallel threshold see
// PoolingIsIndependentOfThreadCount.
INSTANTIATE_TEST_SUITE_P(Shapes, Pooling,
                         ::testing::Values(PoolingCase{.B = 1, .L = 1, .d = 1}, PoolingCase{.B = 3, .L = 1, .d = 5},
                                           PoolingCase{.B = 2, .L = 4, .d = 3}, PoolingCase{.B = 3, .L = 7, .d = 65},
                                           PoolingCase{.B = 1, .L = 13, .d = 130},
                                           PoolingCase{.B = 2, .L = 40, .d = 129}));

TEST(Granularity, PrefixRunningMeanIsCausal) {
  const int64_t B = 3, L = 9, d = 67;
  auto x = testing::to_float(random_vector(B * L * d, 41));
  std::vector<float> before(B * L * d), after(B * L * d);
  routing::prefix_mean_forward(before.data(), x.data(), B, L, d);
  for (int64_t t = 0; t + 1 < L; ++t) {
    auto changed = x;
    for (int64_t c = 0; c < d; ++c) changed[(1 * L + t + 1) * d + c] += 3.0f;  // sequence 1, token t+1
    routing::prefix_mean_forward(after.data(), changed.data(), B, L, d);
    for (int64_t row = 0; row < B * L; ++row) {
      const bool may_change = row / L == 1 && row % L > t;
      const bool same = std::equal(before.begin() + row * d, before.begin() + (row + 1) * d, after.begin() + row * d);
      EXPECT_EQ(same, !may_change) << "t " << t << ", row " << row;
    }
  }
}

TEST(Granularity, PoolingIsIndependentOfThreadCount) {
  const int64_t B = 3, L = 100, d = 130;  // 39000 elements: above the parallel threshold
  const auto x = testing::to_float(random_vector(B * L * d, 51));
  const auto g = testing::to_float(random_vector(B * L * d, 52));
  auto run = [&](int threads) {
    testing::OmpThreads guard(threads);
    std::vector<float> seq(B * d), pre(B * L * d), d_seq(B * L * d, 0.5f), d_pre(B * L * d, 0.5f);
    routing::sequence_mean_forward(seq.data(), x.data(), B, L, d);
    routing::prefix_mean_forward(pre.data(), x.data(), B, L, d);
    routing::sequence_mean_backward(d_seq.data(), g.data(), B, L, d);
    routing::prefix_mean_backward(d_pre.data(), g.data(), B, L, d);
    return std::vector<std::vector<float>>{seq, pre, d_seq, d_pre};
  };
  const auto two = run(2);
  EXPECT_EQ(run(1), two);
  const auto xd = testing::to_double(x);
  EXPECT_LT(testing::max_rel_error(two[0], reference_sequence_mean(xd, B, L, d)), 1e-5);
  EXPECT_LT(testing::max_rel_error(two[1], reference_prefix_mean(xd, B, L, d)), 1e-5);
}

// Sequence 0 -> experts {2, 0} weights {.6, .3}; sequence 1 -> expert {1} weight {.9}; E = 3.
DispatchPlan<double> hand_sequence_plan() {
  DispatchPlan<double> plan;
  plan.n_tokens = 2;
  plan.n_experts = 3;
  plan.token_offsets = {0, 2, 3};
  plan.slot_expert = {2, 0, 1};
  plan.slot_weight = {0.6, 0.3, 0.9};
  routing::build_expert_groups(plan);
  return plan;
}

TEST(Granularity, ExpandSequencePlanHandValues) {
  const auto seq = hand_sequence_plan();
  DispatchPlan<double> tok;
  routing::expand_sequence_plan(tok, seq, 2);
  EXPECT_EQ(tok.n_tokens, 4);
  EXPECT_EQ(tok.n_experts, 3);
  EXPECT_EQ(tok.token_offsets, (std::vector<int32_t>{0, 2, 4, 5, 6}));
  EXPECT_EQ(tok.slot_expert, (std::vector<int32_t>{2, 0, 2, 0, 1, 1}));
  EXPECT_EQ(tok.slot_weight, (std::vector<double>{0.6, 0.3, 0.6, 0.3, 0.9, 0.9}));
  EXPECT_EQ(tok.expert_offsets, (std::vector<int32_t>{0, 2, 4, 6}));
  EXPECT_EQ(tok.row_slot, (std::vector<int32_t>{1, 3, 4, 5, 0, 2}));
  EXPECT_EQ(tok.row_token, (std::vector<int32_t>{0, 1, 2, 3, 0, 1}));

  // Each sequence slot collects the gradients of its copies: {1+3, 2+4, 5+6}.
  const std::vector<double> d_tok = {1, 2, 3, 4, 5, 6};
  std::vector<double> d_seq(3, -7.0);  // assigned: the old contents must not leak in
  routing::expand_sequence_plan_backward(d_seq.data(), d_tok.data(), seq, 2);
  EXPECT_EQ(d_seq, (std::vector<double>{4, 6, 11}));
}

TEST(Granularity, ExpandedPlanHasOneExpertSetPerSequence) {
  for (const auto& [B, L, E, max_slots] :
       {std::tuple{1, 1, 2, 1}, std::tuple{5, 1, 4, 3}, std::tuple{7, 6, 5, 3}, std::tuple{4, 11, 8, 8}}) {
    SCOPED_TRACE(::testing::Message() << "B " << B << " L " << L << " E " << E);
    const auto seq = testing::random_plan(B, E, max_slots, 61 + B * L);  // includes sequences with no slot
    DispatchPlan<double> tok;
    routing::expand_sequence_plan(tok, seq, L);
    ASSERT_EQ(tok.n_tokens, B * L);
    ASSERT_EQ(tok.n_slots(), seq.n_slots() * L);
    for (int64_t b = 0; b < B; ++b) {
      const std::vector<int32_t> want_e(seq.slot_expert.begin() + seq.token_offsets[b],
                                        seq.slot_expert.begin() + seq.token_offsets[b + 1]);
      const std::vector<double> want_w(seq.slot_weight.begin() + seq.token_offsets[b],
                                       seq.slot_weight.begin() + seq.token_offsets[b + 1]);
      for (int64_t t = 0; t < L; ++t) {
        const int64_t i = b * L + t;
        EXPECT_EQ(std::vector<int32_t>(tok.slot_expert.begin() + tok.token_offsets[i],
                                       tok.slot_expert.begin() + tok.token_offsets[i + 1]),
                  want_e)
            << "token " << i;
        EXPECT_EQ(std::vector<double>(tok.slot_weight.begin() + tok.token_offsets[i],
                                      tok.slot_weight.begin() + tok.token_offsets[i + 1]),
                  want_w)
            << "token " << i;
      }
    }
    for (int64_t e = 0; e < E; ++e) EXPECT_EQ(tok.expert_rows(e), seq.expert_rows(e) * L) << "expert " << e;
    for (int64_t s = 0; s < tok.n_slots(); ++s) ASSERT_EQ(tok.row_slot[tok.slot_row[s]], s);
    if (L == 1) {
      EXPECT_EQ(tok.token_offsets, seq.token_offsets);
      EXPECT_EQ(tok.row_token, seq.row_token);
    }

    // A reused, previously larger plan gives the same result as a fresh one.
    DispatchPlan<double> reused;
    routing::expand_sequence_plan(reused, testing::random_plan(B + 3, E, E, 62), L + 2);
    routing::expand_sequence_plan(reused, seq, L);
    EXPECT_EQ(reused.token_offsets, tok.token_offsets);
    EXPECT_EQ(reused.slot_expert, tok.slot_expert);
    EXPECT_EQ(reused.slot_weight, tok.slot_weight);
    EXPECT_EQ(reused.row_slot, tok.row_slot);
    EXPECT_EQ(reused.row_token, tok.row_token);

    // Backward by finite differences of <token slot weights, R> with respect to the sequence slot weights.
    auto seq_var = seq;
    const auto r = random_vector(tok.n_slots(), 63);
    std::vector<double> d_seq(seq.n_slots());
    routing::expand_sequence_plan_backward(d_seq.data(), r.data(), seq, L);
    DispatchPlan<double> scratch;
    auto loss = [&] {
      routing::expand_sequence_plan(scratch, seq_var, L);
      return testing::dot(scratch.slot_weight, r);
    };
    testing::expect_gradient_matches("d_seq_slot_weight", seq_var.slot_weight, d_seq, loss);

    // Float agrees with double.
    DispatchPlan<float> seq_f;
    seq_f.n_tokens = seq.n_tokens;
    seq_f.n_experts = seq.n_experts;
    seq_f.token_offsets = seq.token_offsets;
    seq_f.slot_expert = seq.slot_expert;
    seq_f.slot_weight.assign(seq.slot_weight.begin(), seq.slot_weight.end());
    routing::build_expert_groups(seq_f);
    DispatchPlan<float> tok_f;
    routing::expand_sequence_plan(tok_f, seq_f, L);
    EXPECT_EQ(tok_f.slot_expert, tok.slot_expert);
    EXPECT_EQ(tok_f.row_slot, tok.row_slot);
    std::vector<float> d_seq_f(seq.n_slots());
    const auto r_f = testing::to_float(r);
    routing::expand_sequence_plan_backward(d_seq_f.data(), r_f.data(), seq_f, L);
    EXPECT_LT(testing::max_rel_error(d_seq_f, d_seq), 1e-6);
  }
}

// End to end: x -> pooling -> router -> top-k (on pooled rows) -> [expand] -> dispatch x -> one fixed linear expert
// per expert -> combine. The router sees only the pooled rows, the experts see each token, so d_x is the sum of
// the dispatch path (assigned) and the pooling path (added).
struct GranularPipeline {
  GranularPipeline(int64_t B, int64_t L, int64_t d, int64_t E, int64_t k, bool prefix, bool renormalize)
      : B(B), L(L), d(d), E(E), k(k), prefix(prefix), renormalize(renormalize) {}

  int64_t B, L, d, E, k;
  bool prefix, renormalize;
  std::vector<double> x /*[B*L,d]*/, w_router /*[E,d]*/, r /*[B*L,d] upstream gradient*/;
  std::vector<double> pooled, logits, probs, out;
  testing::LinearExperts experts;   // experts.w [E,d,d]
  DispatchPlan<double> route_plan;  // the selection on pooled rows: per sequence, or per token under prefix
  DispatchPlan<double> token_plan;  // per token (the expansion of route_plan under sequence)

  int64_t n_rows() const { return prefix ? B * L : B; }
  const DispatchPlan<double>& plan() const { return prefix ? route_plan : token_plan; }

  double forward() {
    const int64_t P = n_rows();
    pooled.resize(P * d);
    logits.resize(P * E);
    probs.resize(P * E);
    if (prefix)
      routing::prefix_mean_forward(pooled.data(), x.data(), B, L, d);
    else
      routing::sequence_mean_forward(pooled.data(), x.data(), B, L, d);
    routing::router_forward(cpu::ComputeContext{}, logits.data(), probs.data(), pooled.data(), w_router.data(), P, d,
                            E);
    routing::top_k_forward(route_plan, probs.data(), P, E, k, renormalize);
    if (!prefix) routing::expand_sequence_plan(token_plan, route_plan, L);
    experts.forward(out, x, plan(), d);
    return testing::dot(out, r);
  }

  void backward(std::vector<double>& d_x, std::vector<double>& d_w_router) {
    const int64_t P = n_rows();
    std::vector<double> d_tok_weight, d_route_weight(route_plan.n_slots()), d_probs(P * E), scratch(P * E),
        d_pooled(P * d);
    experts.backward(d_x, d_tok_weight, r, plan(), d);
    if (prefix)
      d_route_weight = d_tok_weight;
    else
      routing::expand_sequence_plan_backward(d_route_weight.data(), d_tok_weight.data(), route_plan, L);
    routing::top_k_backward(d_probs.data(), d_route_weight.data(), probs.data(), route_plan, renormalize);
    routing::router_backward<double>(d_pooled.data(), d_w_router.data(), scratch.data(), {d_probs.data(), nullptr},
                                     {pooled.data(), w_router.data(), probs.data()}, {P, d, E});
    if (prefix)
      routing::prefix_mean_backward(d_x.data(), d_pooled.data(), B, L, d);
    else
      routing::sequence_mean_backward(d_x.data(), d_pooled.data(), B, L, d);
  }
};

struct GranularityPipelineCase {
  int B, L, d, E, k;
  bool renormalize;
};
void PrintTo(const GranularityPipelineCase& c, std::ostream* os) {
  *os << "B=" << c.B << " L=" << c.L << " d=" << c.d << " E=" << c.E << " k=" << c.k
      << " renormalize=" << c.renormalize;
}
class GranularityPipeline : public ::testing::TestWithParam<GranularityPipelineCase> {};

TEST_P(GranularityPipeline, GradientsMatchFiniteDifferences) {
  auto [B, L, d, E, k, renormalize] = GetParam();
  for (const bool prefix : {false, true}) {
    SCOPED_TRACE(prefix ? "prefix" : "sequence");
    GranularPipeline p(B, L, d, E, k, prefix, renormalize);
    p.x = random_vector(B * L * d, 71 + B * L);
    p.w_router = random_vector(E * d, 72 + E, 2.0);
    p.experts.w = random_vector(E * d * d, 73, 0.5);
    p.r = random_vector(B * L * d, 74);
    p.forward();
    if (!prefix) {  // one expert set per sequence reaches the experts
      for (int64_t i = 0; i < B * L; ++i)
        EXPECT_EQ(p.token_plan.slot_expert[p.token_plan.token_offsets[i]],
                  p.route_plan.slot_expert[p.route_plan.token_offsets[i / L]]);
    }
    const auto selected = p.route_plan.slot_expert;
    std::vector<double> d_x, d_w_router(E * d, 0.0);
    p.backward(d_x, d_w_router);
    auto loss = [&] {
      const double l = p.forward();
      EXPECT_EQ(p.route_plan.slot_expert, selected) << "a perturbation changed the selection";
      return l;
    };
    testing::expect_gradient_matches("d_x", p.x, d_x, loss);
    testing::expect_gradient_matches("d_router_weight", p.w_router, d_w_router, loss);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GranularityPipeline,
    ::testing::Values(GranularityPipelineCase{.B = 1, .L = 1, .d = 3, .E = 2, .k = 1, .renormalize = false},
                      GranularityPipelineCase{.B = 2, .L = 3, .d = 4, .E = 3, .k = 1, .renormalize = true},
                      GranularityPipelineCase{.B = 3, .L = 5, .d = 5, .E = 4, .k = 2, .renormalize = true},
                      GranularityPipelineCase{.B = 2, .L = 6, .d = 7, .E = 8, .k = 3, .renormalize = false},
                      GranularityPipelineCase{.B = 4, .L = 2, .d = 6, .E = 3, .k = 3, .renormalize = true}));

}  // namespace
}  // namespace moelab
