#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "analysis/owned_experts.h"
#include "analysis/static_experts.h"
#include "core/error.h"
#include "core/rng.h"
#include "support/errors.h"

namespace moelab {
namespace {

using analysis::MatrixKind;

using testing::fill_normal;
using testing::OwnedExperts;
using testing::random_experts;

// perm[i] = the position b's copy of a's neuron i takes: b = a with its neurons moved, b[perm[i]] = a[i].
void copy_permuted(OwnedExperts& L, int64_t a, int64_t b, const std::vector<int64_t>& perm) {
  for (int64_t i = 0; i < L.h; ++i)
    for (int64_t c = 0; c < L.d; ++c) {
      L.w1[b][perm[i] * L.d + c] = L.w1[a][i * L.d + c];
      L.w3[b][perm[i] * L.d + c] = L.w3[a][i * L.d + c];
      L.w2[b][c * L.h + perm[i]] = L.w2[a][c * L.h + i];
    }
}

std::vector<int64_t> shuffled(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(n);  // [n]
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  Rng rng(seed, 1);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[rng.below(i + 1)]);
  return p;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> p(n);  // [n]
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  return p;
}

TEST(StaticExperts, CosineHandCases) {
  const std::vector<float> a = {1, 0}, b = {1, 1}, c = {0, -2}, z = {0, 0};
  const auto s = analysis::cosine_similarity_matrix({a.data(), b.data(), c.data(), z.data()}, 2);  // [4,4]
  const double r = 1 / std::sqrt(2.0);
  const std::vector<double> want = {1, r, 0, 0, r, 1, -r, 0, 0, -r, 1, 0, 0, 0, 0, 0};
  ASSERT_EQ(s.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(s[i], want[i], 1e-15) << i;
  const auto g = analysis::gram_matrix({a.data(), b.data(), c.data()}, 2);
  EXPECT_EQ(g, (std::vector<double>{1, 1, 0, 1, 2, -2, 0, -2, 4}));
}

// Every expert a copy of expert 0: every similarity is 1 and the matching is the identity.
TEST(StaticExperts, IdenticalExpertsHaveSimilarityOne) {
  OwnedExperts L = random_experts(4, 12, 20, 1);
  for (int64_t e = 1; e < L.E; ++e) L.w1[e] = L.w1[0], L.w3[e] = L.w3[0], L.w2[e] = L.w2[0];
  const auto w = L.view();
  for (const auto& sims : {analysis::flattened_similarity(w), analysis::neuron_averaged_similarity(w)})
    for (int k = 0; k < analysis::kMatrixKinds; ++k)
      for (double s : sims[k]) EXPECT_NEAR(s, 1.0, 1e-12) << analysis::kMatrixKindNames[k];
  const auto r = analysis::reorder_neurons(w, 0, 2);
  EXPECT_EQ(r.permutation, iota(L.h));
  EXPECT_DOUBLE_EQ(r.kendall_tau, 1.0);
  EXPECT_NEAR(r.mean_matched_similarity, 1.0, 1e-6);
  for (int k = 0; k < analysis::kMatrixKinds; ++k) {
    EXPECT_NEAR(r.cosine_before[k], 1.0, 1e-12);
    EXPECT_NEAR(r.cosine_after[k], 1.0, 1e-12);
  }
}

// Expert e is nonzero only at model coordinates c with c % E == e: flattened and averaged vectors have disjoint
// supports, so every off-diagonal similarity is exactly 0.
TEST(StaticExperts, OrthogonalExpertsHaveSimilarityZero) {
  OwnedExperts L = random_experts(3, 12, 8, 2);
  for (int64_t e = 0; e < L.E; ++e)
    for (int64_t i = 0; i < L.h; ++i)
      for (int64_t c = 0; c < L.d; ++c)
        if (c % L.E != e) L.w1[e][i * L.d + c] = L.w3[e][i * L.d + c] = L.w2[e][c * L.h + i] = 0;
  const auto w = L.view();
  for (const auto& sims : {analysis::flattened_similarity(w), analysis::neuron_averaged_similarity(w)})
    for (int k = 0; k < analysis::kMatrixKinds; ++k)
      for (int64_t i = 0; i < L.E; ++i)
        for (int64_t j = 0; j < L.E; ++j) EXPECT_NEAR(sims[k][i * L.E + j], i == j ? 1.0 : 0.0, 1e-12);
}

// Averaging runs over the neuron axis: rows of w1/w3, columns of w2. E 2, d 2, h 2.
TEST(StaticExperts, NeuronAveragedHandCase) {
  OwnedExperts L(2, 2, 2);
  L.w1[0] = {1, 0, 0, 1};  // rows (1,0), (0,1): mean (0.5, 0.5)
  L.w1[1] = {1, 1, 3, 3};  // rows (1,1), (3,3): mean (2, 2)
  L.w3[0] = {1, 0, 0, 0};
  L.w3[1] = {0, 0, 0, 1};
  L.w2[0] = {1, 3, 0, 0};  // [d,h]: mean over neurons (2, 0)
  L.w2[1] = {0, 0, 5, 1};  // (0, 3)
  const auto w = L.view();
  EXPECT_EQ(analysis::neuron_averaged(w, MatrixKind::Gate), (std::vector<double>{0.5, 0.5, 2, 2}));
  EXPECT_EQ(analysis::neuron_averaged(w, MatrixKind::Down), (std::vector<double>{2, 0, 0, 3}));
  const auto avg = analysis::neuron_averaged_similarity(w);
  const auto flat = analysis::flattened_similarity(w);
  EXPECT_NEAR(avg[0][1], 1.0, 1e-15);
  EXPECT_NEAR(flat[0][1], 4 / std::sqrt(40.0), 1e-15);
  EXPECT_NEAR(avg[1][1], 0.0, 1e-15);  // up means (0.5, 0) and (0, 0.5)
  EXPECT_NEAR(avg[2][1], 0.0, 1e-15);
  EXPECT_NEAR(flat[2][1], 0.0, 1e-15);
}

// b is a with its neurons shuffled: the matching finds the shuffle exactly, after which every matrix matches.
TEST(StaticExperts, ReorderingRecoversPermutation) {
  OwnedExperts L = random_experts(3, 16, 48, 3);
  const std::vector<int64_t> perm = shuffled(L.h, 4);
  copy_permuted(L, 0, 1, perm);
  const auto r = analysis::reorder_neurons(L.view(), 0, 1);
  EXPECT_EQ(r.a, 0);
  EXPECT_EQ(r.b, 1);
  EXPECT_EQ(r.permutation, perm);
  EXPECT_DOUBLE_EQ(analysis::kendall_tau(r.permutation, perm), 1.0);
  EXPECT_DOUBLE_EQ(r.kendall_tau, analysis::kendall_tau(perm, iota(L.h)));
  EXPECT_LT(std::abs(r.kendall_tau), 0.3);
  EXPECT_NEAR(r.mean_matched_similarity, 1.0, 1e-6);
  for (int k = 0; k < analysis::kMatrixKinds; ++k) {
    EXPECT_NEAR(r.cosine_after[k], 1.0, 1e-12) << analysis::kMatrixKindNames[k];
    EXPECT_LT(std::abs(r.cosine_before[k]), 0.3) << analysis::kMatrixKindNames[k];
  }
}

// Over the cap, the matching runs on evenly spaced neurons, the same positions in both experts. b is a with the
// sampled neurons shuffled among their positions (the others left in place): the matching finds that shuffle, and
// the cosines before and after are those of the sampled neurons alone.
TEST(StaticExperts, ACappedMatchingRunsOnEvenlySpacedNeurons) {
  OwnedExperts L = random_experts(2, 16, 50, 7);
  const int64_t cap = 10;
  const std::vector<int64_t> sample = analysis::evenly_spaced_neurons(L.h, cap);  // [10]
  EXPECT_EQ(sample, (std::vector<int64_t>{0, 5, 10, 15, 20, 25, 30, 35, 40, 45}));
  EXPECT_EQ(analysis::evenly_spaced_neurons(7, cap), iota(7)) << "no cap below it";
  const std::vector<int64_t> shuffle = shuffled(cap, 8);  // [10] positions within the sample
  std::vector<int64_t> perm = iota(L.h);                  // [h] b's neuron n is a's neuron perm[n]
  for (int64_t i = 0; i < cap; ++i) perm[sample[i]] = sample[shuffle[i]];
  copy_permuted(L, 0, 1, perm);
  const auto r = analysis::reorder_neurons(L.view(), 0, 1, cap);
  EXPECT_EQ(r.neurons, sample);
  EXPECT_EQ(r.permutation, shuffle);
  EXPECT_DOUBLE_EQ(r.kendall_tau, analysis::kendall_tau(shuffle, iota(cap)));
  EXPECT_NEAR(r.mean_matched_similarity, 1.0, 1e-6);
  for (int k = 0; k < analysis::kMatrixKinds; ++k) EXPECT_NEAR(r.cosine_after[k], 1.0, 1e-12);
  // Before matching: the flattened cosine of the sampled rows of w1 as they stand, computed here directly.
  double dot = 0, na = 0, nb = 0;
  for (int64_t n : sample)
    for (int64_t c = 0; c < L.d; ++c) {
      const double x = L.w1[0][n * L.d + c], y = L.w1[1][n * L.d + c];
      dot += x * y, na += x * x, nb += y * y;
    }
  EXPECT_NEAR(r.cosine_before[0], dot / std::sqrt(na * nb), 1e-12);
  EXPECT_LT(r.cosine_before[0], 0.9) << "the shuffle moved the sampled rows";
  EXPECT_CONTAINS(testing::error_of([&] { analysis::reorder_neurons(L.view(), 0, 1, 1); }),
                  "the neurons matched per expert pair must be at least 2, got 1");
}

// Pairs run in parallel; each result is the one a single call gives, in the order asked.
TEST(StaticExperts, ReorderPairsMatchSingleCalls) {
  OwnedExperts L = random_experts(4, 64, 64, 5);  // big enough for the parallel path
  copy_permuted(L, 2, 3, shuffled(L.h, 6));
  const auto w = L.view();
  const std::vector<std::pair<int64_t, int64_t>> pairs = {{2, 3}, {0, 1}, {3, 0}, {1, 2}};
  const auto all = analysis::reorder_neuron_pairs(w, pairs);
  ASSERT_EQ(all.size(), pairs.size());
  for (size_t p = 0; p < pairs.size(); ++p) {
    const auto one = analysis::reorder_neurons(w, pairs[p].first, pairs[p].second);
    EXPECT_EQ(all[p].a, pairs[p].first);
    EXPECT_EQ(all[p].b, pairs[p].second);
    EXPECT_EQ(all[p].permutation, one.permutation);
    EXPECT_EQ(all[p].cosine_after, one.cosine_after);
    // A matching is a permutation.
    std::vector<int64_t> sorted = all[p].permutation;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, iota(L.h));
  }
  EXPECT_NEAR(all[0].cosine_after[0], 1.0, 1e-12);
  EXPECT_THROW(analysis::reorder_neuron_pairs(w, {{1, 1}}), Error);
  EXPECT_THROW(analysis::reorder_neuron_pairs(w, {{0, 4}}), Error);
  EXPECT_THROW(analysis::reorder_neuron_pairs(w, {{-1, 2}}), Error);
}

TEST(StaticExperts, DefaultReorderPairs) {
  using Pairs = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(analysis::default_reorder_pairs(4), (Pairs{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}}));
  EXPECT_EQ(analysis::default_reorder_pairs(8).size(), 28u);
  EXPECT_EQ(analysis::default_reorder_pairs(4, 5), (Pairs{{0, 1}, {0, 2}, {0, 3}}));
  EXPECT_EQ(analysis::default_reorder_pairs(64).size(), 63u);
  EXPECT_TRUE(analysis::default_reorder_pairs(1).empty());
}

