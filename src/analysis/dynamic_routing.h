// Dynamic routing (paper 2: "harder tasks need more experts"): how many experts each token of one
// MoE layer gets, overall, by token difficulty (per-token loss quantile) and by label (POS class, genre), and how
// the mean evolved over training as the metrics log recorded it. The inputs are one layer's arrays of a routing
// trace, so the functions do not depend on how the trace was made.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace moelab::analysis {

struct ExpertsPerToken {
  int64_t tokens = 0;
  double mean = 0;                 // mean experts per token (0 with no token)
  std::vector<int64_t> histogram;  // [E+1] tokens that use j experts
};

// Throws moelab::Error for a count above E.
ExpertsPerToken experts_per_token(const uint8_t* n_selected /*[N]*/, int64_t N, int64_t E);

// Tokens grouped one way or another, with the experts they get.
struct ExpertGroup {
  std::string label;  // "q1 (0.00-1.23)" for a loss quantile, the class name for a label
  int64_t tokens = 0;
  double mean_experts = 0;                                      // NaN for an empty group
  double mean_loss = std::numeric_limits<double>::quiet_NaN();  // by loss quantile only
  double loss_min = std::numeric_limits<double>::quiet_NaN();   // by loss quantile only: the group's loss range
  double loss_max = std::numeric_limits<double>::quiet_NaN();
};

struct GroupedExperts {
  std::vector<ExpertGroup> groups;
  // By loss quantile only: Spearman rank correlation between loss and experts per token over the tokens with a
  // finite loss (ties by average rank); NaN when either is constant or fewer than 2 tokens count.
  double spearman = std::numeric_limits<double>::quiet_NaN();
};

// The tokens with a finite loss, sorted by loss (ties by token order) and cut into n_quantiles groups of equal
// count (sizes differ by at most one; group q holds sorted positions [q M / Q, (q+1) M / Q)); group 0 holds the
// lowest losses (the easiest tokens). Throws moelab::Error for n_quantiles < 1.
GroupedExperts experts_by_loss_quantile(const uint8_t* n_selected /*[N]*/, const float* loss /*[N]*/, int64_t N,
                                        int64_t n_quantiles);

// One group per name, in order: the tokens with label c (labels >= names.size(), 255 among them, are skipped).
GroupedExperts experts_by_label(const uint8_t* n_selected /*[N]*/, const uint8_t* labels /*[N]*/, int64_t N,
                                const std::vector<std::string>& names);

// Mean experts per token per MoE layer over training, read from a run's metrics.jsonl: the "train" records'
// "routing" arrays (one {"layer", "mean_experts_per_token", ...} object per MoE layer, src/eval/routing_tally.h)
// and, as a second series, the "eval" records' arrays. Records without "routing" are skipped.
struct TrainingCourse {
  std::vector<int64_t> layers;                         // [L] block index of each MoE layer
  std::vector<int64_t> steps;                          // [S] train records' steps
  std::vector<int64_t> tokens;                         // [S] training tokens seen at those steps (0 when not logged)
  std::vector<std::vector<double>> mean_experts;       // [L][S]
  std::vector<int64_t> eval_steps;                     // [V]
  std::vector<std::vector<double>> eval_mean_experts;  // [L][V]
};

// Throws moelab::Error naming the file (and the line) for a missing file, a line that is not JSON, or a routing
// array whose layers differ from the first one read.
TrainingCourse read_training_course(const std::string& metrics_jsonl_path);

// {"tokens", "mean", "histogram": [E+1]}
nlohmann::json to_json(const ExpertsPerToken& result);
// {"groups": [{"label", "tokens", "mean_experts", "mean_loss", "loss_min", "loss_max"}], "spearman"}; NaN as null.
nlohmann::json to_json(const GroupedExperts& result);
// {"layers", "steps", "tokens", "mean_experts": [L][S], "eval_steps", "eval_mean_experts": [L][V]}
nlohmann::json to_json(const TrainingCourse& result);

}  // namespace moelab::analysis
