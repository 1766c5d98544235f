#include "train/progress.h"

#include <unistd.h>

#include <cstdio>

#include "core/format_duration.h"

namespace moelab {

Progress::Progress(int64_t first_step, int64_t total_steps)
    : tty_(isatty(STDERR_FILENO)),
      first_step_(first_step),
      total_steps_(total_steps),
      start_(std::chrono::steady_clock::now()) {}

void Progress::update(int64_t step, double loss, double lr, double tokens_per_s, bool log_line) {
  const int64_t done = step + 1;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double per_step = elapsed / std::max<int64_t>(1, done - first_step_);
  const std::string eta = format_duration(per_step * (total_steps_ - done));
  // Single steps vary (evaluations, the machine's other work); show a smoothed rate.
  smoothed_tokens_per_s_ =
      smoothed_tokens_per_s_ == 0 ? tokens_per_s : 0.9 * smoothed_tokens_per_s_ + 0.1 * tokens_per_s;
  if (tty_) {
    const int width = 24;
    const int filled = static_cast<int>(width * done / std::max<int64_t>(1, total_steps_));
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r[%s] step %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s   ", bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_steps_), loss, lr, smoothed_tokens_per_s_,
                 eta.c_str());
    std::fflush(stderr);
    bar_drawn_ = true;
  } else if (log_line || done == total_steps_) {
    std::fprintf(stderr, "step %lld/%lld loss %.4f lr %.2e tok/s %.0f eta %s\n", static_cast<long long>(done),
                 static_cast<long long>(total_steps_), loss, lr, smoothed_tokens_per_s_, eta.c_str());
  }
}

void Progress::message(const std::string& text) {
  if (bar_drawn_) std::fputc('\n', stderr);
  bar_drawn_ = false;
  std::fprintf(stderr, "%s\n", text.c_str());
}

void Progress::finish() {
  if (bar_drawn_) std::fputc('\n', stderr);
  bar_drawn_ = false;
}

}  // namespace moelab
