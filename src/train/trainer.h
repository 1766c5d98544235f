// The training loop: batches -> forward/backward (with gradient accumulation) -> clipping -> AdamW -> schedule,
// with evaluation, metrics, checkpoints, exact resume and a clean stop on Ctrl-C or SIGTERM (stop_requests.h).
#pragma once

#include <cstdint>
#include <string>

#include "model/model.h"
#include "moelab/config.h"
#include "train/checkpoint.h"

namespace moelab {

struct TrainOutcome {
  int stopped_by_signal = 0;  // SIGINT or SIGTERM when a stop request ended the run after saving a checkpoint
  int64_t steps_done = 0;
  std::string checkpoint;     // the last checkpoint written
  double final_val_loss = 0;  // 0 when interrupted
};

// cfg: validated; vocab_size may be 0 (taken from the data). resume: a run or checkpoint folder, or empty. The run
// writes into cfg.train.out_dir, which a new run needs empty unless `overwrite` clears it (run_folder.h).
TrainOutcome train(Config cfg, const std::string& resume, bool overwrite = false);

// One optimizer step of a training step, as train() runs it (and `moelab bench` times it): the global gradient
// norm and the factor clipping scales the gradients by, then AdamW with decoupled weight decay per tensor group,
// which applies that factor as it reads each gradient. optimizer_step leaves every gradient at 0 (read them
// before it) and, in bf16, the weights' rounded copy current.
struct GradientNorm {
  double norm;        // before clipping
  float clip_factor;  // 1 when not clipping
};
GradientNorm measure_gradients(const Model& model, double max_norm);
void optimizer_step(Model& model, OptimizerState& opt, const TrainConfig& tc, double lr, int64_t t, float clip_factor);

}  // namespace moelab
