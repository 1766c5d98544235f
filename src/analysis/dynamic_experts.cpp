#include "analysis/dynamic_experts.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>
#include <numeric>
#include <type_traits>
#include <utility>

#include "backend/cpu/gemm.h"
#include "core/error.h"
#include "core/fast_exp.h"

namespace moelab::analysis {
namespace {

using cpu::Trans;

// Tokens per chunk: the chunk's outputs of every expert [C,E,d] (16 MiB for E = 64, d = 256) and two [C,h]
// buffers per thread are what is held at once, and C = 256 rows keep the expert GEMMs large enough to run at
// full speed.
constexpr int64_t kChunk = 256;
// Below this many multiply-adds (pairs x tokens x d) the OpenMP fork of the pair loop costs more than it saves.
constexpr int64_t kParallelElements = 1 << 14;

// silu(g) = g * sigmoid(g), with sigmoid from exp(-|g|) <= 1 so nothing overflows (as in ops/swiglu.cpp).
inline float silu(float g) {
  const float e = exp_nonpositive(-std::fabs(g));
  const float s = g >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
  return g * s;
}

// Experts in descending order of v (ties: lower index first); rank_of[e] = position of e in that order.
void descending_ranks(const double* v /*[E]*/, int64_t E, std::vector<int64_t>& order /*[E]*/,
                      std::vector<int64_t>& rank_of /*[E]*/) {
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  for (int64_t r = 0; r < E; ++r) rank_of[order[r]] = r;
}

// Average ranks of v (1-based, tied values share the mean of their positions), as Spearman's rho uses them.
void average_ranks(const double* v /*[E]*/, int64_t E, std::vector<int64_t>& order /*[E]*/,
                   std::vector<double>& rank /*[E]*/) {
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return v[a] < v[b]; });
  for (int64_t lo = 0; lo < E;) {
    int64_t hi = lo + 1;
    while (hi < E && v[order[hi]] == v[order[lo]]) ++hi;
    const double mean = 0.5 * static_cast<double>(lo + hi + 1);  // mean of positions lo+1 .. hi
    for (int64_t r = lo; r < hi; ++r) rank[order[r]] = mean;
    lo = hi;
  }
}

