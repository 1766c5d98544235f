// The run folder a training process writes (train.out_dir: config.json, metrics.jsonl, checkpoints/), owned for the
// run's lifetime so that no run loses another's work:
//  - an exclusive advisory lock (flock on <dir>/.lock, which records the holder's pid) refuses a second process in
//    the same folder, naming the holder; the kernel releases it when the process ends, however it ends;
//  - a new run refuses a folder that already holds files, unless asked to clear it first (--overwrite);
//  - a resumed run writes into the folder of the checkpoint it resumes (or into an empty folder of the user's);
//  - pruning removes only checkpoints of this run's own history: those it wrote, and those at or before the step it
//    resumed from. Checkpoints past that step (a later future of the run, abandoned by resuming an earlier
//    checkpoint) are never removed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/checkpoint.h"

namespace moelab {

struct RunFolderStart {
  std::string resumed_checkpoint;  // the checkpoint folder a resumed run continues from; empty for a new run
  int64_t resumed_step = 0;        // its step
  bool overwrite = false;          // clear a folder that holds files instead of refusing it
};

class RunFolder {
 public:
  // Creates and locks `dir`, then checks (or clears) it as `start` says. Throws moelab::Error naming the folder and
  // what to do instead.
  RunFolder(std::string dir, const RunFolderStart& start);
  ~RunFolder();  // releases the lock
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::string& dir() const { return dir_; }

  // Writes a checkpoint (save_checkpoint), then keeps the newest `keep` of this run's own checkpoints. Returns the
  // folder written.
  std::string save_checkpoint(const Model& model, const OptimizerState& opt, const TrainState& state, int keep = 2);

 private:
  std::string dir_;
  int lock_fd_ = -1;
  int64_t resumed_step_ = 0;
  std::vector<int64_t> written_;  // steps of the checkpoints this process wrote
};

}  // namespace moelab
