#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "analysis/specialisation.h"
#include "core/rng.h"
#include "support/errors.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

using analysis::kNoLabel;

// One layer's routing trace: K slots per token (-1 padding) and a label per token.
struct Trace {
  int64_t N = 0, K = 0;
  std::vector<int16_t> experts;  // [N,K]
  std::vector<uint8_t> labels;   // [N]

  void add(std::vector<int16_t> slots, uint8_t label) {
    slots.resize(K, -1);
    experts.insert(experts.end(), slots.begin(), slots.end());
    labels.push_back(label);
    ++N;
  }
};

// table[e][c] tokens routed to expert e alone (second slot -1) with label c.
Trace from_table(const std::vector<std::vector<int>>& table) {
  Trace t;
  t.K = 2;
  for (size_t e = 0; e < table.size(); ++e)
    for (size_t c = 0; c < table[e].size(); ++c)
      for (int i = 0; i < table[e][c]; ++i) t.add({static_cast<int16_t>(e)}, static_cast<uint8_t>(c));
  return t;
}

// N tokens with uniform labels in [0, C) routed to expert = label (one slot, the second padding).
Trace label_router(int64_t N, int64_t C, uint64_t seed) {
  Trace t;
  t.K = 2;
  Rng rng(seed, 0);
  for (int64_t i = 0; i < N; ++i) {
    const auto c = static_cast<uint8_t>(rng.below(C));
    t.add({c}, c);
  }
  return t;
}

// N tokens with skewed labels in [0, C), each routed to two distinct experts drawn independently of the label.
Trace random_router(int64_t N, int64_t E, int64_t C, uint64_t seed) {
  Trace t;
  t.K = 2;
  Rng rng(seed, 1);
  for (int64_t i = 0; i < N; ++i) {
    const uint64_t c0 = rng.below(C), c1 = rng.below(C);
    const auto c = static_cast<uint8_t>(std::min(c0, c1));  // skewed to low classes
    const auto e0 = static_cast<int16_t>(rng.below(E));
    const auto e1 = static_cast<int16_t>((e0 + 1 + rng.below(E - 1)) % E);
    t.add({e0, e1}, c);
  }
  return t;
}

// Experts that lean towards the label (expert = label 60% of the time): partly specialised.
Trace leaning_router(int64_t N, int64_t E, int64_t C, uint64_t seed) {
  Trace t;
  t.K = 1;
  Rng rng(seed, 2);
  for (int64_t i = 0; i < N; ++i) {
    const auto c = static_cast<uint8_t>(rng.below(C));
    t.add({static_cast<int16_t>(rng.uniform() < 0.6 ? c % E : rng.below(E))}, c);
  }
  return t;
}

analysis::SpecialisationResult run(const Trace& t, int64_t E, int64_t C, int64_t permutations, uint64_t seed) {
  return analysis::specialisation(t.experts.data(), t.N, t.K, E, t.labels.data(), C, permutations, seed);
}

void expect_same(const analysis::PermutationScore& a, const analysis::PermutationScore& b) {
  EXPECT_EQ(a.observed, b.observed);
  EXPECT_EQ(a.baseline_mean, b.baseline_mean);
  EXPECT_EQ(a.baseline_std, b.baseline_std);
  EXPECT_EQ(a.z, b.z);
  EXPECT_EQ(a.p_value, b.p_value);
}

// [[3,1],[1,3]]: p = 3/8, 1/8 off the diagonal, uniform marginals, so I = 3/4 log(3/2) + 1/4 log(1/2) and
// H(E) = H(C) = log 2.
TEST(Specialisation, HandComputedTwoByTwo) {
  const Trace t = from_table({{3, 1}, {1, 3}});
  const auto table = analysis::contingency(t.experts.data(), t.N, t.K, 2, t.labels.data(), 2);
  EXPECT_EQ(table.counts, (std::vector<int64_t>{3, 1, 1, 3}));
  EXPECT_EQ(table.total, 8);
  const double expected = (0.75 * std::log(1.5) + 0.25 * std::log(0.5)) / std::log(2.0);
  EXPECT_NEAR(analysis::normalized_mutual_information(table), expected, 1e-14);
  EXPECT_NEAR(analysis::normalized_mutual_information(table), 0.18872187554086714, 1e-12);
  EXPECT_DOUBLE_EQ(analysis::purity(table), 0.75);
}

