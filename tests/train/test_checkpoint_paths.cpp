// Where a checkpoint's run folder is: what the metrics log and the analyses' default output folders hang off; and
// where its data folder is: recorded absolute, so that a checkpoint is usable from any directory, and named with
// --data when it is gone.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/model.h"
#include "support/errors.h"
#include "support/small_model.h"
#include "support/synthetic_data.h"
#include "support/temp_dir.h"
#include "train/checkpoint.h"

namespace moelab {
namespace {

namespace fs = std::filesystem;

TEST(CheckpointPaths, RunFolderIsTheParentOfCheckpoints) {
  EXPECT_EQ(run_folder_of("runs/brown-tiny/checkpoints/step-00000600"), "runs/brown-tiny");
  EXPECT_EQ(run_folder_of("runs/brown-tiny/checkpoints/step-00000600/"), "runs/brown-tiny");
  EXPECT_EQ(run_folder_of("/abs/run/./checkpoints/step-00000001"), "/abs/run");
  EXPECT_EQ(run_folder_of("checkpoints/step-00000001"), ".");
}

TEST(CheckpointPaths, ACheckpointOutsideARunUsesItsParentFolder) {
  EXPECT_EQ(run_folder_of("exports/model-a"), "exports");
  EXPECT_EQ(run_folder_of("model-a"), ".");
}

// A checkpoint of the small model whose config names `data_dir`, written into <run>/checkpoints.
std::string save_small_checkpoint(const std::string& run, const std::string& data_dir) {
  Config cfg = testing::small_model_config("f32", 8, 2);
  cfg.data.dir = data_dir;
  cfg.train.out_dir = run;
  Model model(cfg);
  model.init_params(1);
  const OptimizerState opt{std::vector<float>(model.params().size()), std::vector<float>(model.params().size())};
  return save_checkpoint(run, model, opt, TrainState{1, 16});
}

TEST(CheckpointPaths, ConfigJsonRecordsEveryPathAbsolute) {
  testing::TempDir dir;
  const std::string ckpt = save_small_checkpoint(dir.file("run"), "data/somewhere/../brown");
  const auto stored = nlohmann::json::parse(testing::read_all(ckpt + "/config.json"));
  EXPECT_EQ(stored["data"]["dir"], (fs::current_path() / "data/brown").string());
  EXPECT_EQ(stored["train"]["out_dir"], dir.file("run"));
  EXPECT_EQ(load_checkpoint_config(ckpt).data.dir, (fs::current_path() / "data/brown").string());
}

TEST(CheckpointPaths, AMissingDataFolderIsNamedWithTheCheckpointAndTheDataOption) {
  testing::TempDir dir;
  const std::string ckpt = save_small_checkpoint(dir.file("run"), dir.file("moved-away"));
  const std::string message = testing::error_of([&] { load_checkpoint(dir.file("run"), ""); });
  EXPECT_CONTAINS(message, "checkpoint " + ckpt + ": its data folder " + dir.file("moved-away") + " ");
  EXPECT_CONTAINS(message, "does not exist; pass --data DIR");
  // --data names the folder instead.
  testing::write_bigram_data_folder(dir.file("data"), 96);
  const LoadedCheckpoint loaded = load_checkpoint(dir.file("run"), dir.file("data"));
  EXPECT_EQ(loaded.path, ckpt);
  EXPECT_EQ(loaded.config.data.dir, dir.file("data"));
  EXPECT_EQ(loaded.data.vocab_size(), 96);
}

}  // namespace
}  // namespace moelab