TEST(StaticExperts, KendallTauHandCases) {
  const std::vector<int64_t> id = {0, 1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(analysis::kendall_tau(id, id), 1.0);
  EXPECT_DOUBLE_EQ(analysis::kendall_tau(id, {4, 3, 2, 1, 0}), -1.0);
  // One discordant pair of 6: (5 - 1) / 6.
  EXPECT_DOUBLE_EQ(analysis::kendall_tau({1, 2, 3, 4}, {1, 3, 2, 4}), 2.0 / 3.0);
  // tau-b with a tie in a: 5 concordant pairs, 5 untied in a, 6 in b (scipy.stats.kendalltau: 0.9128709291752769).
  EXPECT_NEAR(analysis::kendall_tau({1, 2, 2, 3}, {1, 2, 3, 4}), 5 / std::sqrt(30.0), 1e-15);
  EXPECT_TRUE(std::isnan(analysis::kendall_tau({1, 1, 1}, {1, 2, 3})));
  EXPECT_TRUE(std::isnan(analysis::kendall_tau({0}, {0})));
}

TEST(StaticExperts, LinearFitHandCases) {
  // x 0 1 2, y 0 2 1: sxx 2, syy 2, sxy 1 -> slope 1/2, intercept 1/2, r^2 = 1 / (2 * 2).
  auto f = analysis::linear_fit({0, 1, 2}, {0, 2, 1});
  EXPECT_DOUBLE_EQ(f.slope, 0.5);
  EXPECT_DOUBLE_EQ(f.intercept, 0.5);
  EXPECT_DOUBLE_EQ(f.r2, 0.25);
  // An exact linear relation.
  const std::vector<double> x = {0.1, -0.3, 0.7, 0.2, 0.05},
                            y = {-0.2 + 0.1 * 3, -0.2 - 0.3 * 3, -0.2 + 0.7 * 3, -0.2 + 0.2 * 3, -0.2 + 0.05 * 3};
  f = analysis::linear_fit(x, y);
  EXPECT_NEAR(f.slope, 3.0, 1e-12);
  EXPECT_NEAR(f.intercept, -0.2, 1e-12);
  EXPECT_NEAR(analysis::linear_fit_r2(x, y), 1.0, 1e-12);
  // Undefined parts are NaN.
  f = analysis::linear_fit({1, 1, 1}, {1, 2, 3});
  EXPECT_TRUE(std::isnan(f.slope) && std::isnan(f.r2));
  f = analysis::linear_fit({1, 2, 3}, {5, 5, 5});
  EXPECT_DOUBLE_EQ(f.slope, 0.0);
  EXPECT_DOUBLE_EQ(f.intercept, 5.0);
  EXPECT_TRUE(std::isnan(f.r2));
}

TEST(StaticExperts, StrictLowerTriangle) {
  EXPECT_EQ(analysis::strict_lower_triangle({0, 1, 2, 3, 4, 5, 6, 7, 8}, 3), (std::vector<double>{3, 6, 7}));
  EXPECT_TRUE(analysis::strict_lower_triangle({1}, 1).empty());
}

// Router rows equal to the experts' mean gate rows: router similarity is the neuron-averaged gate similarity, a
// fit of slope 1, intercept 0, r^2 1; the other kinds are fit too.
TEST(StaticExperts, RouterFitExact) {
  OwnedExperts L = random_experts(5, 8, 16, 7);
  const auto w = L.view();
  const auto mean_gate = analysis::neuron_averaged(w, MatrixKind::Gate);  // [E,d]
  for (int64_t i = 0; i < L.E * L.d; ++i) L.router[i] = static_cast<float>(mean_gate[i] * 0.5);
  analysis::StaticOptions opt;
  opt.reorder_pairs.emplace();  // none
  const auto a = analysis::analyze_static(w, opt);
  EXPECT_TRUE(a.reordering.empty());
  ASSERT_TRUE(a.router_fit.has_value());
  const auto& gate = (*a.router_fit)[0];
  EXPECT_NEAR(gate.r2, 1.0, 1e-6);
  EXPECT_NEAR(gate.slope, 1.0, 1e-6);
  EXPECT_NEAR(gate.intercept, 0.0, 1e-6);
  for (int k = 1; k < analysis::kMatrixKinds; ++k) {
    EXPECT_GE((*a.router_fit)[k].r2, 0.0);
    EXPECT_LE((*a.router_fit)[k].r2, 1.0);
  }
  // A hash router: no router analysis.
  L.router.clear();
  const auto hash = analysis::analyze_static(L.view(), opt);
  EXPECT_TRUE(hash.router.empty());
  EXPECT_FALSE(hash.router_fit.has_value());
}

// Points base + t_i v on a line: one component explains everything and the coordinate is the hand projection
// onto -v/|v| (v's largest-|entry| is negative, so the sign convention flips it).
void expect_line_pca(int64_t m, int64_t n, bool standardize) {
  std::vector<double> v(n), base(n), t(m);  // [n], [n], [m]
  for (int64_t c = 0; c < n; ++c) v[c] = 0.3 + 0.1 * static_cast<double>(c % 4), base[c] = std::sin(c + 1.0);
  v[1] = -2;
  for (int64_t i = 0; i < m; ++i) t[i] = std::cos(3.0 * i) + 0.25 * i;
  std::vector<std::vector<float>> pts(m, std::vector<float>(n));  // [m] each [n]
  std::vector<const float*> rows;                                 // [m]
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t c = 0; c < n; ++c) pts[i][c] = static_cast<float>(base[c] + t[i] * v[c]);
    rows.push_back(pts[i].data());
  }
  const auto fit = analysis::pca_fit(rows, n, 1, 2, standardize);
  ASSERT_EQ(fit.n_components, 2);
  EXPECT_NEAR(fit.explained_variance_ratio[0], 1.0, 1e-9);
  EXPECT_NEAR(fit.explained_variance_ratio[1], 0.0, 1e-9);
  const auto coords = analysis::pca_project(fit, rows, 1);  // [m,2]
  ASSERT_EQ(coords.size(), static_cast<size_t>(m * 2));
  // Hand projection of the (standardized) float points onto the line's direction.
  std::vector<double> mean(n, 0), sd(n, 0), dir(n);  // [n] each
  for (int64_t c = 0; c < n; ++c) {
    for (int64_t i = 0; i < m; ++i) mean[c] += pts[i][c] / static_cast<double>(m);
    for (int64_t i = 0; i < m; ++i) sd[c] += (pts[i][c] - mean[c]) * (pts[i][c] - mean[c]) / (m - 1.0);
    sd[c] = standardize ? std::sqrt(sd[c]) : 1.0;
    dir[c] = -v[c] / sd[c];
  }
  double norm = 0;
  for (double x : dir) norm += x * x;
  for (double& x : dir) x /= std::sqrt(norm);
  double scale = 0;
  for (int64_t i = 0; i < m; ++i) {
    double hand = 0;
    for (int64_t c = 0; c < n; ++c) hand += (pts[i][c] - mean[c]) / sd[c] * dir[c];
    EXPECT_NEAR(coords[i * 2], hand, 1e-5 * (1 + std::abs(hand))) << i;
    EXPECT_NEAR(coords[i * 2 + 1], 0.0, 1e-5) << i;
    scale = std::max(scale, std::abs(hand));
  }
  EXPECT_GT(scale, 0.1);  // the coordinates are not all trivially 0
}