// An asymmetric table, value from the arithmetic-mean formula evaluated independently (scikit-learn's
// normalized_mutual_info_score gives the same for these labels).
TEST(Specialisation, HandComputedTwoByThree) {
  const Trace t = from_table({{5, 0, 1}, {0, 2, 2}});
  const auto table = analysis::contingency(t.experts.data(), t.N, t.K, 2, t.labels.data(), 3);
  EXPECT_NEAR(analysis::normalized_mutual_information(table), 0.566238815991403, 1e-12);
  EXPECT_DOUBLE_EQ(analysis::purity(table), 0.7);
}

// Degenerate tables: nothing counted, one expert and one label, routing independent of labels.
TEST(Specialisation, DegenerateTables) {
  const Trace empty = from_table({{0, 0}, {0, 0}});
  const auto t0 = analysis::contingency(empty.experts.data(), 0, 2, 2, empty.labels.data(), 2);
  EXPECT_EQ(analysis::normalized_mutual_information(t0), 0.0);
  EXPECT_EQ(analysis::purity(t0), 0.0);
  const Trace one = from_table({{5}});
  const auto t1 = analysis::contingency(one.experts.data(), one.N, one.K, 1, one.labels.data(), 1);
  EXPECT_EQ(analysis::normalized_mutual_information(t1), 0.0);
  EXPECT_EQ(analysis::purity(t1), 1.0);
  const Trace flat = from_table({{2, 4}, {3, 6}});
  const auto t2 = analysis::contingency(flat.experts.data(), flat.N, flat.K, 2, flat.labels.data(), 2);
  EXPECT_NEAR(analysis::normalized_mutual_information(t2), 0.0, 1e-15);
}

// Routing purely by POS class: the expert determines the label and vice versa.
TEST(Specialisation, LabelRouterIsFullySpecialised) {
  const Trace t = label_router(20000, 8, 7);
  const auto r = run(t, 8, 8, 100, 42);
  EXPECT_GT(r.nmi.observed, 0.99);
  EXPECT_DOUBLE_EQ(r.purity.observed, 1.0);
  EXPECT_LT(r.nmi.baseline_mean, 0.01);
  EXPECT_GT(r.nmi.z, 50);
  EXPECT_GT(r.purity.z, 50);
  EXPECT_DOUBLE_EQ(r.nmi.p_value, 1.0 / 101);
  EXPECT_DOUBLE_EQ(r.purity.p_value, 1.0 / 101);
  EXPECT_EQ(r.labelled_tokens, 20000);
  EXPECT_EQ(r.table.total, 20000);  // the padding slot counts nothing
}

// Routing independent of the labels, at the size of a Brown validation trace (160k tokens, top-2, 8 experts, 15
// classes): the observed scores are draws from the permutation distribution.
TEST(Specialisation, RandomRouterMatchesBaseline) {
  const Trace t = random_router(160000, 8, 15, 3);
  const auto r = run(t, 8, 15, 100, 11);
  EXPECT_EQ(r.table.total, 320000);
  EXPECT_LT(r.nmi.observed, 0.001);
  EXPECT_GT(r.nmi.baseline_std, 0);
  EXPECT_LT(std::abs(r.nmi.z), 4);
  EXPECT_LT(std::abs(r.purity.z), 4);
  EXPECT_GT(r.nmi.p_value, 0.01);
  EXPECT_GT(r.purity.p_value, 0.01);
}

// Renaming experts (rows) or labels (columns) permutes the table but changes neither score.
TEST(Specialisation, InvariantToRelabelling) {
  const Trace t = leaning_router(5000, 6, 9, 5);
  const auto base = analysis::contingency(t.experts.data(), t.N, t.K, 6, t.labels.data(), 9);
  const std::vector<int16_t> expert_map = {4, 0, 5, 2, 1, 3};
  const std::vector<uint8_t> label_map = {8, 3, 0, 6, 1, 7, 2, 5, 4};
  Trace renamed = t;
  for (auto& e : renamed.experts) e = expert_map[e];
  for (auto& c : renamed.labels) c = label_map[c];
  const auto moved = analysis::contingency(renamed.experts.data(), t.N, t.K, 6, renamed.labels.data(), 9);
  for (int64_t e = 0; e < 6; ++e)
    for (int64_t c = 0; c < 9; ++c) EXPECT_EQ(base.counts[e * 9 + c], moved.counts[expert_map[e] * 9 + label_map[c]]);
  const double nmi = analysis::normalized_mutual_information(base);
  EXPECT_GT(nmi, 0.1);
  EXPECT_NEAR(analysis::normalized_mutual_information(moved), nmi, 1e-13);
  EXPECT_DOUBLE_EQ(analysis::purity(moved), analysis::purity(base));
}

