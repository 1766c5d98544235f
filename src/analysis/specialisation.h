// Expert specialisation (paper 1; docs/analysis.md): is one MoE layer's routing specialised to a per-token label
// (a POS class: syntax; a document genre: topic) above chance? The expert x label contingency of a routing trace is
// scored by normalised mutual information and expert purity, and each score is held against a permutation
// baseline (labels shuffled among the labelled tokens), so "specialised above chance" is a measured z-score and
// p-value rather than an impression. Paper 1 gives no metric of its own; these are ours.
//
// Every routed slot counts: a token routed to k experts adds k (expert, label) pairs, so the scores are over
// slots, weighting tokens by the experts they use.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

namespace moelab::analysis {

// The label value of a token without a label (a POS side file's "none", tokens outside any document).
inline constexpr uint8_t kNoLabel = 255;

struct Contingency {
  int64_t n_experts = 0;        // E
  int64_t n_labels = 0;         // C
  std::vector<int64_t> counts;  // [E,C] slots of labelled tokens routed to expert e whose label is c
  int64_t total = 0;            // sum of counts
};

// Counts counts[e, c] += 1 for every slot (token t, expert e >= 0) of a token whose label c is < n_labels; tokens
// with any other label (kNoLabel) are skipped. experts holds each token's selected experts in slot order, -1 past
// the token's last slot. Throws moelab::Error for an expert id outside [-1, E) or sizes out of range.
Contingency contingency(const int16_t* experts /*[N,K]*/, int64_t N, int64_t K, int64_t E,
                        const uint8_t* labels /*[N]*/, int64_t n_labels);

// I(E;C) / ((H(E) + H(C)) / 2) in nats over the joint distribution counts / total: the arithmetic-mean
// normalisation (scikit-learn's default), 1 when each expert's label is determined and vice versa, 0 when
// routing and labels are independent. 0 when both entropies are 0 (one expert and one label, or nothing counted;
// scikit-learn calls that case 1, but a layer that routes everything to one expert has specialised to nothing).
double normalized_mutual_information(const Contingency& table);

// sum_e max_c counts[e, c] / total: the fraction of slots whose expert's most frequent label is theirs. 0 when
// nothing is counted. Its chance level depends on the label frequencies, hence the permutation baseline.
double purity(const Contingency& table);

// One score against its permutation baseline.
struct PermutationScore {
  double observed = 0;
  double baseline_mean = 0;  // mean over the permutations (NaN with none)
  double baseline_std = 0;   // sample standard deviation over the permutations (NaN with fewer than 2)
  double z = 0;  // (observed - baseline_mean) / baseline_std; NaN when the baseline has no spread beyond rounding
  // (1 + #permutations scoring >= observed) / (1 + permutations); a score within 1e-12 relative of the observed
  // one counts as >=, so a permutation reproducing the observed table up to rounding is not counted below it.
  double p_value = 1;
};

// Scores `observed` against the permutation scores `baseline` [P]. A baseline whose standard deviation is within
// 1e-9 of the scores' scale has no spread: z is NaN (shown as "no spread"), never a ratio of rounding errors.
PermutationScore score_against(double observed, const std::vector<double>& baseline);

struct SpecialisationResult {
  Contingency table;
  int64_t labelled_tokens = 0;  // tokens with a label < n_labels (the ones shuffled)
  int64_t permutations = 0;
  uint64_t seed = 0;
  int64_t block = 1;  // tokens whose labels move together in a permutation
  PermutationScore nmi;
  PermutationScore purity;
};

// The contingency, its NMI and purity, and their permutation baselines: permutation p shuffles the labels by
// Fisher-Yates with Rng(seed, p), so every permutation, and the result, is the same whatever the thread count.
// block = 1 shuffles the labels among the labelled tokens. block > 1 moves whole blocks of `block` consecutive
// tokens' labels (their order inside a block kept; a shorter tail block stays in place): with block = the
// evaluation window, the baseline keeps the clustering of labels (a genre spans a document) and of routing (under
// sequence granularity a window shares its experts), so a window-level coincidence of the two is not mistaken for
// specialisation, as a token-level shuffle would (its baseline is too easy for clustered data). Permutations run
// in parallel (OpenMP, static schedule). Throws moelab::Error for permutations < 0, block < 1 and for what
// contingency() rejects.
SpecialisationResult specialisation(const int16_t* experts /*[N,K]*/, int64_t N, int64_t K, int64_t E,
                                    const uint8_t* labels /*[N]*/, int64_t n_labels, int64_t permutations,
                                    uint64_t seed, int64_t block = 1);

// {"experts": E, "labels": C, "counts": [E][C], "slots": total, "labelled_tokens", "permutations", "seed",
//  "nmi": {"observed", "baseline_mean", "baseline_std", "z", "p_value"}, "purity": {...the same}};
// NaN (no baseline, zero spread) is written as null.
nlohmann::json to_json(const SpecialisationResult& result);

}  // namespace moelab::analysis
