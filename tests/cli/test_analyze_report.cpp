// `moelab analyze report` end to end, as a user runs it: a small model trained on Brown for a few steps, then the
// report on its run folder. Every promised file is there; analysis.json agrees with itself and with the run; the
// PNG figures are real images, one per chart; and report.html draws every chart in headless Chromium without a
// console message. Needs data/brown (scripts/test.sh prepares it).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/version.h"
#include "support/chromium.h"
#include "support/errors.h"
#include "support/run_moelab.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kDataDir = std::string(MOELAB_TEST_DIR) + "/../data/brown";

// One run for the suite: 6 steps of a 2-layer, 4-expert model in run_dir, evaluating (and logging expert gradient
// norms) at steps 3 and 6.
class AnalyzeReport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    run_dir_ = new testing::TempDir;
    train_small_run(*run_dir_);
  }
  static void TearDownTestSuite() {
    delete run_dir_;
    run_dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(fs::exists(run() + "/checkpoints/latest")) << "the suite's training run failed (see above)";
  }
  static std::string run() { return run_dir_->file("run"); }

  static void train_small_run(const testing::TempDir& dir);
  static testing::TempDir* run_dir_;
  testing::TempDir dir;
};

testing::TempDir* AnalyzeReport::run_dir_ = nullptr;

void AnalyzeReport::train_small_run(const testing::TempDir& dir) {
  ASSERT_TRUE(fs::exists(kDataDir + "/meta.json"))
      << kDataDir << " is missing: prepare it with `moelab data brown --out data/brown` (scripts/test.sh does)";
  const std::string sets =
      " --set 'data.dir=\"" + kDataDir + "\"' --set 'train.out_dir=\"" + dir.file("run") +
      "\"' --set model.d_model=32 --set model.n_layers=2 --set model.n_heads=2 --set moe.n_experts=4"
      " --set moe.expert_hidden=32 --set train.seq_len=64 --set model.max_seq_len=64 --set train.batch_size=4"
      " --set train.steps=6 --set train.warmup_steps=2 --set train.eval_every=3 --set train.eval_tokens=512 --set "
      "train.log_every=1";
  const auto r = testing::run_moelab("train " + std::string(MOELAB_TEST_DIR) + "/../configs/brown-tiny.toml" + sets);
  ASSERT_EQ(r.status, 0) << r.output;
}

// Width and height from a PNG's IHDR chunk; {0, 0} when the file is not a PNG.
std::pair<uint32_t, uint32_t> png_size(const std::string& path) {
  const std::string bytes = testing::read_all(path);
  if (bytes.size() < 24 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 || bytes.compare(12, 4, "IHDR") != 0)
    return {0, 0};
  auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
  };
  return {be32(16), be32(20)};
}

