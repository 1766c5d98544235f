// The loss curves of a run, read from its metrics.jsonl: the records the trainer writes (train/metrics_log.h,
// train/trainer.cpp), a log cut short by a kill, a damaged line, and a run folder without a log.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "analysis/loss_history.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab::analysis {
namespace {

using nlohmann::json;
using testing::error_of;
using testing::TempDir;

// A train record as the trainer writes it: the total loss (with the auxiliary losses) and the cross-entropy apart.
json train_record(int64_t step, double ce, double aux) {
  return {{"type", "train"},          {"step", step},    {"loss", ce + aux}, {"ce_loss", ce}, {"lr", 1e-3},
          {"load_balance_loss", aux}, {"grad_norm", 1.5}};
}

// An evaluation record as the trainer writes it (eval/perplexity.h's to_json with the type and step).
json eval_record(int64_t step, double loss, const std::string& split) {
  return {{"type", "eval"}, {"step", step}, {"loss", loss}, {"perplexity", std::exp(loss)},
          {"split", split}, {"tokens", 512}};
}

void write_log(const TempDir& dir, const std::string& text) { testing::write_all(dir.file("metrics.jsonl"), text); }

TEST(LossHistory, ReadsTrainingCrossEntropyAndValidationLossInLogOrder) {
  TempDir dir;
  write_log(dir, train_record(1, 8.5, 0.25).dump() + "\n" + train_record(2, 8.0, 0.5).dump() + "\n" +
                     eval_record(2, 7.75, "val").dump() + "\n" + train_record(3, 7.5, 0.125).dump() + "\n" +
                     eval_record(3, 7.25, "val").dump() + "\n");
  const auto h = read_loss_history(dir.path().string());
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->path, dir.file("metrics.jsonl"));
  EXPECT_EQ(h->train_steps, (std::vector<int64_t>{1, 2, 3}));
  // The cross-entropy, not the total: it compares with the validation loss.
  EXPECT_EQ(h->train_loss, (std::vector<double>{8.5, 8.0, 7.5}));
  EXPECT_EQ(h->val_steps, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h->val_loss, (std::vector<double>{7.75, 7.25}));
  const json j = to_json(*h);
  EXPECT_EQ(j["train_steps"], json({1, 2, 3}));
  EXPECT_EQ(j["val_loss"], json({7.75, 7.25}));
  EXPECT_EQ(j["path"], h->path);
}

TEST(LossHistory, TakesTheTotalLossWhereARecordHasNoCrossEntropy) {
  TempDir dir;
  json old = train_record(4, 6.0, 0.5);
  old.erase("ce_loss");
  write_log(dir, old.dump() + "\n" + train_record(5, 5.0, 0.5).dump() + "\n");
  const auto h = read_loss_history(dir.path().string());
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->train_steps, (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(h->train_loss, (std::vector<double>{6.5, 5.0}));
}

TEST(LossHistory, KeepsOnlyValidationEvaluationsAndSkipsOtherRecords) {
  TempDir dir;
  json no_split = eval_record(6, 6.5, "val");
  no_split.erase("split");
  json no_loss = eval_record(7, 6.0, "val");
  no_loss["loss"] = nullptr;  // how a non-finite number is written
  write_log(dir, eval_record(2, 7.0, "test").dump() + "\n" + eval_record(2, 7.5, "train").dump() + "\n" +
                     eval_record(3, 6.75, "val").dump() + "\n" + no_split.dump() + "\n" + no_loss.dump() + "\n" +
                     json{{"type", "note"}, {"step", "not a step"}}.dump() + "\n\n");
  const auto h = read_loss_history(dir.path().string());
  ASSERT_TRUE(h.has_value());
  EXPECT_TRUE(h->train_steps.empty());
  EXPECT_EQ(h->val_steps, (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(h->val_loss, (std::vector<double>{6.75, 6.5}));
}

TEST(LossHistory, ALastLineCutShortEndsTheLog) {
  TempDir dir;
  const std::string cut = train_record(3, 7.0, 0.1).dump();
  write_log(dir, train_record(1, 8.0, 0.1).dump() + "\n" + eval_record(1, 7.5, "val").dump() + "\n" +
                     cut.substr(0, cut.size() / 2));
  const auto h = read_loss_history(dir.path().string());
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->train_steps, (std::vector<int64_t>{1}));
  EXPECT_EQ(h->val_steps, (std::vector<int64_t>{1}));
}

TEST(LossHistory, ABadLineThrowsNamingTheFileAndLine) {
  TempDir dir;
  const std::string cut = train_record(2, 7.0, 0.1).dump();
  // The same cut line, followed by a complete one: not a kill mid-write but a damaged log.
  write_log(dir, train_record(1, 8.0, 0.1).dump() + "\n" + cut.substr(0, cut.size() / 2) + "\n" +
                     train_record(3, 6.0, 0.1).dump() + "\n");
  EXPECT_CONTAINS(error_of([&] { read_loss_history(dir.path().string()); }),
                  "metrics log " + dir.file("metrics.jsonl") + ", line 2: expected one JSON object");
  write_log(dir, train_record(1, 8.0, 0.1).dump() + "\n[1, 2]\n");
  EXPECT_CONTAINS(error_of([&] { read_loss_history(dir.path().string()); }), ", line 2: expected one JSON object");
}

TEST(LossHistory, ALossRecordWithoutAnIntegerStepThrows) {
  TempDir dir;
  for (const json& step : {json(2.5), json("3"), json()}) {
    SCOPED_TRACE(step.dump());
    json bad = eval_record(0, 7.0, "val");
    if (step.is_null()) {
      bad.erase("step");
    } else {
      bad["step"] = step;
    }
    write_log(dir, train_record(1, 8.0, 0.1).dump() + "\n" + bad.dump() + "\n");
    EXPECT_CONTAINS(error_of([&] { read_loss_history(dir.path().string()); }),
                    "metrics log " + dir.file("metrics.jsonl") + ", line 2: expected an integer \"step\"");
  }
}

TEST(LossHistory, ARunFolderWithoutAMetricsLogHasNone) {
  TempDir dir;
  EXPECT_FALSE(read_loss_history(dir.path().string()).has_value());
  EXPECT_FALSE(read_loss_history(dir.file("no-such-run")).has_value());
  write_log(dir, "");
  const auto empty = read_loss_history(dir.path().string());
  ASSERT_TRUE(empty.has_value());  // a log with no record yet: curves with no points, which the report says
  EXPECT_TRUE(empty->train_steps.empty());
  EXPECT_TRUE(empty->val_steps.empty());
}

}  // namespace
}  // namespace moelab::analysis