TEST(StaticExperts, PcaOfPointsOnALine) {
  expect_line_pca(7, 3, false);   // covariance route (m > n)
  expect_line_pca(4, 10, false);  // Gram route (m <= n)
  expect_line_pca(7, 3, true);
  expect_line_pca(4, 10, true);
}

// Points on a plane: two components share the variance and the ratios sum to 1.
TEST(StaticExperts, PcaRatiosSumToOneOnAPlane) {
  std::vector<std::vector<float>> pts = {{0, 0, 1}, {2, 0, 1}, {0, 1, 1}, {2, 1, 1}};  // x var 4/3, y var 1/3
  std::vector<const float*> rows;
  for (const auto& p : pts) rows.push_back(p.data());
  const auto fit = analysis::pca_fit(rows, 3, 1, 3, false);
  ASSERT_EQ(fit.n_components, 3);
  EXPECT_NEAR(fit.explained_variance_ratio[0], 0.8, 1e-12);
  EXPECT_NEAR(fit.explained_variance_ratio[1], 0.2, 1e-12);
  EXPECT_NEAR(fit.explained_variance_ratio[2], 0.0, 1e-12);
  EXPECT_NEAR(fit.components[0], 1.0, 1e-12);  // the x axis, positive
  EXPECT_NEAR(fit.components[3 + 1], 1.0, 1e-12);
}

