#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numbers>
#include <vector>

#include "analysis/dynamic_experts.h"
#include "core/rng.h"
#include "support/errors.h"
#include "support/omp_threads.h"

namespace moelab {
namespace {

using analysis::analyze_dynamic;
using analysis::DynamicLayerAnalysis;

// One layer's experts in owned buffers, with an ExpertWeights view onto them.
struct Layer {
  int64_t E, d, h;
  std::vector<float> w1, w3, w2;  // [E,h,d], [E,h,d], [E,d,h]

  analysis::ExpertWeights view() const {
    analysis::ExpertWeights w;
    w.layer = 3, w.E = E, w.d = d, w.h = h;
    for (int64_t e = 0; e < E; ++e) {
      w.w1.push_back(w1.data() + e * h * d);
      w.w3.push_back(w3.data() + e * h * d);
      w.w2.push_back(w2.data() + e * d * h);
    }
    return w;
  }
};

std::vector<float> normals(int64_t n, double scale, uint64_t seed) {
  Rng rng(seed, 0);
  std::vector<float> v(n);  // [n]
  for (float& f : v) f = static_cast<float>(scale * rng.normal());
  return v;
}

Layer random_layer(int64_t E, int64_t d, int64_t h, uint64_t seed) {
  return {E,
          d,
          h,
          normals(E * h * d, 1.0 / std::sqrt(d), seed),
          normals(E * h * d, 1.0 / std::sqrt(d), seed + 1),
          normals(E * d * h, 1.0 / std::sqrt(h), seed + 2)};
}

// Every expert made a copy of expert 0.
Layer identical_layer(int64_t E, int64_t d, int64_t h, uint64_t seed) {
  Layer l = random_layer(1, d, h, seed);
  Layer out{E, d, h, {}, {}, {}};
  for (int64_t e = 0; e < E; ++e) {
    out.w1.insert(out.w1.end(), l.w1.begin(), l.w1.end());
    out.w3.insert(out.w3.end(), l.w3.begin(), l.w3.end());
    out.w2.insert(out.w2.end(), l.w2.begin(), l.w2.end());
  }
  return out;
}

// The plain per-token computation in double: y = w2 (silu(w1 x) * (w3 x)) for every token and expert.
struct Reference {
  int64_t S, E, d, h;
  std::vector<double> y;         // [S,E,d]
  std::vector<double> gate_abs;  // [S,E,h] |silu(w1 x)|
  std::vector<double> norm;      // [S,E]

