// The moelab command as a user runs it: help for every command, and bad input that must end with a clear
// message naming the file/field and a non-zero exit status (never a crash, never silence).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "model/config.h"
#include "support/errors.h"
#include "support/run_moelab.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

using Result = testing::CommandResult;

Result run(const std::string& args) { return testing::run_moelab(args); }

void expect_failure_mentioning(const Result& r, const std::vector<std::string>& fragments) {
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.status, -1) << "crashed: " << r.output;
  for (const auto& f : fragments) EXPECT_CONTAINS(r.output, f);
}

TEST(Cli, EveryCommandHasHelp) {
  for (const char* cmd : {"", "data", "data brown", "data text", "train", "eval", "generate", "params"}) {
    const Result r = run(std::string(cmd) + " --help");
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << cmd << ": " << r.output;
  }
}

TEST(Cli, UnknownSubcommandFails) { EXPECT_NE(run("frobnicate").status, 0); }

TEST(Cli, ConfigWithUnknownKeyOrWrongTypeNamesTheKey) {
  testing::TempDir dir;
  testing::write_all(dir.file("bad.toml"), "[train]\nlrr = 0.1\n");
  expect_failure_mentioning(run("train " + dir.file("bad.toml")), {"bad.toml", "train.lrr", "train.lr"});
  testing::write_all(dir.file("type.toml"), "[model]\nd_model = \"wide\"\n");
  expect_failure_mentioning(run("train " + dir.file("type.toml")), {"type.toml", "model.d_model"});
  expect_failure_mentioning(run("train " + dir.file("missing.toml")), {"missing.toml"});
  testing::write_all(dir.file("ok.toml"), "[train]\nsteps = 1\n");
  expect_failure_mentioning(run("train " + dir.file("ok.toml") + " --set routing.rule=top_q"), {"routing.rule"});
}

TEST(Cli, MissingOrCorruptDataFolderIsNamed) {
  testing::TempDir dir;
  testing::write_all(dir.file("c.toml"),
                     "[data]\ndir = \"" + dir.file("nodata") + "\"\n[train]\nout_dir = \"" + dir.file("run") + "\"\n");
  expect_failure_mentioning(run("train " + dir.file("c.toml")), {"nodata", "does not exist", "moelab data", "c.toml"});
  std::filesystem::create_directories(dir.file("nodata"));
  expect_failure_mentioning(run("train " + dir.file("c.toml")), {"nodata", "meta.json"});
}

// A Hugging Face folder is opened as one (its own errors, naming its files), never misread as a moelab checkpoint;
// training does not resume from one.
TEST(Cli, AHuggingFaceFolderIsNotTakenForACheckpoint) {
  testing::TempDir dir;
  testing::write_all(dir.file("config.json"), R"({"model_type": "mixtral", "vocab_size": 40, "hidden_size": 16,
      "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 24,
      "num_local_experts": 4, "max_position_embeddings": 64})");
  testing::write_all(dir.file("t.txt"), "Some text.");
  const std::string text = " --text " + dir.file("t.txt") + " ";
  for (const std::string& cmd :
       std::vector<std::string>{"eval" + text, "generate --prompt hi ", "analyze report" + text})
    expect_failure_mentioning(run(cmd + dir.path().string()),
                              {dir.path().string(), "no tokenizer.json or tokenizer.model"});
  testing::write_all(dir.file("c.toml"), "[train]\nsteps = 1\nout_dir = \"" + dir.file("run") + "\"\n");
  expect_failure_mentioning(run("train " + dir.file("c.toml") + " --resume " + dir.path().string()),
                            {dir.path().string(), "a Hugging Face model folder", "not a moelab checkpoint"});
}

TEST(Cli, EvalOfACorruptCheckpointNamesTheFile) {
  testing::TempDir dir;
  expect_failure_mentioning(run("eval " + dir.file("nothing")), {"nothing", "not a checkpoint"});
  std::filesystem::create_directories(dir.file("ckpt"));
  Config cfg;
  cfg.model.vocab_size = 50;
  cfg.data.dir = dir.file("");  // a folder that exists: the weights are read first
  testing::write_all(dir.file("ckpt/config.json"), config_to_json(cfg).dump());
  // A header length pointing far past the end of the file.
  testing::write_all(dir.file("ckpt/model.safetensors"), std::string("\xff\x00\x00\x00\x00\x00\x00\x00{}", 10));
  expect_failure_mentioning(run("eval " + dir.file("ckpt")), {"model.safetensors", "header"});
  testing::write_all(dir.file("ckpt/config.json"), "{\"model\": {\"d_model\": \"wide\"}}");
  expect_failure_mentioning(run("eval " + dir.file("ckpt")), {"config.json", "model.d_model"});
}

TEST(Cli, VersionIsTheProjectVersion) {
  const auto r = run("--version");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output, std::string("moelab ") + MOELAB_VERSION + "\n");
}

// Under top-p a token's number of experts varies: params says what its active column counts instead.
TEST(Cli, ParamsOfATopPConfigSaysTheActiveCountIsNotTheRules) {
  const auto r =
      run(std::string("params ") + MOELAB_TEST_DIR + "/../configs/paper2-topp.toml --set model.vocab_size=512");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("active counted at routing.top_k = 2 (under top_p a token's number of experts varies"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("2 active per token"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace moelab
