// The metrics log: one JSON object per line (JSONL) in <run_dir>/metrics.jsonl, every record carrying its "step"
// and "type" ("train" or "eval"), so that pandas.read_json(path, lines=True) loads a run in one call.
#pragma once

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace moelab {

class MetricsLog {
 public:
  // Opens (creating) the log. When resuming at resume_step > 0, records with a step beyond it (written by the
  // interrupted run after its last checkpoint) are dropped first, so the log reads as one uninterrupted run.
  MetricsLog(const std::string& path, int64_t resume_step);
  // Appends one record and flushes it; throws moelab::Error naming the file and the system's reason when the write
  // fails (a full disk), so that a run never goes on with a log that silently stopped.
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace moelab