  double cos(int64_t t, int64_t i, int64_t j) const {
    const double ni = norm[t * E + i], nj = norm[t * E + j];
    if (ni == 0 || nj == 0) return 0;
    double dot = 0;
    for (int64_t k = 0; k < d; ++k) dot += y[(t * E + i) * d + k] * y[(t * E + j) * d + k];
    return std::clamp(dot / (ni * nj), -1.0, 1.0);
  }
};

Reference reference(const Layer& l, const std::vector<float>& x /*[S,d]*/, int64_t S) {
  const int64_t E = l.E, d = l.d, h = l.h;
  Reference r{S, E, d, h, std::vector<double>(S * E * d), std::vector<double>(S * E * h), std::vector<double>(S * E)};
  std::vector<double> act(h);  // [h]
  for (int64_t t = 0; t < S; ++t)
    for (int64_t e = 0; e < E; ++e) {
      for (int64_t n = 0; n < h; ++n) {
        double g = 0, u = 0;
        for (int64_t k = 0; k < d; ++k) {
          g += static_cast<double>(l.w1[(e * h + n) * d + k]) * x[t * d + k];
          u += static_cast<double>(l.w3[(e * h + n) * d + k]) * x[t * d + k];
        }
        const double s = g / (1 + std::exp(-g));
        r.gate_abs[(t * E + e) * h + n] = std::fabs(s);
        act[n] = s * u;
      }
      double ss = 0;
      for (int64_t k = 0; k < d; ++k) {
        double v = 0;
        for (int64_t n = 0; n < h; ++n) v += static_cast<double>(l.w2[(e * d + k) * h + n]) * act[n];
        r.y[(t * E + e) * d + k] = v;
        ss += v * v;
      }
      r.norm[t * E + e] = std::sqrt(ss);
    }
  return r;
}

// Reference norms as router scores, times sign (+1: scores rank like norms, -1: the reverse).
std::vector<float> norm_scores(const Reference& r, double sign) {
  std::vector<float> s(r.S * r.E);  // [S,E]
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<float>(sign * r.norm[i]);
  return s;
}

constexpr double kTol = 1e-5;  // float GEMMs against the double reference

TEST(DynamicExperts, MatchesPerTokenReference) {
  // 300 tokens: more than one chunk of 256, so chunk boundaries are crossed.
  const int64_t E = 4, d = 12, h = 20, S = 300, map = 280;  // the map spans the chunk boundary too
  const Layer l = random_layer(E, d, h, 11);
  const std::vector<float> x = normals(S * d, 1.0, 99);  // [S,d]
  const Reference r = reference(l, x, S);
  const std::vector<float> scores = normals(S * E, 1.0, 7);  // [S,E]
  const DynamicLayerAnalysis a = analyze_dynamic(l.view(), x.data(), scores.data(), S, map);

  EXPECT_EQ(a.layer, 3);
  EXPECT_EQ(a.n_tokens, S);
  ASSERT_EQ(a.map_tokens, map);
  ASSERT_EQ(a.output_cosine.size(), size_t(E * E));
  ASSERT_EQ(a.gate_activation_mean.size(), size_t(E * h));
  ASSERT_EQ(a.gate_activation_tokens.size(), size_t(map * E));
  for (int64_t i = 0; i < E; ++i) {
    double norm_mean = 0;
    for (int64_t t = 0; t < S; ++t) norm_mean += r.norm[t * E + i] / S;
    EXPECT_NEAR(a.output_norm_mean[i], norm_mean, kTol * norm_mean);
    for (int64_t j = 0; j < E; ++j) {
      double cs = 0, ang = 0;
      for (int64_t t = 0; t < S; ++t) {
        const double c = r.cos(t, i, j);
        cs += c / S, ang += (1 - std::acos(c) / std::numbers::pi) / S;
      }
      EXPECT_NEAR(a.output_cosine[i * E + j], cs, kTol) << i << "," << j;
      EXPECT_NEAR(a.output_angular[i * E + j], ang, kTol) << i << "," << j;
    }
    for (int64_t n = 0; n < h; ++n) {
      double g = 0;
      for (int64_t t = 0; t < S; ++t) g += r.gate_abs[(t * E + i) * h + n] / S;
      EXPECT_NEAR(a.gate_activation_mean[i * h + n], g, kTol * (1 + g));
    }
    for (int64_t t = 0; t < map; ++t) {
      double g = 0;
      for (int64_t n = 0; n < h; ++n) g += r.gate_abs[(t * E + i) * h + n] / h;
      EXPECT_NEAR(a.gate_activation_tokens[t * E + i], g, kTol * (1 + g));
    }
  }
  // Random experts on random tokens: distinct, not orthogonal.
  EXPECT_LT(a.output_cosine[0 * E + 1], 0.99);

  // Rank co-occurrence against a reference from the double norms and the scores.
  std::vector<int64_t> counts(E * E, 0);  // [E,E]
  int64_t top = 0;
  for (int64_t t = 0; t < S; ++t)
    for (int64_t e = 0; e < E; ++e) {
      int64_t sr = 0, nr = 0;
      for (int64_t f = 0; f < E; ++f) {
        sr += scores[t * E + f] > scores[t * E + e];
        nr += r.norm[t * E + f] > r.norm[t * E + e];
      }
      ++counts[sr * E + nr];
      top += sr == 0 && nr == 0;
    }
  EXPECT_EQ(a.rank_cooccurrence, counts);
  EXPECT_DOUBLE_EQ(a.top_score_is_top_norm, static_cast<double>(top) / S);
  EXPECT_EQ(a.spearman_tokens, S);
  EXPECT_GT(a.mean_spearman, -1);
  EXPECT_LT(a.mean_spearman, 1);
}

TEST(DynamicExperts, IdenticalExpertsHaveSimilarityOne) {
  const int64_t E = 3, d = 10, h = 16, S = 50;
  const Layer l = identical_layer(E, d, h, 5);
  const std::vector<float> x = normals(S * d, 1.0, 6);
  const DynamicLayerAnalysis a = analyze_dynamic(l.view(), x.data(), nullptr, S);
  for (int64_t i = 0; i < E; ++i) {
    for (int64_t j = 0; j < E; ++j) {
      EXPECT_NEAR(a.output_cosine[i * E + j], 1.0, 1e-9) << i << "," << j;
      EXPECT_NEAR(a.output_angular[i * E + j], 1.0, 1e-6) << i << "," << j;
    }
    EXPECT_NEAR(a.output_norm_mean[i], a.output_norm_mean[0], 1e-9);
    for (int64_t n = 0; n < h; ++n) EXPECT_DOUBLE_EQ(a.gate_activation_mean[i * h + n], a.gate_activation_mean[n]);
  }
}

TEST(DynamicExperts, DisjointOutputCoordinatesAreOrthogonal) {
  // Expert e writes only coordinates [4e, 4e + 4): outputs are orthogonal token by token.
  const int64_t E = 3, d = 12, h = 8, S = 40;
  Layer l = random_layer(E, d, h, 21);
  for (int64_t e = 0; e < E; ++e)
    for (int64_t k = 0; k < d; ++k)
      if (k / 4 != e)
        for (int64_t n = 0; n < h; ++n) l.w2[(e * d + k) * h + n] = 0;
  const std::vector<float> x = normals(S * d, 1.0, 22);
  const DynamicLayerAnalysis a = analyze_dynamic(l.view(), x.data(), nullptr, S);
  for (int64_t i = 0; i < E; ++i)
    for (int64_t j = 0; j < E; ++j) {
      EXPECT_DOUBLE_EQ(a.output_cosine[i * E + j], i == j ? 1.0 : 0.0) << i << "," << j;
      EXPECT_DOUBLE_EQ(a.output_angular[i * E + j], i == j ? 1.0 : 0.5) << i << "," << j;
    }
}

TEST(DynamicExperts, ZeroOutputHasCosineZero) {
  const int64_t E = 3, d = 8, h = 8, S = 20;
  Layer l = random_layer(E, d, h, 31);
  std::fill(l.w2.begin() + 1 * d * h, l.w2.begin() + 2 * d * h, 0.0f);  // expert 1 writes nothing
  const std::vector<float> x = normals(S * d, 1.0, 32);
  const DynamicLayerAnalysis a = analyze_dynamic(l.view(), x.data(), nullptr, S);
  EXPECT_EQ(a.output_norm_mean[1], 0.0);
  for (int64_t j = 0; j < E; ++j) {
    EXPECT_EQ(a.output_cosine[1 * E + j], 0.0);
    EXPECT_EQ(a.output_cosine[j * E + 1], 0.0);
    EXPECT_DOUBLE_EQ(a.output_angular[1 * E + j], 0.5);
  }
  EXPECT_DOUBLE_EQ(a.output_cosine[0], 1.0);
}

TEST(DynamicExperts, ScoresEqualToNormsGiveDiagonalCooccurrence) {
  const int64_t E = 5, d = 12, h = 24, S = 64;
  const Layer l = random_layer(E, d, h, 41);
  const std::vector<float> x = normals(S * d, 1.0, 42);
  const Reference r = reference(l, x, S);
  const std::vector<float> scores = norm_scores(r, 1.0);
  const DynamicLayerAnalysis a = analyze_dynamic(l.view(), x.data(), scores.data(), S);
  ASSERT_EQ(a.rank_cooccurrence.size(), size_t(E * E));
  for (int64_t i = 0; i < E; ++i)
    for (int64_t j = 0; j < E; ++j) EXPECT_EQ(a.rank_cooccurrence[i * E + j], i == j ? S : 0) << i << "," << j;
  EXPECT_DOUBLE_EQ(a.top_score_is_top_norm, 1.0);
  EXPECT_EQ(a.spearman_tokens, S);
  EXPECT_NEAR(a.mean_spearman, 1.0, 1e-12);
}

TEST(DynamicExperts, ScoresReversingNormsGiveAntiDiagonal) {
  const int64_t E = 4, d = 8, h = 16, S = 50;
  const Layer l = random_layer(E, d, h, 51);
  const std::vector<float> x = normals(S * d, 1.0, 52);
  const std::vector<float> scores = norm_scores(reference(l, x, S), -1.0);
  const DynamicLayerAnalysis a = analyze_dynamic(l.view(), x.data(), scores.data(), S);
  for (int64_t i = 0; i < E; ++i)
    for (int64_t j = 0; j < E; ++j) EXPECT_EQ(a.rank_cooccurrence[i * E + j], i + j == E - 1 ? S : 0) << i << "," << j;
  EXPECT_DOUBLE_EQ(a.top_score_is_top_norm, 0.0);
  EXPECT_NEAR(a.mean_spearman, -1.0, 1e-12);
}

// Expert e = (e + 1) x expert 0, so norms rank 0 < 1 < 2 on every token; scores {1, 1, 0} tie experts 0 and 1.
TEST(DynamicExperts, TiedScoresUseAverageAndIndexRanks) {
  const int64_t E = 3, d = 8, h = 8, S = 20;
  Layer l = identical_layer(E, d, h, 61);
  for (int64_t e = 0; e < E; ++e)
    for (int64_t i = 0; i < d * h; ++i) l.w2[e * d * h + i] *= static_cast<float>(e + 1);
  const std::vector<float> x = normals(S * d, 1.0, 62);
  std::vector<float> scores;  // [S,E]
  for (int64_t t = 0; t < S; ++t) scores.insert(scores.end(), {1.0f, 1.0f, 0.0f});
  const DynamicLayerAnalysis a = analyze_dynamic(l.view(), x.data(), scores.data(), S);
  // Score ranks (ties to the lower index) 0, 1, 2 against norm ranks 2, 1, 0.
  EXPECT_EQ(a.rank_cooccurrence, (std::vector<int64_t>{0, 0, S, 0, S, 0, S, 0, 0}));
  EXPECT_DOUBLE_EQ(a.top_score_is_top_norm, 0.0);
  // Average score ranks {2.5, 2.5, 1} against norm ranks {1, 2, 3}: rho = -1.5 / sqrt(1.5 * 2).
  EXPECT_NEAR(a.mean_spearman, -1.5 / std::sqrt(3.0), 1e-12);

  // Constant scores have no Spearman correlation: no token counts.
  std::fill(scores.begin(), scores.end(), 0.25f);
  const DynamicLayerAnalysis flat = analyze_dynamic(l.view(), x.data(), scores.data(), S);
  EXPECT_EQ(flat.spearman_tokens, 0);
  EXPECT_TRUE(std::isnan(flat.mean_spearman));
  EXPECT_EQ(flat.rank_cooccurrence, (std::vector<int64_t>{0, 0, S, 0, S, 0, S, 0, 0}));
  EXPECT_TRUE(analysis::to_json(flat)["mean_spearman"].is_null());
}

TEST(DynamicExperts, NullScoresSkipRanks) {
  const int64_t E = 3, d = 8, h = 8, S = 20;
  const Layer l = random_layer(E, d, h, 71);
  const std::vector<float> x = normals(S * d, 1.0, 72);
  const DynamicLayerAnalysis a = analyze_dynamic(l.view(), x.data(), nullptr, S, 100);
  EXPECT_TRUE(a.rank_cooccurrence.empty());
  EXPECT_TRUE(std::isnan(a.top_score_is_top_norm));
  EXPECT_TRUE(std::isnan(a.mean_spearman));
  EXPECT_EQ(a.spearman_tokens, 0);
  EXPECT_EQ(a.map_tokens, S);  // clipped to the tokens there are

  const nlohmann::json j = analysis::to_json(a);
  EXPECT_EQ(j["layer"], 3);
  EXPECT_EQ(j["tokens"], S);
  EXPECT_EQ(j["experts"], E);
  EXPECT_TRUE(j["rank_cooccurrence"].is_null());
  EXPECT_TRUE(j["top_score_is_top_norm"].is_null());
  EXPECT_TRUE(j["mean_spearman"].is_null());
  ASSERT_EQ(j["output_cosine"].size(), size_t(E));
  EXPECT_EQ(j["output_cosine"][1].size(), size_t(E));
  EXPECT_DOUBLE_EQ(j["output_cosine"][2][0].get<double>(), a.output_cosine[2 * E + 0]);
  EXPECT_EQ(j["output_norm_mean"].size(), size_t(E));
  EXPECT_EQ(j["gate_activation_mean"].size(), size_t(E));
  EXPECT_EQ(j["gate_activation_mean"][0].size(), size_t(h));
  EXPECT_EQ(j["gate_activation_tokens"].size(), size_t(S));
  EXPECT_EQ(j["gate_activation_tokens"][0].size(), size_t(E));
}

TEST(DynamicExperts, JsonCarriesRankResults) {
  const int64_t E = 3, d = 8, h = 8, S = 20;
  const Layer l = random_layer(E, d, h, 81);
  const std::vector<float> x = normals(S * d, 1.0, 82);
  const std::vector<float> scores = norm_scores(reference(l, x, S), 1.0);
  const nlohmann::json j = analysis::to_json(analyze_dynamic(l.view(), x.data(), scores.data(), S));
  ASSERT_TRUE(j["rank_cooccurrence"].is_array());
  EXPECT_EQ(j["rank_cooccurrence"][0][0], S);
  EXPECT_EQ(j["rank_cooccurrence"][0][1], 0);
  EXPECT_DOUBLE_EQ(j["top_score_is_top_norm"].get<double>(), 1.0);
  EXPECT_NEAR(j["mean_spearman"].get<double>(), 1.0, 1e-12);
  EXPECT_EQ(j["spearman_tokens"], S);
}

// Each expert's sums are one thread's, in token order: the thread count changes nothing, to the bit.
TEST(DynamicExperts, SameResultForAnyThreadCount) {
  const int64_t E = 5, d = 16, h = 32, S = 300;
  const Layer l = random_layer(E, d, h, 101);
  const std::vector<float> x = normals(S * d, 1.0, 102);
  const std::vector<float> scores = normals(S * E, 1.0, 103);
  auto run = [&](int threads) {
    testing::OmpThreads scope(threads);
    return analyze_dynamic(l.view(), x.data(), scores.data(), S);
  };
  const DynamicLayerAnalysis one = run(1), two = run(2), three = run(3);
  for (const DynamicLayerAnalysis* a : {&two, &three}) {
    EXPECT_EQ(a->output_cosine, one.output_cosine);
    EXPECT_EQ(a->output_angular, one.output_angular);
    EXPECT_EQ(a->output_norm_mean, one.output_norm_mean);
    EXPECT_EQ(a->gate_activation_mean, one.gate_activation_mean);
    EXPECT_EQ(a->gate_activation_tokens, one.gate_activation_tokens);
    EXPECT_EQ(a->rank_cooccurrence, one.rank_cooccurrence);
    EXPECT_EQ(a->mean_spearman, one.mean_spearman);
  }
}

TEST(DynamicExperts, RejectsBadInput) {
  const int64_t E = 3, d = 8, h = 8, S = 10;
  const Layer l = random_layer(E, d, h, 91);
  std::vector<float> x = normals(S * d, 1.0, 92);
  std::vector<float> scores(S * E, 0.5f);
  EXPECT_CONTAINS(testing::error_of([&] { analyze_dynamic(l.view(), x.data(), nullptr, 0); }), "no tokens");
  EXPECT_CONTAINS(testing::error_of([&] { analyze_dynamic(l.view(), x.data(), nullptr, S, -1); }), "map_tokens");
  scores[4] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_CONTAINS(testing::error_of([&] { analyze_dynamic(l.view(), x.data(), scores.data(), S); }),
                  "router score of token 1, expert 1 is not finite");
  x[3 * d + 2] = std::numeric_limits<float>::infinity();
  EXPECT_CONTAINS(testing::error_of([&] { analyze_dynamic(l.view(), x.data(), nullptr, S); }),
                  "output for token 3 is not finite");
}

}  // namespace
}  // namespace moelab