// The permutation baseline depends on the seed only: bit-identical for 1, 2 and 3 threads and on a second run,
// different for another seed.
TEST(Specialisation, DeterministicAcrossThreadsAndSeeds) {
  const Trace t = leaning_router(4000, 4, 6, 9);
  analysis::SpecialisationResult one, two, three;
  {
    testing::OmpThreads threads(1);
    one = run(t, 4, 6, 37, 123);
  }
  {
    testing::OmpThreads threads(2);
    two = run(t, 4, 6, 37, 123);
  }
  {
    testing::OmpThreads threads(3);
    three = run(t, 4, 6, 37, 123);
  }
  expect_same(one.nmi, two.nmi);
  expect_same(one.purity, two.purity);
  expect_same(one.nmi, three.nmi);
  expect_same(one.purity, three.purity);
  const auto again = run(t, 4, 6, 37, 123);
  expect_same(one.nmi, again.nmi);
  const auto other = run(t, 4, 6, 37, 124);
  EXPECT_EQ(other.nmi.observed, one.nmi.observed);
  EXPECT_NE(other.nmi.baseline_mean, one.nmi.baseline_mean);
}

// Tokens without a label (255), however routed, change neither the table nor the permutations.
TEST(Specialisation, UnlabelledTokensIgnored) {
  const Trace t = leaning_router(3000, 4, 5, 13);
  Trace padded;
  padded.K = t.K;
  Rng rng(99, 0);
  for (int64_t i = 0; i < t.N; ++i) {
    if (i % 3 == 0) padded.add({static_cast<int16_t>(rng.below(4))}, kNoLabel);
    padded.add({t.experts[i]}, t.labels[i]);
  }
  padded.add({0}, kNoLabel);
  const auto a = run(t, 4, 5, 20, 8);
  const auto b = run(padded, 4, 5, 20, 8);
  EXPECT_EQ(b.labelled_tokens, t.N);
  EXPECT_EQ(a.table.counts, b.table.counts);
  expect_same(a.nmi, b.nmi);
  expect_same(a.purity, b.purity);
}

// Windows of 64 tokens each routed as one (sequence-level routing) to a random expert pair, documents of 4 windows
// each with one random genre: routing and genre are independent, but both are clustered. A token-level shuffle
// breaks the clustering of the labels and so calls this specialised; moving whole windows keeps it and does not.
TEST(Specialisation, WindowShuffleIsNotFooledByClusteredRoutingAndLabels) {
  const int64_t W = 64, windows = 400, N = W * windows + 17, E = 8, C = 6;  // a 17-token tail window stays put
  std::vector<int16_t> experts(N * 2);                                      // [N,2]
  std::vector<uint8_t> genre(N);                                            // [N]
  Rng rng(5, 0);
  for (int64_t w = 0; w * W < N; ++w) {
    const int16_t a = static_cast<int16_t>(rng.below(E)), b = static_cast<int16_t>((a + 1 + rng.below(E - 1)) % E);
    const uint8_t g = w % 4 == 0 ? static_cast<uint8_t>(rng.below(C)) : genre[(w - w % 4) * W];
    for (int64_t t = w * W; t < std::min(N, (w + 1) * W); ++t) experts[2 * t] = a, experts[2 * t + 1] = b, genre[t] = g;
  }
  for (int64_t t = N - 17; t < N; ++t) genre[t] = kNoLabel;  // unlabelled tokens count nowhere
  const auto by_token = analysis::specialisation(experts.data(), N, 2, E, genre.data(), C, 100, 3, 1);
  const auto by_window = analysis::specialisation(experts.data(), N, 2, E, genre.data(), C, 100, 3, W);
  EXPECT_EQ(by_window.block, W);
  EXPECT_EQ(by_token.nmi.observed, by_window.nmi.observed);  // same table, different baselines
  EXPECT_EQ(by_window.table.counts, by_token.table.counts);
  EXPECT_EQ(by_window.labelled_tokens, N - 17);
  EXPECT_EQ(by_window.table.total, 2 * (N - 17));
  EXPECT_GT(by_token.nmi.z, 20);
  EXPECT_LT(std::abs(by_window.nmi.z), 4);
  EXPECT_GT(by_window.nmi.p_value, 0.01);
  EXPECT_GT(by_window.nmi.baseline_mean, 10 * by_token.nmi.baseline_mean);
}

