#include "analysis/loss_history.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace moelab::analysis {

namespace {

using nlohmann::json;

// The record's loss under `key`, when it is a number.
std::optional<double> loss_of(const json& record, const char* key) {
  const auto it = record.find(key);
  if (it == record.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

}  // namespace

std::optional<LossHistory> read_loss_history(const std::string& run_folder) {
  LossHistory h;
  h.path = (std::filesystem::path(run_folder) / "metrics.jsonl").string();
  std::error_code ec;
  if (!std::filesystem::exists(h.path, ec)) return std::nullopt;
  std::ifstream in(h.path);
  if (!in) throw_error("metrics log ", h.path, ": cannot open");
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "metrics log " + h.path + ", line " + std::to_string(line_no);
    const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    // A last line without its newline was cut short by a hard kill; the records before it stand.
    if (record.is_discarded() && in.eof()) break;
    if (record.is_discarded() || !record.is_object()) throw_error(where, ": expected one JSON object");
    const auto type = record.find("type"), split = record.find("split");
    const bool train = type != record.end() && *type == "train";
    const bool val = type != record.end() && *type == "eval" && (split == record.end() || *split == "val");
    if (!train && !val) continue;
    std::optional<double> loss = loss_of(record, train ? "ce_loss" : "loss");
    if (train && !loss) loss = loss_of(record, "loss");
    if (!loss) continue;
    if (!record.contains("step") || !record["step"].is_number_integer())
      throw_error(where, ": expected an integer \"step\"");
    const int64_t step = record["step"].get<int64_t>();
    (train ? h.train_steps : h.val_steps).push_back(step);
    (train ? h.train_loss : h.val_loss).push_back(*loss);
  }
  return h;
}

nlohmann::json to_json(const LossHistory& history) {
  return {{"path", history.path},
          {"train_steps", history.train_steps},
          {"train_loss", history.train_loss},
          {"val_steps", history.val_steps},
          {"val_loss", history.val_loss}};
}

}  // namespace moelab::analysis
