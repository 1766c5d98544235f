#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <ostream>

#include "routing/top_p.h"
#include "support/gradcheck.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

using routing::DispatchPlan;

template <typename T>
struct Selected {
  std::vector<int32_t> experts;
  std::vector<T> weights;
};

template <typename T>
Selected<T> token_slots(const DispatchPlan<T>& plan, int64_t t) {
  Selected<T> s;
  for (int32_t i = plan.token_offsets[t]; i < plan.token_offsets[t + 1]; ++i) {
    s.experts.push_back(plan.slot_expert[i]);
    s.weights.push_back(plan.slot_weight[i]);
  }
  return s;
}

// One token's top-p selection in both precisions; the hand cases below use exactly representable probabilities,
// so float and double must give the same experts and exactly the given weights.
template <typename T>
Selected<T> select_one(const std::vector<double>& probs, double p, int64_t max_k = 0) {
  const std::vector<T> pt(probs.begin(), probs.end());
  DispatchPlan<T> plan;
  routing::top_p_forward(plan, pt.data(), 1, static_cast<int64_t>(pt.size()), p, max_k);
  EXPECT_EQ(plan.token_offsets.size(), 2u);
  return token_slots(plan, 0);
}

template <typename T>
class TopPHand : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(TopPHand, Precisions);

TYPED_TEST(TopPHand, TopProbabilityAbovePKeepsOne) {
  const auto s = select_one<TypeParam>({0.25, 0.5, 0.25}, 0.4);
  EXPECT_EQ(s.experts, (std::vector<int32_t>{1}));
  EXPECT_EQ(s.weights, (std::vector<TypeParam>{0.5}));
}

TYPED_TEST(TopPHand, CrossingExpertIsKept) {
  // (0.35, 0.25, ...) with p = 0.4: 0.35 <= 0.4, then 0.6 > 0.4 -> two experts, weights not renormalised.
  const auto s = select_one<TypeParam>({0.2, 0.25, 0.35, 0.2}, 0.4);
  EXPECT_EQ(s.experts, (std::vector<int32_t>{2, 1}));
  EXPECT_EQ(s.weights, (std::vector<TypeParam>{TypeParam(0.35), TypeParam(0.25)}));
}

TYPED_TEST(TopPHand, SumEqualToPKeepsTheNextExpert) {
  // Sorted 0.5, 0.25 (expert 0 before expert 1: ties go to the lower index), 0.25. The sum 0.5 equals p = 0.5:
  // not strictly greater, so the next expert is kept too.
  auto s = select_one<TypeParam>({0.25, 0.25, 0.5}, 0.5);
  EXPECT_EQ(s.experts, (std::vector<int32_t>{2, 0}));
  EXPECT_EQ(s.weights, (std::vector<TypeParam>{0.5, 0.25}));
  // 0.75 equals p = 0.75: every expert.
  s = select_one<TypeParam>({0.25, 0.25, 0.5}, 0.75);
  EXPECT_EQ(s.experts, (std::vector<int32_t>{2, 0, 1}));
  // Just below the sum: the crossing comes one expert earlier.
  s = select_one<TypeParam>({0.25, 0.25, 0.5}, 0.4999);
  EXPECT_EQ(s.experts, (std::vector<int32_t>{2}));
}

TYPED_TEST(TopPHand, MaxKCaps) {
  const std::vector<double> probs = {0.125, 0.25, 0.5, 0.125};  // sums 0.5, 0.75, 0.875, 1 -> p = 0.9 keeps all
  EXPECT_EQ(select_one<TypeParam>(probs, 0.9).experts, (std::vector<int32_t>{2, 1, 0, 3}));
  EXPECT_EQ(select_one<TypeParam>(probs, 0.9, 1).experts, (std::vector<int32_t>{2}));
  EXPECT_EQ(select_one<TypeParam>(probs, 0.9, 2).experts, (std::vector<int32_t>{2, 1}));
  EXPECT_EQ(select_one<TypeParam>(probs, 0.9, 4).experts, (std::vector<int32_t>{2, 1, 0, 3}));
  EXPECT_EQ(select_one<TypeParam>(probs, 0.9, 9).experts, (std::vector<int32_t>{2, 1, 0, 3}));  // cap above E
  // A cap above what p keeps changes nothing.
  EXPECT_EQ(select_one<TypeParam>(probs, 0.6, 3).experts, (std::vector<int32_t>{2, 1}));
}

