// Progress of a long analysis for a person: a sequence of named stages, each with a known amount of work. On a
// terminal one redrawn bar (stage, percent, ETA of the stage); otherwise one line when a stage starts and one when
// it ends with its time, so a log shows where the minutes went.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace moelab::analysis {

class StageProgress {
 public:
  StageProgress();
  // Starts a stage of `total` units of work (ends the previous one).
  void stage(const std::string& name, int64_t total);
  // `done` of the current stage's units are complete.
  void update(int64_t done);
  // Ends the current stage; prints the total time.
  void finish();

 private:
  void end_stage();

  bool tty_;
  std::string name_;
  int64_t total_ = 0;
  bool bar_drawn_ = false;
  std::chrono::steady_clock::time_point start_, stage_start_;
};

}  // namespace moelab::analysis
