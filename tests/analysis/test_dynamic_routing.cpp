#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/dynamic_routing.h"
#include "core/rng.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST(DynamicRouting, ExpertsPerTokenHandCase) {
  const std::vector<uint8_t> n = {0, 1, 2, 2, 3, 1};
  const auto r = analysis::experts_per_token(n.data(), 6, 3);
  EXPECT_EQ(r.tokens, 6);
  EXPECT_EQ(r.histogram, (std::vector<int64_t>{1, 2, 2, 1}));
  EXPECT_DOUBLE_EQ(r.mean, 1.5);
  const nlohmann::json j = analysis::to_json(r);
  EXPECT_EQ(j["histogram"], nlohmann::json::parse("[1,2,2,1]"));
  EXPECT_DOUBLE_EQ(j["mean"].get<double>(), 1.5);
  EXPECT_CONTAINS(testing::error_of([&] { analysis::experts_per_token(n.data(), 6, 2); }), "token 4 uses 3 experts");
}

// Harder tokens (higher loss) get more experts: 1 + floor(loss / 2) for loss uniform in [0, 8), so each of four
// quantiles holds mostly one count and the group means rise.
TEST(DynamicRouting, MoreExpertsForHarderTokens) {
  const int64_t N = 10000;
  std::vector<float> loss(N);  // [N]
  std::vector<uint8_t> n(N);   // [N]
  Rng rng(5, 0);
  for (int64_t t = 0; t < N; ++t) {
    loss[t] = static_cast<float>(8 * rng.uniform());
    n[t] = static_cast<uint8_t>(1 + static_cast<int>(loss[t] / 2));
  }
  const auto r = analysis::experts_by_loss_quantile(n.data(), loss.data(), N, 4);
  ASSERT_EQ(r.groups.size(), 4u);
  for (int q = 0; q < 4; ++q) {
    EXPECT_EQ(r.groups[q].tokens, 2500);
    std::string prefix = "q";
    prefix += std::to_string(q + 1);
    prefix += " (";
    EXPECT_EQ(r.groups[q].label.rfind(prefix, 0), 0u) << r.groups[q].label;
    EXPECT_NEAR(r.groups[q].mean_experts, q + 1, 0.05);
    EXPECT_LE(r.groups[q].loss_min, r.groups[q].loss_max);
    if (q > 0) {
      EXPECT_GT(r.groups[q].mean_experts, r.groups[q - 1].mean_experts);
      EXPECT_GE(r.groups[q].loss_min, r.groups[q - 1].loss_max);
      EXPECT_GT(r.groups[q].mean_loss, r.groups[q - 1].mean_loss);
    }
  }
  EXPECT_GT(r.spearman, 0.9);
}

// NaN and infinite losses are skipped; the rest split {1, 2} | {3, 4}. Spearman by average ranks: loss ranks
// 1..4 against expert ranks 1.5, 1.5, 3.5, 3.5 give 4 / sqrt(5 * 4).
TEST(DynamicRouting, LossQuantilesSkipNonFiniteLosses) {
  const std::vector<float> loss = {kNaN, 2, std::numeric_limits<float>::infinity(), 4, 1, 3};
  const std::vector<uint8_t> n = {8, 1, 8, 2, 1, 2};
  const auto r = analysis::experts_by_loss_quantile(n.data(), loss.data(), 6, 2);
  ASSERT_EQ(r.groups.size(), 2u);
  EXPECT_EQ(r.groups[0].label, "q1 (1.00-2.00)");
  EXPECT_EQ(r.groups[0].tokens, 2);
  EXPECT_DOUBLE_EQ(r.groups[0].mean_experts, 1.0);
  EXPECT_DOUBLE_EQ(r.groups[0].mean_loss, 1.5);
  EXPECT_EQ(r.groups[1].label, "q2 (3.00-4.00)");
  EXPECT_DOUBLE_EQ(r.groups[1].mean_experts, 2.0);
  EXPECT_DOUBLE_EQ(r.groups[1].mean_loss, 3.5);
  EXPECT_NEAR(r.spearman, 4 / std::sqrt(20.0), 1e-14);

  // More quantiles than tokens: the empty ones say so, the JSON has nulls.
  const auto sparse = analysis::experts_by_loss_quantile(n.data(), loss.data(), 6, 8);
  int64_t total = 0;
  for (const auto& g : sparse.groups) total += g.tokens;
  EXPECT_EQ(total, 4);
  EXPECT_EQ(sparse.groups[0].label, "q1 (none)");
  const nlohmann::json j = analysis::to_json(sparse);
  EXPECT_TRUE(j["groups"][0]["mean_experts"].is_null());
  EXPECT_NEAR(j["spearman"].get<double>(), 4 / std::sqrt(20.0), 1e-14);

  EXPECT_CONTAINS(testing::error_of([&] { analysis::experts_by_loss_quantile(n.data(), loss.data(), 6, 0); }),
                  "at least 1 quantile");
}

TEST(DynamicRouting, ConstantExpertsHaveNoSpearman) {
  const std::vector<float> loss = {1, 2, 3};
  const std::vector<uint8_t> n = {2, 2, 2};
  const auto r = analysis::experts_by_loss_quantile(n.data(), loss.data(), 3, 1);
  EXPECT_TRUE(std::isnan(r.spearman));
  EXPECT_TRUE(analysis::to_json(r)["spearman"].is_null());
  EXPECT_DOUBLE_EQ(r.groups[0].mean_experts, 2.0);
}

