#include "analysis/expert_health.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "analysis/static_experts.h"
#include "core/error.h"

namespace moelab::analysis {

ExpertHealth expert_health(const ExpertWeights& w, const int64_t* tokens_per_expert /*[E] or null*/,
                           const HealthOptions& options) {
  if (!(options.collapse_threshold >= -1 && options.collapse_threshold <= 1))
    throw_error("expert health: collapse threshold must be in [-1, 1], got ", options.collapse_threshold);
  if (!(options.rare_fraction >= 0))
    throw_error("expert health: rare fraction must be >= 0, got ", options.rare_fraction);
  const int64_t E = w.E;
  MOELAB_ASSERT(E >= 1 && static_cast<int64_t>(w.w1.size()) == E && static_cast<int64_t>(w.w3.size()) == E &&
                    static_cast<int64_t>(w.w2.size()) == E,
                "expert weights: one pointer per expert and matrix expected");
  ExpertHealth r;
  r.layer = w.layer, r.E = E, r.options = options;

  // The whole expert's dot products are the sums of its three matrices' ones: no concatenated copy needed.
  const int64_t n = w.h * w.d;
  const std::vector<double> g1 = gram_matrix(w.w1, n);  // [E,E]
  const std::vector<double> g3 = gram_matrix(w.w3, n);  // [E,E]
  const std::vector<double> g2 = gram_matrix(w.w2, n);  // [E,E]
  std::vector<double> whole(E * E);                     // [E,E]
  for (int64_t i = 0; i < E * E; ++i) whole[i] = g1[i] + g3[i] + g2[i];
  for (int64_t e = 0; e < E; ++e) {
    r.norm_gate.push_back(std::sqrt(g1[e * E + e]));
    r.norm_up.push_back(std::sqrt(g3[e * E + e]));
    r.norm_down.push_back(std::sqrt(g2[e * E + e]));
    r.norm_total.push_back(std::sqrt(whole[e * E + e]));
  }
  r.whole_similarity.resize(E * E);
  for (int64_t i = 0; i < E; ++i)
    for (int64_t j = 0; j < E; ++j) {
      const double nn = r.norm_total[i] * r.norm_total[j];
      r.whole_similarity[i * E + j] = nn > 0 ? whole[i * E + j] / nn : 0.0;
    }
  for (int64_t i = 0; i < E; ++i)
    for (int64_t j = i + 1; j < E; ++j)
      if (r.whole_similarity[i * E + j] > options.collapse_threshold)
        r.collapsed.push_back({i, j, r.whole_similarity[i * E + j]});

  if (tokens_per_expert) {
    r.has_tokens = true;
    r.tokens.assign(tokens_per_expert, tokens_per_expert + E);
    int64_t total = 0;
    for (int64_t e = 0; e < E; ++e) {
      if (r.tokens[e] < 0)
        throw_error("expert health of layer ", w.layer, ": token count of expert ", e, " must be >= 0, got ",
                    r.tokens[e]);
      total += r.tokens[e];
    }
    const double rare_below = options.rare_fraction * static_cast<double>(total) / static_cast<double>(E);
    for (int64_t e = 0; e < E; ++e) {
      if (r.tokens[e] == 0)
        r.dead.push_back(e);
      else if (static_cast<double>(r.tokens[e]) < rare_below)
        r.rare.push_back(e);
    }
  }
  return r;
}

nlohmann::json to_json(const ExpertHealth& h) {
  nlohmann::json sim = nlohmann::json::array();
  for (int64_t i = 0; i < h.E; ++i)
    sim.push_back(
        std::vector<double>(h.whole_similarity.begin() + i * h.E, h.whole_similarity.begin() + (i + 1) * h.E));
  nlohmann::json collapsed = nlohmann::json::array();
  for (const CollapsedPair& p : h.collapsed) collapsed.push_back({{"a", p.a}, {"b", p.b}, {"cosine", p.cosine}});
  auto if_tokens = [&](const std::vector<int64_t>& v) {
    return h.has_tokens ? nlohmann::json(v) : nlohmann::json(nullptr);
  };
  return {{"layer", h.layer},
          {"experts", h.E},
          {"norm_gate", h.norm_gate},
          {"norm_up", h.norm_up},
          {"norm_down", h.norm_down},
          {"norm_total", h.norm_total},
          {"whole_similarity", sim},
          {"collapse_threshold", h.options.collapse_threshold},
          {"collapsed", collapsed},
          {"rare_fraction", h.options.rare_fraction},
          {"tokens", if_tokens(h.tokens)},
          {"dead", if_tokens(h.dead)},
          {"rare", if_tokens(h.rare)}};
}

}  // namespace moelab::analysis