TEST_F(AnalyzeReport, WritesEveryFileAndTheReportDrawsInChromium) {
  const std::string out = dir.file("report");
  const auto r = testing::run_moelab("analyze report " + run() +
                                     " --max-tokens 3000 --sample-tokens 200 --permutations 20 --out " + out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_CONTAINS(r.output, "report: " + out + "/report.html");

  std::ifstream in(out + "/analysis.json");
  const json a = json::parse(in);
  EXPECT_EQ(a["tokens"], 3000);
  EXPECT_EQ(a["step"], 6);
  EXPECT_EQ(a["experts"], 4);
  ASSERT_EQ(a["layers"].size(), 2u);
  for (const auto& layer : a["layers"]) {
    // Top-2 over 4 experts: 6000 slots, every token with exactly 2 experts.
    const auto slots = layer["expert_slots"].get<std::vector<int64_t>>();
    EXPECT_EQ(std::accumulate(slots.begin(), slots.end(), int64_t{0}), 6000);
    EXPECT_EQ(layer["experts_per_token"]["mean"], 2.0);
    EXPECT_EQ(layer["experts_per_token"]["histogram"][2], 3000);
    // Every slot of a labelled token is in the POS table.
    const json& pos = layer["by_label"]["pos"]["specialisation"];
    int64_t pos_slots = 0;
    for (const auto& row : pos["counts"])
      for (int64_t c : row) pos_slots += c;
    EXPECT_EQ(pos_slots, pos["slots"].get<int64_t>());
    EXPECT_EQ(pos_slots, 2 * pos["labelled_tokens"].get<int64_t>());
    EXPECT_EQ(pos["permutations"], 20);
    EXPECT_TRUE(layer["by_label"].contains("genre"));
    EXPECT_EQ(layer["dynamic"]["tokens"], 200);
    EXPECT_EQ(layer["static"]["reordering"].size(), 6u);  // every pair of 4 experts
    EXPECT_EQ(layer["prompt_choices"].size(), a["prompt_tokens"].size());
  }
  // The loss by genre counts every target once: the 3000 traced tokens but the last, which has no next token.
  int64_t genre_targets = 0;
  for (const auto& [genre, c] : a["loss_by_label"]["genre"].items()) genre_targets += c["tokens"].get<int64_t>();
  EXPECT_EQ(genre_targets, 2999);
  // From the run's metrics log: the course over training, the gradient norms of both evaluations and the loss
  // curves (a training record every step, an evaluation at steps 3 and 6).
  EXPECT_EQ(a["expert_grad_norms"]["steps"], json({3, 6}));
  EXPECT_EQ(a["training_course"]["steps"].size(), 6u);
  EXPECT_EQ(a["loss_history"]["train_steps"], json({1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(a["loss_history"]["val_steps"], json({3, 6}));
  EXPECT_EQ(a["moelab_version"], kVersion);

  // The page: which moelab wrote it, the training section with its loss curves, every setting of the run.
  const std::string html = testing::read_all(out + "/report.html");
  EXPECT_CONTAINS(html, std::string("moelab ") + kVersion);
  EXPECT_CONTAINS(html, "<section id=\"section-training\">");
  EXPECT_CONTAINS(html, "<figure class=\"chart\" id=\"chart-loss-curves\">");
  EXPECT_CONTAINS(html, "<section id=\"section-configuration\">");
  EXPECT_CONTAINS(html, "<tr><td>moe.n_experts</td><td>4</td></tr>");
  EXPECT_CONTAINS(html, "<tr><td>train.steps</td><td>6</td></tr>");
  EXPECT_CONTAINS(html, "<tr><td>data.dir</td><td>" + fs::path(kDataDir).lexically_normal().string() + "</td></tr>");

  // One PNG per chart, each a real image.
  std::vector<fs::path> pngs;
  for (const auto& f : fs::directory_iterator(out + "/figures")) pngs.push_back(f.path());
  EXPECT_GE(pngs.size(), 25u);
  for (const auto& p : pngs) {
    SCOPED_TRACE(p.string());
    const auto [w, h] = png_size(p.string());
    EXPECT_GT(w, 100u);
    EXPECT_GT(h, 50u);
  }

  const testing::BrowserRun run = testing::load_in_chromium(out + "/report.html", dir);
  ASSERT_EQ(run.status, 0) << run.log;
  EXPECT_EQ(testing::console_text(run), "");
  EXPECT_EQ(testing::charts_drawn(run.dom), static_cast<int>(pngs.size()));
  EXPECT_TRUE(fs::exists(out + "/figures/loss-curves.png"));
  for (const auto& p : pngs) {
    SCOPED_TRACE(p.stem().string());
    EXPECT_TRUE(testing::has_drawn_canvas(testing::figure_of(run.dom, p.stem().string())));
  }
}

TEST_F(AnalyzeReport, UnlabelledTextSaysWhatItCannotMeasure) {
  std::ofstream(dir.file("notes.txt")) << "The jury said the election was conducted well.\n"
                                          "Nobody expected the committee to agree so soon.\n";
  // --match-neurons below the experts' 32 neurons: the matching runs on a sample, and the report says so.
  const auto r = testing::run_moelab("analyze report " + run() + " --text " + dir.file("notes.txt") +
                                     " --sample-tokens 16 --permutations 2 --match-neurons 8 --no-png --out " +
                                     dir.file("report"));
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string html = testing::read_all(dir.file("report") + "/report.html");
  EXPECT_CONTAINS(html, "has no labels");
  EXPECT_CONTAINS(html, "Each pair is matched on 8 of its 32 neurons");
  EXPECT_FALSE(fs::exists(dir.file("report") + "/figures"));
  std::ifstream in(dir.file("report") + "/analysis.json");
  const json a = json::parse(in);
  EXPECT_EQ(a["labels"], json::array());
  EXPECT_EQ(a["loss_by_label"], json::object());
  EXPECT_EQ(a["layers"][0]["by_label"], json::object());
  EXPECT_EQ(a["source"], "text file " + dir.file("notes.txt"));
  EXPECT_EQ(a["layers"][0]["static"]["reordering"][0]["neurons"], json({0, 4, 8, 12, 16, 20, 24, 28}));
}

TEST_F(AnalyzeReport, ACheckpointOutsideItsRunSaysItHasNoLossCurves) {
  // A checkpoint copied out of its run folder: no metrics log beside it.
  const std::string latest = testing::read_all(run() + "/checkpoints/latest");
  const std::string name = latest.substr(0, latest.find_last_not_of(" \n") + 1);
  fs::copy(run() + "/checkpoints/" + name, dir.file("copied"));
  const auto r =
      testing::run_moelab("analyze report " + dir.file("copied") +
                          " --max-tokens 500 --sample-tokens 16 --permutations 2 --no-png --out " + dir.file("report"));
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string html = testing::read_all(dir.file("report") + "/report.html");
  EXPECT_CONTAINS(html, "<section id=\"section-training\">");
  EXPECT_CONTAINS(html, "No metrics log beside the checkpoint");
  EXPECT_EQ(html.find("chart-loss-curves"), std::string::npos);
  EXPECT_CONTAINS(html, "<section id=\"section-configuration\">");
  std::ifstream in(dir.file("report") + "/analysis.json");
  EXPECT_TRUE(json::parse(in)["loss_history"].is_null());
}

TEST(AnalyzeReportErrors, AMissingCheckpointIsAnErrorNamingIt) {
  testing::TempDir dir;
  const auto r = testing::run_moelab("analyze report " + dir.file("no-such-run") + " --no-png");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_CONTAINS(r.output, dir.file("no-such-run"));
}

}  // namespace
}  // namespace moelab