TEST(DynamicRouting, ByLabelHandCase) {
  const std::vector<uint8_t> n = {1, 2, 3, 2, 0, 4};
  const std::vector<uint8_t> labels = {0, 1, 0, 255, 1, 7};
  const auto r = analysis::experts_by_label(n.data(), labels.data(), 6, {"NOUN", "VERB", "ADJ"});
  ASSERT_EQ(r.groups.size(), 3u);
  EXPECT_EQ(r.groups[0].label, "NOUN");
  EXPECT_EQ(r.groups[0].tokens, 2);
  EXPECT_DOUBLE_EQ(r.groups[0].mean_experts, 2.0);
  EXPECT_EQ(r.groups[1].tokens, 2);
  EXPECT_DOUBLE_EQ(r.groups[1].mean_experts, 1.0);
  EXPECT_EQ(r.groups[2].tokens, 0);
  EXPECT_TRUE(std::isnan(r.groups[2].mean_experts));
  const nlohmann::json j = analysis::to_json(r);
  EXPECT_EQ(j["groups"][1]["label"], "VERB");
  EXPECT_TRUE(j["groups"][2]["mean_experts"].is_null());
  EXPECT_TRUE(j["groups"][0]["mean_loss"].is_null());
}

// Two MoE layers (blocks 1 and 3), two train records, an eval record, records without routing and a blank line.
TEST(DynamicRouting, ReadsTrainingCourse) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  testing::write_all(
      path,
      R"({"type":"train","step":10,"loss":3.0,"tokens":4096,"routing":[{"layer":1,"mean_experts_per_token":2.4},{"layer":3,"mean_experts_per_token":2.1}]})"
      "\n"
      R"({"type":"eval","step":10,"loss":3.2,"tokens":999,"routing":[{"layer":1,"mean_experts_per_token":2.3},{"layer":3,"mean_experts_per_token":2.0}]})"
      "\n\n"
      R"({"type":"eval","step":15,"loss":3.1})"
      "\n"
      R"({"type":"train","step":20,"loss":2.5,"tokens":8192,"routing":[{"layer":1,"mean_experts_per_token":1.9},{"layer":3,"mean_experts_per_token":1.7}]})"
      "\n");
  const auto c = analysis::read_training_course(path);
  EXPECT_EQ(c.layers, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(c.steps, (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(c.tokens, (std::vector<int64_t>{4096, 8192}));
  ASSERT_EQ(c.mean_experts.size(), 2u);
  EXPECT_EQ(c.mean_experts[0], (std::vector<double>{2.4, 1.9}));
  EXPECT_EQ(c.mean_experts[1], (std::vector<double>{2.1, 1.7}));
  EXPECT_EQ(c.eval_steps, (std::vector<int64_t>{10}));
  EXPECT_EQ(c.eval_mean_experts[0], (std::vector<double>{2.3}));
  EXPECT_EQ(c.eval_mean_experts[1], (std::vector<double>{2.0}));
  const nlohmann::json j = analysis::to_json(c);
  EXPECT_EQ(j["mean_experts"], nlohmann::json::parse("[[2.4,1.9],[2.1,1.7]]"));
  EXPECT_EQ(j["eval_steps"], nlohmann::json::parse("[10]"));
}

TEST(DynamicRouting, ALastLineCutShortByAKillIsDropped) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  testing::write_all(path,
                     R"({"type":"train","step":1,"routing":[{"layer":0,"mean_experts_per_token":2}]})"
                     "\n"
                     R"({"type":"train","step":2,"routing":[{"layer":0,"mean_ex)");  // no newline: cut short
  const auto course = analysis::read_training_course(path);
  EXPECT_EQ(course.steps, std::vector<int64_t>({1}));
}

TEST(DynamicRouting, TrainingCourseErrorsNameFileAndLine) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  testing::write_all(path, R"({"type":"train","step":1,"routing":[{"layer":0,"mean_experts_per_token":2}]})"
                           "\n\n"
                           R"({"type":"train","step":2,"rou)"
                           "\n");
  std::string msg = testing::error_of([&] { analysis::read_training_course(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "line 3");

  testing::write_all(path, R"({"type":"train","step":1,"routing":[{"layer":0,"mean_experts_per_token":2}]})"
                           "\n"
                           R"({"type":"train","step":2,"routing":[{"layer":1,"mean_experts_per_token":2}]})"
                           "\n");
  msg = testing::error_of([&] { analysis::read_training_course(path); });
  EXPECT_CONTAINS(msg, "line 2");
  EXPECT_CONTAINS(msg, "layers differ");

  testing::write_all(path, R"({"type":"train","step":1,"routing":[{"layer":0}]})"
                           "\n");
  EXPECT_CONTAINS(testing::error_of([&] { analysis::read_training_course(path); }), "mean_experts_per_token");

  const std::string missing = dir.file("absent.jsonl");
  msg = testing::error_of([&] { analysis::read_training_course(missing); });
  EXPECT_CONTAINS(msg, missing);
  EXPECT_CONTAINS(msg, "cannot open");
}

}  // namespace
}  // namespace moelab
