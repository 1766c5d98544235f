// Training progress for a person: on a terminal a single redrawn bar (step, loss, lr, tokens/s, ETA); when
// stderr is not a terminal (CI, a log file) plain lines every log interval instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace moelab {

class Progress {
 public:
  Progress(int64_t first_step, int64_t total_steps);
  // Called after every optimizer step; draws or prints as appropriate.
  void update(int64_t step, double loss, double lr, double tokens_per_s, bool log_line);
  // A message that must not be overdrawn by the bar (evaluation results, checkpoint notices).
  void message(const std::string& text);
  void finish();

 private:
  bool tty_;
  int64_t first_step_, total_steps_;
  std::chrono::steady_clock::time_point start_;
  bool bar_drawn_ = false;
  double smoothed_tokens_per_s_ = 0;
};

}  // namespace moelab