// Pearson correlation of two rank vectors with the same mean (average ranks of E values always sum to E(E+1)/2);
// NaN when either is constant.
double rank_correlation(const std::vector<double>& a /*[E]*/, const std::vector<double>& b /*[E]*/) {
  const int64_t E = static_cast<int64_t>(a.size());
  const double mean = 0.5 * static_cast<double>(E + 1);
  double ab = 0, aa = 0, bb = 0;
  for (int64_t e = 0; e < E; ++e) {
    const double da = a[e] - mean, db = b[e] - mean;
    ab += da * db, aa += da * da, bb += db * db;
  }
  if (aa == 0 || bb == 0) return DynamicLayerAnalysis::kNaN;
  return ab / std::sqrt(aa * bb);
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

template <typename V>
nlohmann::json matrix(const std::vector<V>& m /*[rows,cols]*/, int64_t rows, int64_t cols) {
  nlohmann::json out = nlohmann::json::array();
  for (int64_t r = 0; r < rows; ++r) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t c = 0; c < cols; ++c) {
      if constexpr (std::is_floating_point_v<V>) {
        row.push_back(number_or_null(m[r * cols + c]));
      } else {
        row.push_back(m[r * cols + c]);
      }
    }
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace

DynamicLayerAnalysis analyze_dynamic(const ExpertWeights& w, const float* x /*[S,d]*/,
                                     const float* scores /*[S,E] or null*/, int64_t S, int64_t map_tokens) {
  const int64_t E = w.E, d = w.d, h = w.h;
  MOELAB_ASSERT(E > 0 && d > 0 && h > 0, "expert weights without experts");
  MOELAB_ASSERT(static_cast<int64_t>(w.w1.size()) == E && static_cast<int64_t>(w.w3.size()) == E &&
                    static_cast<int64_t>(w.w2.size()) == E,
                "expert weight views of another expert count");
  MOELAB_ASSERT(x != nullptr, "dynamic expert analysis without an input");
  if (S < 1) throw_error("dynamic expert analysis, layer ", w.layer, ": no tokens (expected S >= 1)");
  if (map_tokens < 0) throw_error("dynamic expert analysis: map_tokens ", map_tokens, ": expected >= 0");
  if (scores != nullptr) {
    for (int64_t i = 0; i < S * E; ++i)
      if (!std::isfinite(scores[i]))
        throw_error("dynamic expert analysis, layer ", w.layer, ": router score of token ", i / E, ", expert ", i % E,
                    " is not finite");
  }

  DynamicLayerAnalysis out;
  out.layer = w.layer, out.n_tokens = S, out.E = E, out.h = h;
  out.map_tokens = std::min(map_tokens, S);
  out.output_cosine.assign(E * E, 0.0);
  out.output_angular.assign(E * E, 0.0);
  out.output_norm_mean.assign(E, 0.0);
  out.gate_activation_mean.assign(E * h, 0.0);
  out.gate_activation_tokens.assign(out.map_tokens * E, 0.0);
  if (scores != nullptr) out.rank_cooccurrence.assign(E * E, 0);

  // Unordered expert pairs i < j: each pair's token sum runs in token order on one thread.
  std::vector<std::pair<int64_t, int64_t>> pairs;  // [E(E-1)/2]
  for (int64_t i = 0; i < E; ++i)
    for (int64_t j = i + 1; j < E; ++j) pairs.emplace_back(i, j);
  const int64_t n_pairs = static_cast<int64_t>(pairs.size());

  const int64_t C = std::min(kChunk, S);
  const int64_t threads = omp_get_max_threads();
  std::vector<float> scratch(threads * 2 * C * h);           // [threads,2,C,h] per thread: w1 x; w3 x, then the SwiGLU
  std::vector<float> y(C * E * d);                           // [C,E,d] every expert's output for the chunk's tokens
  std::vector<double> norm(C * E);                           // [C,E] ||y||_2
  std::vector<double> pair_cos(n_pairs), pair_ang(n_pairs);  // [E(E-1)/2] sums over tokens
  std::vector<int64_t> nonzero(E, 0);  // [E] tokens with a nonzero output of expert e (its diagonal cosine is 1)
  std::vector<int64_t> order(E), score_rank(E), norm_rank(E);             // [E]
  std::vector<double> score_avg_rank(E), norm_avg_rank(E), score_row(E);  // [E]
  double spearman_sum = 0;

  for (int64_t t0 = 0; t0 < S; t0 += C) {
    const int64_t c = std::min(C, S - t0);
    const float* xc = x + t0 * d;  // [c,d]
    // One expert per thread: one fork per chunk rather than one per GEMM (which matters on a busy 2-core machine),
    // and each expert's sums are one thread's, in token order, so they do not depend on the thread count.
#pragma omp parallel for schedule(static)
    for (int64_t e = 0; e < E; ++e) {
      float* gate = scratch.data() + omp_get_thread_num() * 2 * C * h;  // [c,h]
      float* up = gate + C * h;                                         // [c,h]
      cpu::gemm(Trans::N, Trans::T, c, h, d, 1.0f, xc, d, w.w1[e], d, 0.0f, gate, h);
      cpu::gemm(Trans::N, Trans::T, c, h, d, 1.0f, xc, d, w.w3[e], d, 0.0f, up, h);
      double* gsum = out.gate_activation_mean.data() + e * h;  // [h]
      for (int64_t t = 0; t < c; ++t) {
        float* g = gate + t * h;  // [h]
        float* u = up + t * h;    // [h]
        double row_abs = 0;
        for (int64_t n = 0; n < h; ++n) {
          const float a = silu(g[n]);
          u[n] *= a;
          gsum[n] += std::fabs(a);
          row_abs += std::fabs(a);
        }
        if (t0 + t < out.map_tokens) out.gate_activation_tokens[(t0 + t) * E + e] = row_abs / static_cast<double>(h);
      }
      cpu::gemm(Trans::N, Trans::T, c, d, h, 1.0f, up, h, w.w2[e], h, 0.0f, y.data() + e * d, E * d);
      for (int64_t t = 0; t < c; ++t) {
        const float* v = y.data() + (t * E + e) * d;  // [d]
        double ss = 0;
        for (int64_t k = 0; k < d; ++k) ss += static_cast<double>(v[k]) * v[k];
        norm[t * E + e] = std::sqrt(ss);
      }
    }

    for (int64_t t = 0; t < c; ++t)
      for (int64_t e = 0; e < E; ++e) {
        const double n = norm[t * E + e];
        if (!std::isfinite(n))
          throw_error("dynamic expert analysis, layer ", w.layer, ": expert ", e, "'s output for token ", t0 + t,
                      " is not finite (NaN or Inf in the layer input or the expert weights)");
        out.output_norm_mean[e] += n;
        if (n > 0) ++nonzero[e];
      }

#pragma omp parallel for schedule(static) if (n_pairs * c * d >= kParallelElements)
    for (int64_t p = 0; p < n_pairs; ++p) {
      const auto [i, j] = pairs[p];
      double cos_sum = 0, ang_sum = 0;
      for (int64_t t = 0; t < c; ++t) {
        const double ni = norm[t * E + i], nj = norm[t * E + j];
        double cs = 0;
        if (ni > 0 && nj > 0) {
          const float* yi = y.data() + (t * E + i) * d;  // [d]
          const float* yj = y.data() + (t * E + j) * d;  // [d]
          double dot = 0;
          for (int64_t k = 0; k < d; ++k) dot += static_cast<double>(yi[k]) * yj[k];
          cs = std::clamp(dot / (ni * nj), -1.0, 1.0);
        }
        cos_sum += cs;
        ang_sum += 1.0 - std::acos(cs) / std::numbers::pi;
      }
      pair_cos[p] += cos_sum;
      pair_ang[p] += ang_sum;
    }

    if (scores == nullptr) continue;
    for (int64_t t = 0; t < c; ++t) {
      const float* s = scores + (t0 + t) * E;  // [E]
      const double* nt = norm.data() + t * E;  // [E]
      for (int64_t e = 0; e < E; ++e) score_row[e] = s[e];
      descending_ranks(score_row.data(), E, order, score_rank);
      descending_ranks(nt, E, order, norm_rank);
      for (int64_t e = 0; e < E; ++e) ++out.rank_cooccurrence[score_rank[e] * E + norm_rank[e]];
      average_ranks(score_row.data(), E, order, score_avg_rank);
      average_ranks(nt, E, order, norm_avg_rank);
      const double rho = rank_correlation(score_avg_rank, norm_avg_rank);
      if (!std::isnan(rho)) spearman_sum += rho, ++out.spearman_tokens;
    }
  }

  const double inv_s = 1.0 / static_cast<double>(S);
  for (int64_t e = 0; e < E; ++e) {
    // cos(y, y) = 1 for a nonzero output, 0 (angular 0.5) for a zero one.
    const double frac = static_cast<double>(nonzero[e]) * inv_s;
    out.output_cosine[e * E + e] = frac;
    out.output_angular[e * E + e] = frac + 0.5 * (1.0 - frac);
    out.output_norm_mean[e] *= inv_s;
  }
  for (int64_t p = 0; p < n_pairs; ++p) {
    const auto [i, j] = pairs[p];
    out.output_cosine[i * E + j] = out.output_cosine[j * E + i] = pair_cos[p] * inv_s;
    out.output_angular[i * E + j] = out.output_angular[j * E + i] = pair_ang[p] * inv_s;
  }
  for (double& v : out.gate_activation_mean) v *= inv_s;
  if (scores != nullptr) {
    // Count [0][0]: tokens whose rank-0-score expert has norm rank 0.
    out.top_score_is_top_norm = static_cast<double>(out.rank_cooccurrence[0]) * inv_s;
    if (out.spearman_tokens > 0) out.mean_spearman = spearman_sum / static_cast<double>(out.spearman_tokens);
  }
  return out;
}

nlohmann::json to_json(const DynamicLayerAnalysis& r) {
  nlohmann::json j;
  j["layer"] = r.layer;
  j["tokens"] = r.n_tokens;
  j["experts"] = r.E;
  j["hidden"] = r.h;
  j["output_cosine"] = matrix(r.output_cosine, r.E, r.E);
  j["output_angular"] = matrix(r.output_angular, r.E, r.E);
  j["output_norm_mean"] = matrix(r.output_norm_mean, 1, r.E).at(0);
  j["rank_cooccurrence"] =
      r.rank_cooccurrence.empty() ? nlohmann::json(nullptr) : matrix(r.rank_cooccurrence, r.E, r.E);
  j["top_score_is_top_norm"] = number_or_null(r.top_score_is_top_norm);
  j["mean_spearman"] = number_or_null(r.mean_spearman);
  j["spearman_tokens"] = r.spearman_tokens;
  j["gate_activation_mean"] = matrix(r.gate_activation_mean, r.E, r.h);
  j["gate_activation_tokens"] = matrix(r.gate_activation_tokens, r.map_tokens, r.E);
  return j;
}

}  // namespace moelab::analysis