// A router that follows the genre is still found specialised when whole windows move.
TEST(Specialisation, WindowShuffleStillFindsRealSpecialisation) {
  const int64_t W = 32, N = W * 300, E = 4, C = 4;
  std::vector<int16_t> experts(N);  // [N,1]
  std::vector<uint8_t> genre(N);    // [N]
  Rng rng(9, 0);
  for (int64_t w = 0; w < N / W; ++w) {
    const uint8_t g = static_cast<uint8_t>(rng.below(C));
    for (int64_t t = w * W; t < (w + 1) * W; ++t) genre[t] = g, experts[t] = static_cast<int16_t>(g);
  }
  const auto r = analysis::specialisation(experts.data(), N, 1, E, genre.data(), C, 50, 1, W);
  EXPECT_GT(r.nmi.observed, 0.99);
  EXPECT_GT(r.nmi.z, 20);
  EXPECT_NEAR(r.nmi.p_value, 1.0 / 51, 1e-12);
  EXPECT_THROW(analysis::specialisation(experts.data(), N, 1, E, genre.data(), C, 5, 1, 0), Error);
}

TEST(Specialisation, RejectsBadInput) {
  Trace t = from_table({{2, 1}, {1, 2}});
  t.experts[2] = 5;
  EXPECT_CONTAINS(testing::error_of([&] { run(t, 2, 2, 10, 0); }), "expert id 5 at token 1 slot 0");
  t.experts[2] = 0;
  EXPECT_CONTAINS(testing::error_of([&] { run(t, 2, 2, -1, 0); }), "permutations >= 0");
  EXPECT_CONTAINS(testing::error_of([&] { run(t, 0, 2, 10, 0); }), "experts");
  EXPECT_CONTAINS(testing::error_of([&] { run(t, 2, 0, 10, 0); }), "label classes");
}

TEST(Specialisation, Json) {
  const Trace t = from_table({{3, 1, 0}, {1, 3, 2}});
  const nlohmann::json j = analysis::to_json(run(t, 2, 3, 0, 5));
  EXPECT_EQ(j["counts"], nlohmann::json::parse("[[3,1,0],[1,3,2]]"));
  EXPECT_EQ(j["experts"], 2);
  EXPECT_EQ(j["labels"], 3);
  EXPECT_EQ(j["slots"], 10);
  EXPECT_EQ(j["permutations"], 0);
  EXPECT_TRUE(j["nmi"]["observed"].is_number());
  EXPECT_TRUE(j["nmi"]["baseline_mean"].is_null());  // no permutations: no baseline
  EXPECT_TRUE(j["nmi"]["z"].is_null());
  EXPECT_EQ(j["nmi"]["p_value"], 1.0);
  EXPECT_DOUBLE_EQ(j["purity"]["observed"].get<double>(), 0.6);
}

// A baseline that differs only in its last bits has no spread: no z (it used to be printed as 1e14).
TEST(Specialisation, ABaselineWithoutSpreadHasNoZ) {
  const double purity = 0.125;
  std::vector<double> baseline(100, purity);
  for (size_t i = 0; i < baseline.size(); i += 3) baseline[i] = std::nextafter(purity, 1.0);
  const analysis::PermutationScore flat = analysis::score_against(0.5, baseline);
  EXPECT_TRUE(std::isnan(flat.z)) << flat.z;
  EXPECT_GT(flat.baseline_std, 0.0);  // rounding-level spread is there, and ignored
  EXPECT_DOUBLE_EQ(flat.p_value, 1.0 / 101.0);
  // A real spread gives the usual z.
  std::vector<double> spread = {0.1, 0.2, 0.3};
  EXPECT_NEAR(analysis::score_against(0.5, spread).z, 3.0, 1e-12);
}

}  // namespace
}  // namespace moelab
