// A short real run on the Brown corpus: the loss must fall well below its starting value (ln V) within a few
// dozen steps. Needs data/brown, which scripts/test.sh prepares with `moelab data brown` before running ctest.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/config.h"
#include "support/temp_dir.h"
#include "train/trainer.h"

namespace moelab {
namespace {

TEST(BrownTraining, LossFallsInAShortRun) {
  const std::string data_dir = std::string(MOELAB_TEST_DIR) + "/../data/brown";
  ASSERT_TRUE(std::filesystem::exists(data_dir + "/meta.json"))
      << data_dir << " is missing: prepare it with `moelab data brown --out data/brown` (scripts/test.sh does)";
  testing::TempDir dir;
  Config cfg = load_config(std::string(MOELAB_TEST_DIR) + "/../configs/brown-tiny.toml",
                           {"data.dir=\"" + data_dir + "\"", "model.d_model=64", "model.n_layers=2",
                            "moe.expert_hidden=128", "train.seq_len=64", "model.max_seq_len=64", "train.steps=60",
                            "train.warmup_steps=5", "train.lr=5e-3", "train.eval_every=0", "train.log_every=1",
                            "train.checkpoint_every=0", "train.out_dir=\"" + dir.file("run") + "\""});
  validate(cfg);
  const TrainOutcome out = train(cfg, "");
  std::ifstream in(dir.file("run") + "/metrics.jsonl");
  std::vector<double> losses;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "train") losses.push_back(j["ce_loss"].get<double>());
  }
  ASSERT_EQ(losses.size(), 60u);
  EXPECT_NEAR(losses.front(), std::log(8192.0), 0.5);  // an untrained model is close to uniform
  // From about ln 8192 = 9.01, a fall of more than 1.2 nats (averaged over the last 10 steps) means learning.
  double last10 = 0;
  for (size_t i = losses.size() - 10; i < losses.size(); ++i) last10 += losses[i] / 10;
  EXPECT_LT(last10, losses.front() - 1.2);
  EXPECT_LT(out.final_val_loss, losses.front() - 1.2);
}

}  // namespace
}  // namespace moelab
