// Dynamic expert analysis (paper 3, "A Closer Look into Mixture-of-Experts in Large Language Models"): one MoE
// layer's input on the true top-k trajectory (the normalised residual stream the router saw, recorded by the trace)
// is fed to EVERY expert of the layer, not just the chosen ones, and the experts' outputs are compared:
//  - how alike the experts behave on the same token: output cosine and angular similarity, averaged over tokens;
//  - whether the router prefers the experts that would write the most: router-score rank against output-norm rank
//    as an E x E co-occurrence count, the top-score/top-norm agreement and a per-token Spearman correlation
//    (paper 3 reports for Mixtral that the top-scored expert is the largest-norm one about 4x more often than any
//    other rank);
//  - which gate neurons fire: the mean |silu(w1 x)| per expert and neuron, and per token and expert for a few
//    tokens.
// Expert outputs go through the GEMM primitive a chunk of tokens at a time, so memory stays bounded by the chunk
// whatever S. Each expert's GEMMs and sums run on one thread (experts are spread over the threads) and every sum
// runs in token order, so the results are bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "analysis/expert_weights.h"

namespace moelab::analysis {

struct DynamicLayerAnalysis {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  int64_t layer = 0;     // index of the block in the model
  int64_t n_tokens = 0;  // S
  int64_t E = 0;         // routed experts
  int64_t h = 0;         // neurons per expert
  // Mean over tokens of cos(y_i, y_j) with y_e the expert's output for the token; a zero output counts as
  // cosine 0 with everything (itself included), as torch.nn.functional.cosine_similarity does.
  std::vector<double> output_cosine;     // [E,E]
  std::vector<double> output_angular;    // [E,E] mean over tokens of 1 - arccos(clamp(cos, -1, 1)) / pi
  std::vector<double> output_norm_mean;  // [E] mean over tokens of ||y_e||_2
  // Router score rank against output norm rank; empty / NaN without router scores (a hash router).
  // Ranks: 0 = highest score / largest norm; ties go to the lower expert index.
  std::vector<int64_t> rank_cooccurrence;  // [E,E] [score_rank][norm_rank] tokens x experts with those two ranks
  double top_score_is_top_norm = kNaN;     // fraction of tokens whose rank-0-score expert is their rank-0-norm one
  // Mean over tokens of the Spearman correlation between the E scores and the E norms (tied values get their
  // average rank); tokens whose scores or norms are all equal have none and are left out (spearman_tokens).
  double mean_spearman = kNaN;
  int64_t spearman_tokens = 0;
  std::vector<double> gate_activation_mean;    // [E,h] mean over tokens of |silu(w1 x)| per expert and neuron
  int64_t map_tokens = 0;                      // min(map_tokens asked, S)
  std::vector<double> gate_activation_tokens;  // [map_tokens,E] mean over neurons of |silu(w1 x)| per token, expert
};

// Runs every expert of w on the S tokens of x (the layer's normalised input) and measures the above. scores are the
// router's probabilities for the same tokens (any monotone score works: only ranks are used), null for a hash
// router, which leaves the rank fields empty / NaN. Throws moelab::Error for S < 1, map_tokens < 0, a non-finite
// score, or a non-finite expert output (NaN or Inf in x or the weights: a diverged checkpoint).
DynamicLayerAnalysis analyze_dynamic(const ExpertWeights& w, const float* x /*[S,d]*/,
                                     const float* scores /*[S,E] or null*/, int64_t S, int64_t map_tokens = 32);

// {"layer", "tokens": S, "experts": E, "hidden": h,
//  "output_cosine": [E][E], "output_angular": [E][E], "output_norm_mean": [E],
//  "rank_cooccurrence": [E][E] (rows: score rank, columns: norm rank) or null,
//  "top_score_is_top_norm": number or null, "mean_spearman": number or null, "spearman_tokens": integer,
//  "gate_activation_mean": [E][h], "gate_activation_tokens": [map_tokens][E]}; NaN is written as null.
nlohmann::json to_json(const DynamicLayerAnalysis& result);

}  // namespace moelab::analysis