// Experts base + t_e dir: the expert PCA puts them on one component, for each matrix kind.
TEST(StaticExperts, PcaOfExpertsOnALine) {
  OwnedExperts L = random_experts(5, 6, 4, 8);
  for (int64_t e = 1; e < L.E; ++e)
    for (auto* m : {&L.w1, &L.w3, &L.w2})
      for (int64_t i = 0; i < L.h * L.d; ++i)
        (*m)[e][i] = (*m)[0][i] + static_cast<float>(e * e) * 0.5f * static_cast<float>(std::cos(i));
  for (MatrixKind k : analysis::kAllMatrixKinds)
    for (bool standardize : {false, true}) {
      const auto p = analysis::pca_experts(L.view(), k, standardize);
      ASSERT_EQ(p.coords.size(), static_cast<size_t>(L.E * 2));
      EXPECT_NEAR(p.explained_variance_ratio[0], 1.0, 1e-9);
      // The coordinates follow t_e = e^2 up to scale and shift: differences in the ratio of t's differences.
      const double unit = (p.coords[1 * 2] - p.coords[0]) / 1.0;
      for (int64_t e = 2; e < L.E; ++e)
        EXPECT_NEAR(p.coords[e * 2] - p.coords[0], unit * e * e, 1e-6 * std::abs(unit) * e * e);
    }
}