TYPED_TEST(TopPHand, POneKeepsEveryExpertUnlessTheSumPassesOne) {
  EXPECT_EQ(select_one<TypeParam>({0.125, 0.5, 0.125, 0.25}, 1.0).experts, (std::vector<int32_t>{1, 3, 0, 2}));
  // Probabilities that sum past 1 by rounding (as a float softmax can): sums 0.5, 0.75 + eps, 1 + eps > 1, so the
  // third expert is the last one kept and the fourth is dropped.
  const double eps = std::numeric_limits<TypeParam>::epsilon();
  EXPECT_EQ(select_one<TypeParam>({0.25, eps, 0.5, 0.25 + eps}, 1.0).experts, (std::vector<int32_t>{2, 3, 0}));
}

TYPED_TEST(TopPHand, SingleExpertAndNoTokens) {
  EXPECT_EQ(select_one<TypeParam>({1.0}, 0.4).experts, (std::vector<int32_t>{0}));
  EXPECT_EQ(select_one<TypeParam>({0.3}, 1.0).experts, (std::vector<int32_t>{0}));  // never crosses: all (one) kept
  DispatchPlan<TypeParam> plan;
  routing::top_p_forward<TypeParam>(plan, nullptr, 0, 4, 0.4, 0);
  EXPECT_EQ(plan.token_offsets, (std::vector<int32_t>{0}));
  EXPECT_EQ(plan.n_slots(), 0);
  EXPECT_EQ(plan.expert_offsets, (std::vector<int32_t>{0, 0, 0, 0, 0}));
}

// A whole plan by hand: varying slot counts per token, compacted in token order, grouped by expert.
TEST(TopP, HandPlan) {
  const std::vector<double> probs = {0.5,    0.25,  0.25,    // 1 slot: expert 0 (0.5 > 0.4)
                                     0.3125, 0.375, 0.3125,  // 2 slots: experts 1, 0 (tie: lower index first)
                                     0.375,  0.25,  0.375};  // 2 slots: experts 0, 2 (0.375 then 0.75)
  DispatchPlan<double> plan;
  routing::top_p_forward(plan, probs.data(), 3, 3, 0.4, 0);
  EXPECT_EQ(plan.token_offsets, (std::vector<int32_t>{0, 1, 3, 5}));
  EXPECT_EQ(plan.slot_expert, (std::vector<int32_t>{0, 1, 0, 0, 2}));
  EXPECT_EQ(plan.slot_weight, (std::vector<double>{0.5, 0.375, 0.3125, 0.375, 0.375}));
  EXPECT_EQ(plan.expert_offsets, (std::vector<int32_t>{0, 3, 4, 5}));
  EXPECT_EQ(plan.row_slot, (std::vector<int32_t>{0, 2, 3, 1, 4}));
  EXPECT_EQ(plan.row_token, (std::vector<int32_t>{0, 1, 2, 1, 2}));
}

// The rule written plainly: a stable sort of the row by descending probability, a double cumulative sum.
template <typename T>
Selected<T> reference(const T* probs /*[E]*/, int64_t E, double p, int64_t max_k) {
  std::vector<int32_t> order(E);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
  Selected<T> s;
  double sum = 0;
  for (int32_t e : order) {
    if (max_k > 0 && static_cast<int64_t>(s.experts.size()) == max_k) break;
    s.experts.push_back(e);
    s.weights.push_back(probs[e]);
    sum += static_cast<double>(probs[e]);
    if (sum > p) break;
  }
  return s;
}

// The slot-level facts and the expert grouping every consumer relies on.
template <typename T>
void expect_plan_matches_reference(const DispatchPlan<T>& plan, const std::vector<T>& probs, int64_t N, int64_t E,
                                   double p, int64_t max_k) {
  ASSERT_EQ(plan.n_tokens, N);
  ASSERT_EQ(plan.n_experts, E);
  ASSERT_EQ(plan.token_offsets.size(), static_cast<size_t>(N + 1));
  ASSERT_EQ(plan.token_offsets[0], 0);
  ASSERT_EQ(plan.slot_weight.size(), plan.slot_expert.size());
  for (int64_t t = 0; t < N; ++t) {
    ASSERT_LT(plan.token_offsets[t], plan.token_offsets[t + 1]) << "token " << t << " must keep its top-1 expert";
    const auto want = reference(probs.data() + t * E, E, p, max_k);
    const auto got = token_slots(plan, t);
    ASSERT_EQ(got.experts, want.experts) << "token " << t;
    ASSERT_EQ(got.weights, want.weights) << "token " << t;
  }
  ASSERT_EQ(plan.token_offsets[N], plan.n_slots());
  const int64_t S = plan.n_slots();
  ASSERT_EQ(plan.expert_offsets.size(), static_cast<size_t>(E + 1));
  ASSERT_EQ(plan.expert_offsets[E], S);
  ASSERT_EQ(plan.row_slot.size(), static_cast<size_t>(S));
  for (int64_t e = 0; e < E; ++e) {
    for (int32_t r = plan.expert_offsets[e]; r < plan.expert_offsets[e + 1]; ++r) {
      const int32_t s = plan.row_slot[r];
      ASSERT_EQ(plan.slot_expert[s], e) << "row " << r;
      ASSERT_EQ(plan.slot_row[s], r) << "row " << r;
      ASSERT_TRUE(s >= plan.token_offsets[plan.row_token[r]] && s < plan.token_offsets[plan.row_token[r] + 1]);
      if (r > plan.expert_offsets[e]) {
        ASSERT_LT(plan.row_token[r - 1], plan.row_token[r]);
      }
    }
  }
}

