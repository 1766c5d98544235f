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
    int64_t pos_slots = 0;
    for (const auto& row : layer["pos_specialisation"]["counts"])
      for (int64_t c : row) pos_slots += c;
    EXPECT_EQ(pos_slots, layer["pos_specialisation"]["slots"].get<int64_t>());
    EXPECT_EQ(pos_slots, 2 * layer["pos_specialisation"]["labelled_tokens"].get<int64_t>());
    EXPECT_EQ(layer["pos_specialisation"]["permutations"], 20);
    EXPECT_EQ(layer["dynamic"]["tokens"], 200);
    EXPECT_EQ(layer["static"]["reordering"].size(), 6u);  // every pair of 4 experts
    EXPECT_EQ(layer["prompt_choices"].size(), a["prompt_tokens"].size());
  }
  // From the run's metrics log: the course over training and the gradient norms of both evaluations.
  EXPECT_EQ(a["expert_grad_norms"]["steps"], json({3, 6}));
  EXPECT_EQ(a["training_course"]["steps"].size(), 6u);

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
  for (const auto& p : pngs) {
    SCOPED_TRACE(p.stem().string());
    EXPECT_TRUE(testing::has_drawn_canvas(testing::figure_of(run.dom, p.stem().string())));
  }
}

TEST_F(AnalyzeReport, UnlabelledTextSaysWhatItCannotMeasure) {
  std::ofstream(dir.file("notes.txt")) << "The jury said the election was conducted well.\n"
                                          "Nobody expected the committee to agree so soon.\n";
  const auto r = testing::run_moelab("analyze report " + run() + " --text " + dir.file("notes.txt") +
                                     " --sample-tokens 16 --permutations 2 --no-png --out " + dir.file("report"));
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string html = testing::read_all(dir.file("report") + "/report.html");
  EXPECT_CONTAINS(html, "has no POS or genre labels");
  EXPECT_FALSE(fs::exists(dir.file("report") + "/figures"));
  std::ifstream in(dir.file("report") + "/analysis.json");
  const json a = json::parse(in);
  EXPECT_TRUE(a["layers"][0]["pos_specialisation"].is_null());
  EXPECT_EQ(a["source"], "text file " + dir.file("notes.txt"));
}

TEST(AnalyzeReportErrors, AMissingCheckpointIsAnErrorNamingIt) {
  testing::TempDir dir;
  const auto r = testing::run_moelab("analyze report " + dir.file("no-such-run") + " --no-png");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_CONTAINS(r.output, dir.file("no-such-run"));
}

}  // namespace
}  // namespace moelab
