// A run's loss curves, read from its metrics.jsonl (src/train/metrics_log.h): the training loss of every logged
// step and the validation loss of every evaluation, what the report draws as "Training". The training loss is the
// next-token cross-entropy ("ce_loss"; "loss", which adds the auxiliary losses, in logs that have no "ce_loss"), so
// that it compares with the validation loss, which is cross-entropy only.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace moelab::analysis {

struct LossHistory {
  std::string path;                  // the metrics log read
  std::vector<int64_t> train_steps;  // [S] steps of the "train" records with a loss
  std::vector<double> train_loss;    // [S]
  std::vector<int64_t> val_steps;    // [V] steps of the "eval" records of the validation split
  std::vector<double> val_loss;      // [V]
};

// The loss curves of <run_folder>/metrics.jsonl; nullopt when the run folder has no metrics log (a checkpoint
// copied out of its run). Records of other types, or without a numeric loss, are skipped; a last line cut short (a
// training run killed mid-write) ends the log. Throws moelab::Error naming the file and line for a line that is
// not a JSON object or a loss record without an integer "step".
std::optional<LossHistory> read_loss_history(const std::string& run_folder);

// {"path", "train_steps", "train_loss", "val_steps", "val_loss"}
nlohmann::json to_json(const LossHistory& history);

}  // namespace moelab::analysis