// Rows of random non-negative values scaled to sum to 1 (fourth powers: a few large ones, many small ones), then
// rounded to multiples of 1/64 so that ties are frequent and rows no longer sum exactly to 1.
template <typename T>
std::vector<T> coarse_probs(int64_t N, int64_t E, uint64_t seed) {
  auto raw = testing::random_vector(N * E, seed);
  for (auto& v : raw) v = v * v * v * v;
  std::vector<T> probs(N * E);
  for (int64_t t = 0; t < N; ++t) {
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += raw[t * E + e];
    for (int64_t e = 0; e < E; ++e) probs[t * E + e] = static_cast<T>(std::round(raw[t * E + e] / sum * 64) / 64);
  }
  return probs;
}

struct TopPCase {
  int N, E;
  double p;
  int max_k;
};
void PrintTo(const TopPCase& c, std::ostream* os) {
  *os << "N=" << c.N << " E=" << c.E << " p=" << c.p << " max_k=" << c.max_k;
}
class TopPReference : public ::testing::TestWithParam<TopPCase> {};

// Both precisions against the plain rule, on a size that runs threaded; the same plan object is reused across
// calls that keep more and then fewer slots, as training does.
TEST_P(TopPReference, MatchesPlainRule) {
  auto [N, E, p, max_k] = GetParam();
  const auto probs_d = coarse_probs<double>(N, E, 31 + E);
  const auto probs_f = coarse_probs<float>(N, E, 31 + E);
  DispatchPlan<double> plan_d;
  DispatchPlan<float> plan_f;
  for (double q : {1.0, p}) {
    routing::top_p_forward(plan_d, probs_d.data(), N, E, q, max_k);
    expect_plan_matches_reference(plan_d, probs_d, N, E, q, max_k);
    routing::top_p_forward(plan_f, probs_f.data(), N, E, q, max_k);
    expect_plan_matches_reference(plan_f, probs_f, N, E, q, max_k);
  }
}

// (N, E, p, max_k); 300 x 64 crosses the threads threshold.
INSTANTIATE_TEST_SUITE_P(Shapes, TopPReference,
                         ::testing::Values(TopPCase{.N = 1, .E = 1, .p = 0.4, .max_k = 0},
                                           TopPCase{.N = 7, .E = 3, .p = 0.4, .max_k = 0},
                                           TopPCase{.N = 13, .E = 8, .p = 0.6, .max_k = 2},
                                           TopPCase{.N = 300, .E = 64, .p = 0.4, .max_k = 0},
                                           TopPCase{.N = 300, .E = 64, .p = 0.9, .max_k = 5},
                                           TopPCase{.N = 97, .E = 16, .p = 0.1, .max_k = 0}));

TEST(TopP, IndependentOfThreadCount) {
  const int64_t N = 500, E = 64;
  const auto probs = coarse_probs<float>(N, E, 41);
  DispatchPlan<float> one, two;
  {
    testing::OmpThreads threads(1);
    routing::top_p_forward(one, probs.data(), N, E, 0.5, 0);
  }
  {
    testing::OmpThreads threads(2);
    routing::top_p_forward(two, probs.data(), N, E, 0.5, 0);
  }
  EXPECT_EQ(one.token_offsets, two.token_offsets);
  EXPECT_EQ(one.slot_expert, two.slot_expert);
  EXPECT_EQ(one.slot_weight, two.slot_weight);
  EXPECT_EQ(one.row_slot, two.row_slot);
}

