// The training loop: batches -> forward/backward (with gradient accumulation) -> clipping -> AdamW -> schedule,
// with evaluation, metrics, checkpoints, exact resume and a clean stop on Ctrl-C.
#pragma once

#include <cstdint>
#include <string>

#include "moelab/config.h"

namespace moelab {

struct TrainOutcome {
  bool interrupted = false;   // stopped by SIGINT/SIGTERM after saving a checkpoint
  int64_t steps_done = 0;
  std::string checkpoint;     // the last checkpoint written
  double final_val_loss = 0;  // 0 when interrupted
};

// cfg: validated; vocab_size may be 0 (taken from the data). resume: a run or checkpoint folder, or empty.
TrainOutcome train(Config cfg, const std::string& resume);

}  // namespace moelab
