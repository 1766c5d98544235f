// Every analysis of docs/analysis.md on one checkpoint, in one pass: what `moelab analyze report` computes before it
// draws anything. A routing trace of the evaluation tokens feeds paper 1's specialisation and paper 2's dynamic
// routing statistics; the experts' weights feed paper 3's static analysis and the expert health; the first
// sample_tokens of the trace (each MoE layer's input and router probabilities) feed paper 3's dynamic analysis;
// a prompt is traced for the chosen-experts and gate-activation maps; the run's metrics log gives the course of
// experts per token and the per-expert gradient norms over training.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "analysis/dynamic_experts.h"
#include "analysis/dynamic_routing.h"
#include "analysis/expert_health.h"
#include "analysis/specialisation.h"
#include "analysis/stage_progress.h"
#include "analysis/static_experts.h"
#include "data/label_channel.h"
#include "eval/class_loss.h"
#include "model/model.h"

namespace moelab::analysis {

struct AnalysisOptions {
  std::string split = "val";     // the data split traced, unless text_file is set
  std::string text_file;         // trace this text file instead (it has no labels)
  std::string data_dir;          // the data folder; empty: the checkpoint's
  int64_t max_tokens = 0;        // trace at most this many tokens; 0: all
  int64_t seq_len = 0;           // the window traced; 0: the config's train.seq_len
  int64_t sample_tokens = 2048;  // tokens whose layer inputs every expert is run on (paper 3, dynamic)
  int64_t permutations = 100;    // of the specialisation baseline
  bool shuffle_windows = true;   // the baseline moves whole windows' labels (else single tokens' labels)
  uint64_t seed = 0;             // of the permutations
  int64_t loss_quantiles = 10;   // groups of experts per token by token loss
  std::string prompt = "The committee said that the new school would open in the fall, and the children were happy.";
  StaticOptions static_options;
  HealthOptions health_options;
};

// One label channel's results in one MoE layer: paper 2's experts per token by class and paper 1's specialisation.
struct LabelAnalysis {
  GroupedExperts experts_per_class;
  SpecialisationResult specialisation;
};

// One MoE layer's results.
struct LayerAnalysis {
  int64_t layer = 0;  // block index
  ExpertsPerToken experts_per_token;
  std::vector<int64_t> expert_slots;    // [E] slots routed to each expert over the trace
  GroupedExperts by_loss;               // experts per token by loss quantile
  std::vector<LabelAnalysis> by_label;  // [C] one per channel of CheckpointAnalysis::labels
  StaticLayerAnalysis statics;
  DynamicLayerAnalysis dynamics;
  ExpertHealth health;
  // The prompt: for each of its tokens the experts chosen and their weights, and the gate activations.
  std::vector<std::vector<std::pair<int64_t, double>>> prompt_choices;  // [P] (expert, weight) slots
  std::vector<double> prompt_gate_activation;                           // [P,E] mean |silu(w1 x)| over neurons
};

// Per-expert gradient norms over training, from the evaluation records of the metrics log.
struct GradNormCourse {
  std::vector<int64_t> steps;                           // [V]
  std::vector<std::vector<std::vector<double>>> norms;  // [L][V][E]
};

struct CheckpointAnalysis {
  std::string checkpoint;     // the checkpoint folder, or the Hugging Face model folder
  std::string hf_model_type;  // the Hugging Face architecture ("mixtral"); empty for a moelab checkpoint
  int64_t step = 0;           // optimizer steps of the checkpoint (0 when state.json has none)
  nlohmann::json config;      // the checkpoint's config
  std::string source;         // what was traced
  int64_t tokens = 0;         // tokens traced
  double mean_loss = 0;       // over the traced tokens with a next token
  int64_t n_experts = 0, top_k = 0;
  std::vector<data::LabelChannel> labels;  // [C] the traced source's label channels; empty for a text file
  std::vector<ChannelLoss> loss_by_label;  // [C] the traced targets' loss by class of each channel
  std::vector<LayerAnalysis> layers;
  std::vector<std::string> prompt_tokens;  // [P] the prompt's pieces
  // Parameters a token activates, with the measured experts per token of each layer, against top-k's.
  double active_params = 0;
  int64_t active_params_topk = 0;
  std::optional<TrainingCourse> course;  // absent without a metrics log beside the checkpoint
  std::optional<GradNormCourse> grad_norms;
  std::vector<std::pair<std::string, double>> timings;  // seconds per stage
};

CheckpointAnalysis analyze_checkpoint(const std::string& checkpoint, const AnalysisOptions& options,
                                      StageProgress& progress);

// analysis.json: every number above.
nlohmann::json to_json(const CheckpointAnalysis& a);

}  // namespace moelab::analysis