// Down-projection neurons are w2's columns: columns on an affine line give one component.
// Gate neurons are w1's rows. Subsampling keeps evenly spaced neurons with their full-fit coordinates.
TEST(StaticExperts, PcaOfNeurons) {
  OwnedExperts L = random_experts(3, 6, 10, 9);
  for (int64_t e = 0; e < L.E; ++e)
    for (int64_t i = 0; i < L.h; ++i) {
      const double t = std::cos(1.7 * (e * L.h + i));
      for (int64_t c = 0; c < L.d; ++c) {
        L.w2[e][c * L.h + i] = static_cast<float>(std::sin(c + 0.5) + t * (c == 2 ? -3.0 : 1.0 + 0.1 * c));
        L.w1[e][i * L.d + c] = L.w2[e][c * L.h + i];
      }
    }
  const auto w = L.view();
  const auto down = analysis::pca_neurons(w, MatrixKind::Down, L.h, false);
  const auto gate = analysis::pca_neurons(w, MatrixKind::Gate, L.h, false);
  EXPECT_NEAR(down.explained_variance_ratio[0], 1.0, 1e-9);
  ASSERT_EQ(down.coords.size(), gate.coords.size());
  for (size_t i = 0; i < down.coords.size(); ++i) EXPECT_NEAR(down.coords[i], gate.coords[i], 1e-9);
  EXPECT_LT(analysis::pca_neurons(w, MatrixKind::Up, L.h, false).explained_variance_ratio[0], 0.9);

  const auto sub = analysis::pca_neurons(w, MatrixKind::Down, 4, false);
  EXPECT_EQ(sub.neuron, (std::vector<int64_t>{0, 2, 5, 7, 0, 2, 5, 7, 0, 2, 5, 7}));
  EXPECT_EQ(sub.expert, (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
  for (size_t p = 0; p < sub.neuron.size(); ++p)
    for (int j = 0; j < 2; ++j)
      EXPECT_DOUBLE_EQ(sub.coords[p * 2 + j], down.coords[(sub.expert[p] * L.h + sub.neuron[p]) * 2 + j]);
}

TEST(StaticExperts, AnalyzeJsonShapesAndDeterminism) {
  OwnedExperts L = random_experts(3, 8, 12, 10);
  analysis::StaticOptions opt;
  opt.max_neurons_per_expert = 5;
  const auto a = analysis::analyze_static(L.view(), opt);
  const nlohmann::json j = analysis::to_json(a);
  EXPECT_EQ(j.dump(), analysis::to_json(analysis::analyze_static(L.view(), opt)).dump());
  EXPECT_EQ(j["layer"], 3);
  EXPECT_EQ(j["experts"], 3);
  for (const char* kind : analysis::kMatrixKindNames) {
    ASSERT_EQ(j["flattened_similarity"][kind].size(), 3u);
    EXPECT_EQ(j["flattened_similarity"][kind][1].size(), 3u);
    EXPECT_DOUBLE_EQ(j["neuron_averaged_similarity"][kind][2][2].get<double>(), 1.0);
    EXPECT_EQ(j["pca_experts"][kind]["coords"].size(), 3u);
    EXPECT_EQ(j["pca_neurons"][kind]["coords"].size(), 15u);
    EXPECT_EQ(j["pca_neurons"][kind]["coords"][0].size(), 2u);
    EXPECT_TRUE(j["router_fit"][kind]["r2"].is_number());
  }
  ASSERT_EQ(j["reordering"].size(), 3u);  // every pair of 3 experts
  EXPECT_EQ(j["reordering"][2]["a"], 1);
  EXPECT_EQ(j["reordering"][2]["b"], 2);
  EXPECT_EQ(j["reordering"][0]["permutation"].size(), 12u);
  EXPECT_EQ(j["router_similarity"].size(), 3u);

  // Two experts: one lower-triangle point, r^2 undefined, written as null.
  OwnedExperts two = random_experts(2, 8, 12, 11);
  const nlohmann::json j2 = nlohmann::json::parse(analysis::to_json(analysis::analyze_static(two.view())).dump());
  EXPECT_TRUE(j2["router_fit"]["gate"]["r2"].is_null());

  opt.max_neurons_per_expert = 0;
  EXPECT_THROW(analysis::analyze_static(L.view(), opt), Error);
}

}  // namespace
}  // namespace moelab
