#include "analysis/stage_progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/format_duration.h"

namespace moelab::analysis {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

StageProgress::StageProgress() : tty_(isatty(STDERR_FILENO)), start_(std::chrono::steady_clock::now()) {}

void StageProgress::stage(const std::string& name, int64_t total) {
  end_stage();
  name_ = name, total_ = std::max<int64_t>(1, total);
  stage_start_ = std::chrono::steady_clock::now();
  if (tty_)
    update(0);
  else
    std::fprintf(stderr, "%s ...\n", name_.c_str());
}

void StageProgress::update(int64_t done) {
  if (!tty_ || name_.empty()) return;
  const double fraction = std::clamp(static_cast<double>(done) / total_, 0.0, 1.0);
  const int width = 24, filled = static_cast<int>(width * fraction);
  std::string bar(filled, '#');
  bar.resize(width, '.');
  const double elapsed = seconds_since(stage_start_);
  const std::string eta = done > 0 ? format_duration(elapsed / fraction - elapsed) : "?";
  std::fprintf(stderr, "\r[%s] %3.0f%%  %-40s ETA %s   ", bar.c_str(), 100 * fraction, name_.c_str(), eta.c_str());
  std::fflush(stderr);
  bar_drawn_ = true;
}

void StageProgress::end_stage() {
  if (name_.empty()) return;
  if (bar_drawn_) std::fputs("\r\033[K", stderr);  // clear the bar
  std::fprintf(stderr, "%-60s %s\n", (name_ + ": done").c_str(), format_duration(seconds_since(stage_start_)).c_str());
  bar_drawn_ = false;
  name_.clear();
}

void StageProgress::finish() {
  end_stage();
  std::fprintf(stderr, "total %s\n", format_duration(seconds_since(start_)).c_str());
}

}  // namespace moelab::analysis
