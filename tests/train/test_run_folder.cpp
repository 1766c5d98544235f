// A run never loses another run's work: a new run refuses a folder that holds one (unless --overwrite clears it), a
// folder in use is refused naming its holder, a resumed run writes into the folder the user named, and pruning only
// removes checkpoints of the run's own history.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "model/config.h"
#include "support/errors.h"
#include "support/run_moelab.h"
#include "support/synthetic_data.h"
#include "support/temp_dir.h"
#include "train/checkpoint.h"
#include "train/run_folder.h"
#include "train/trainer.h"

namespace moelab {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kVocab = 48;

class RunFolders : public ::testing::Test {
 protected:
  void SetUp() override { testing::write_bigram_data_folder(dir.file("data"), kVocab); }

  Config config(const std::string& out, int64_t steps, int64_t checkpoint_every) const {
    Config cfg;
    cfg.data.dir = dir.file("data");
    cfg.model.d_model = 16, cfg.model.n_layers = 1, cfg.model.n_heads = 2, cfg.model.max_seq_len = 8;
    cfg.moe.n_experts = 2, cfg.moe.expert_hidden = 8;
    cfg.train.seq_len = 8, cfg.train.batch_size = 2, cfg.train.steps = steps, cfg.train.warmup_steps = 1;
    cfg.train.eval_every = 0, cfg.train.eval_tokens = 256, cfg.train.checkpoint_every = checkpoint_every;
    cfg.train.log_every = 1, cfg.train.out_dir = dir.file(out);
    validate(cfg);
    return cfg;
  }

  std::vector<int64_t> steps_in(const std::string& run) const { return checkpoint_steps(dir.file(run)); }

  testing::TempDir dir;
};

TEST_F(RunFolders, ANewRunRefusesAFolderThatHoldsAnotherRunAndLeavesItAsItWas) {
  train(config("run", 12, 3), "");
  const std::string model_before = testing::read_all(dir.file("run/checkpoints/step-00000012/model.safetensors"));
  const std::string metrics_before = testing::read_all(dir.file("run/metrics.jsonl"));
  // The shorter run of README's example (--set train.steps=100 after a longer run) used to prune its own checkpoint.
  EXPECT_CONTAINS(testing::read_all(dir.file("run/config.json")),
                  std::string("\"moelab_version\": \"") + MOELAB_VERSION + "\"");
  const std::string message = testing::error_of([&] { train(config("run", 4, 2), ""); });
  for (const char* piece : {"already holds", "--resume", "--overwrite", "train.out_dir"})
    EXPECT_CONTAINS(message, piece);
  EXPECT_EQ(steps_in("run"), (std::vector<int64_t>{9, 12}));
  EXPECT_EQ(resolve_checkpoint(dir.file("run")), dir.file("run/checkpoints/step-00000012"));
  EXPECT_EQ(testing::read_all(dir.file("run/checkpoints/step-00000012/model.safetensors")), model_before);
  EXPECT_EQ(testing::read_all(dir.file("run/metrics.jsonl")), metrics_before);
}

TEST_F(RunFolders, OverwriteClearsTheFolderFirst) {
  train(config("run", 12, 3), "");
  std::ofstream(dir.file("run/notes.txt")) << "the user's own file\n";
  train(config("run", 4, 2), "", /*overwrite=*/true);
  EXPECT_EQ(steps_in("run"), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(resolve_checkpoint(dir.file("run")), dir.file("run/checkpoints/step-00000004"));
  EXPECT_FALSE(fs::exists(dir.file("run/notes.txt")));
}

TEST_F(RunFolders, PruningRemovesOnlyCheckpointsOfTheRunsOwnHistory) {
  train(config("run", 12, 3), "");  // keeps step-9 and step-12
  // Resuming the earlier checkpoint starts another future: step-12 belongs to the abandoned one and stays.
  train(config("run", 11, 1), dir.file("run/checkpoints/step-00000009"));
  EXPECT_EQ(steps_in("run"), (std::vector<int64_t>{10, 11, 12}));
  EXPECT_EQ(resolve_checkpoint(dir.file("run")), dir.file("run/checkpoints/step-00000011"));
}

TEST_F(RunFolders, AFolderInUseIsRefusedNamingTheProcessThatHoldsIt) {
  const RunFolder held(dir.file("run"), {});
  const std::string message = testing::error_of([&] { RunFolder second(dir.file("run"), {}); });
  EXPECT_CONTAINS(message, "in use");
  EXPECT_CONTAINS(message, "pid " + std::to_string(::getpid()));
  // Through the command, as a second `moelab train` meets it.
  std::ofstream(dir.file("run.toml")) << "[data]\ndir = \"" << dir.file("data") << "\"\n[train]\nout_dir = \""
                                      << dir.file("run") << "\"\n";
  const auto r = testing::run_moelab("train " + dir.file("run.toml"));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_CONTAINS(r.output, "in use by another moelab train (pid " + std::to_string(::getpid()) + ")");
}

TEST_F(RunFolders, AnOutDirThatCannotBeAFolderIsAClearError) {
  std::ofstream(dir.file("file")) << "x";
  for (const std::string& out : {dir.file("file"), dir.file("file/run")}) {
    Config cfg = config("unused", 2, 1);
    cfg.train.out_dir = out;
    const std::string message = testing::error_of([&] { train(cfg, ""); });
    EXPECT_CONTAINS(message, "train.out_dir");
    EXPECT_CONTAINS(message, out);
  }
}

TEST_F(RunFolders, ResumingACopyWritesIntoTheCopy) {
  train(config("original", 6, 3), "");
  fs::copy(dir.file("original"), dir.file("copy"), fs::copy_options::recursive);
  fs::remove(dir.file("copy/.lock"));
  const std::string original_metrics = testing::read_all(dir.file("original/metrics.jsonl"));
  const auto r = testing::run_moelab("train --resume " + dir.file("copy") + " --set train.steps=9");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(resolve_checkpoint(dir.file("copy")), dir.file("copy/checkpoints/step-00000009"));
  EXPECT_EQ(steps_in("original"), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(testing::read_all(dir.file("original/metrics.jsonl")), original_metrics);
}

TEST_F(RunFolders, ResumingAtOrPastTheLastStepSaysThereIsNothingToTrain) {
  train(config("run", 6, 3), "");
  const std::string message = testing::error_of([&] { train(config("run", 6, 3), dir.file("run")); });
  EXPECT_CONTAINS(message, "step 6");
  EXPECT_CONTAINS(message, "train.steps");
}

}  // namespace
}  // namespace moelab
