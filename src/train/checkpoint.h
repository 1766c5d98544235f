// Checkpoints: everything needed to evaluate a model or resume its training exactly.
//
// <run_dir>/checkpoints/step-00000600/
//   model.safetensors      every parameter, F32, named by the ParamTable (Hugging Face Mixtral keys)
//   optimizer.safetensors  AdamW moments "exp_avg.<name>" and "exp_avg_sq.<name>", F32
//   config.json            the full resolved run config (vocab size filled in, every path absolute)
//   state.json             training progress: steps done, tokens seen
// <run_dir>/checkpoints/latest   the name of the newest complete checkpoint folder
//
// A checkpoint is written into "<name>.tmp/" and renamed into place only when complete, then `latest` is
// replaced atomically: an interruption at any moment leaves the previous checkpoint intact and pointed to.
// Which checkpoints a run keeps is its RunFolder's business (run_folder.h). Layout and naming: docs/checkpoints.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/token_file.h"
#include "model/model.h"
#include "moelab/config.h"

namespace moelab {

struct TrainState {
  int64_t step = 0;         // optimizer steps completed
  int64_t tokens_seen = 0;  // training tokens consumed
};

struct OptimizerState {
  std::vector<float> exp_avg;     // [n_params] AdamW first moment
  std::vector<float> exp_avg_sq;  // [n_params] AdamW second moment
};

// Writes <run_dir>/checkpoints/step-N (N = state.step) and points `latest` at it. Returns the folder written.
std::string save_checkpoint(const std::string& run_dir, const Model& model, const OptimizerState& opt,
                            const TrainState& state);
// <run_dir>/checkpoints/step-N, and the steps of the complete checkpoint folders there, ascending.
std::string checkpoint_folder(const std::string& run_dir, int64_t step);
std::vector<int64_t> checkpoint_steps(const std::string& run_dir);

// A user-given path: a checkpoint folder itself, or a run folder / its checkpoints folder (then the one `latest`
// names). Throws naming the path when it is neither.
std::string resolve_checkpoint(const std::string& path);

Config load_checkpoint_config(const std::string& checkpoint_dir);
// The run folder a checkpoint belongs to (the parent of its checkpoints/ folder), where metrics.jsonl lives and
// analyses go; for a checkpoint folder outside a run, the folder holding it.
std::string run_folder_of(const std::string& checkpoint_dir);
// The data folder of a checkpoint's config (cfg.data.dir), opened and checked against the model's vocabulary: what
// evaluating or analysing a checkpoint reads. Throws naming both when the vocabularies differ.
data::TokenData open_checkpoint_data(const Config& cfg, const std::string& checkpoint_dir);

// A checkpoint ready to evaluate or analyse: its folder (resolved from a run folder), its config (the data folder
// replaced by data_dir when that is not empty), the model with its weights, and the data folder, checked against
// the model's vocabulary. The model is built for inference (no gradients; weights packed where they fit). A config
// whose inference does not fit this machine's memory is refused
// (memory_estimate.h) before the weights are read; a data folder of the config that does not exist is refused
// naming it and --data.
struct LoadedCheckpoint {
  std::string path;
  Config config;
  std::unique_ptr<Model> model;
  data::TokenData data;
};
LoadedCheckpoint load_checkpoint(const std::string& path, const std::string& data_dir);
// Reads every parameter into the model, checking names, dtypes and shapes; a tensor the model does not have is
// an error too (a checkpoint of another architecture), and so is a weight holding NaN or infinity (check_finite.h).
void load_model_weights(const std::string& checkpoint_dir, Model& model);
void load_training_state(const std::string& checkpoint_dir, const Model& model, OptimizerState& opt, TrainState& state);
// state.json alone, validated.
TrainState read_training_state(const std::string& checkpoint_dir);

}  // namespace moelab