// The float rule selects exactly what the double rule selects on the same values widened to double (the cumulative
// sum is a double in both), and the weights are those values.
TEST(TopP, FloatMatchesDouble) {
  const int64_t N = 300, E = 32;
  auto raw = testing::random_vector<float>(N * E, 42);
  std::vector<float> probs_f(N * E);
  for (int64_t t = 0; t < N; ++t) {  // a float softmax of random logits: sums are 1 up to float rounding
    float sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += probs_f[t * E + e] = std::exp(3.0f * raw[t * E + e]);
    for (int64_t e = 0; e < E; ++e) probs_f[t * E + e] /= sum;
  }
  const auto probs_d = testing::to_double(probs_f);
  for (double p : {0.4, 0.8, 1.0}) {
    DispatchPlan<float> plan_f;
    DispatchPlan<double> plan_d;
    routing::top_p_forward(plan_f, probs_f.data(), N, E, p, 0);
    routing::top_p_forward(plan_d, probs_d.data(), N, E, p, 0);
    EXPECT_EQ(plan_f.token_offsets, plan_d.token_offsets) << "p = " << p;
    EXPECT_EQ(plan_f.slot_expert, plan_d.slot_expert) << "p = " << p;
    EXPECT_EQ(testing::to_double(plan_f.slot_weight), plan_d.slot_weight) << "p = " << p;
    EXPECT_GT(plan_d.n_slots(), N) << "p = " << p << ": some token must keep several experts";

    auto r = testing::random_vector(plan_d.n_slots(), 43);
    auto r_f = testing::to_float(r);
    std::vector<double> d(N * E);
    std::vector<float> d_f(N * E);
    routing::top_p_backward(d.data(), r.data(), plan_d);
    routing::top_p_backward(d_f.data(), r_f.data(), plan_f);
    EXPECT_LT(testing::max_rel_error(d_f, d), 1e-7);
  }
}

// Probabilities a perturbation of 1e-5 cannot reorder: each row a random permutation of well-spaced values.
std::vector<double> separated_probs(int64_t N, int64_t E, uint64_t seed) {
  Rng rng(seed, 0);
  std::vector<double> p(N * E);
  std::vector<int64_t> order(E);
  for (int64_t t = 0; t < N; ++t) {
    std::iota(order.begin(), order.end(), 0);
    for (int64_t j = E - 1; j > 0; --j) std::swap(order[j], order[rng.below(j + 1)]);
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += p[t * E + e] = order[e] + 1 + 0.5 * rng.uniform();
    for (int64_t e = 0; e < E; ++e) p[t * E + e] /= sum;
  }
  return p;
}

class TopPGradient : public ::testing::TestWithParam<TopPCase> {};

TEST_P(TopPGradient, MatchesFiniteDifferences) {
  auto [N, E, p, max_k] = GetParam();
  auto probs = separated_probs(N, E, 44 + N);
  DispatchPlan<double> plan;
  routing::top_p_forward(plan, probs.data(), N, E, p, max_k);
  const auto selected = plan.slot_expert;
  const auto offsets = plan.token_offsets;
  auto r = testing::random_vector(plan.n_slots(), 45);  // loss = sum_s r_s * w_s
  std::vector<double> d_probs(N * E, 7.0);              // garbage: backward must assign
  routing::top_p_backward(d_probs.data(), r.data(), plan);
  auto loss = [&] {
    routing::top_p_forward(plan, probs.data(), N, E, p, max_k);
    EXPECT_EQ(plan.slot_expert, selected) << "a perturbation changed the selection";
    return testing::dot(plan.slot_weight, r);
  };
  testing::expect_gradient_matches("d_probs", probs, d_probs, loss);
  for (int64_t t = 0; t < N; ++t) {
    const auto first = selected.begin() + offsets[t], last = selected.begin() + offsets[t + 1];
    for (int64_t e = 0; e < E; ++e) {
      if (std::find(first, last, e) != last) continue;
      EXPECT_EQ(d_probs[t * E + e], 0.0) << "unselected expert " << e << " of token " << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, TopPGradient,
                         ::testing::Values(TopPCase{.N = 1, .E = 1, .p = 0.4, .max_k = 0},
                                           TopPCase{.N = 7, .E = 5, .p = 0.4, .max_k = 0},
                                           TopPCase{.N = 13, .E = 8, .p = 0.5, .max_k = 0},
                                           TopPCase{.N = 13, .E = 8, .p = 0.9, .max_k = 3},
                                           TopPCase{.N = 5, .E = 6, .p = 1.0, .max_k = 0}));

}  // namespace
}  // namespace moelab
