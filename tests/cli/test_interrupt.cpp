// Ctrl-C or SIGTERM during training: the process saves a checkpoint at the next step boundary and exits with status
// 130 (SIGINT) or 143 (SIGTERM); `moelab train --resume` then continues from that step to the end. A second Ctrl-C
// stops at once, keeping the checkpoints already written.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/rng.h"
#include "data/token_file.h"
#include "support/synthetic_data.h"
#include "support/temp_dir.h"

extern char** environ;

namespace moelab {
namespace {

pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// The exit status, or -(the signal) for a process a signal ended (a crash: SIGSEGV, SIGABRT).
int wait_status(pid_t pid) {
  int raw = 0;
  waitpid(pid, &raw, 0);
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : -WTERMSIG(raw);
}

std::string latest_checkpoint(const std::string& run) {
  std::ifstream latest(run + "/checkpoints/latest");
  std::string name;
  latest >> name;
  return name.empty() ? "" : run + "/checkpoints/" + name;
}

int64_t train_records(const std::string& metrics) {
  std::ifstream in(metrics);
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) n += line.find("\"type\":\"train\"") != std::string::npos;
  return n;
}

TEST(Interrupt, SigintSavesACheckpointAndResumeFinishesTheRun) {
  testing::TempDir dir;
  data::SplitTokens split;
  Rng rng(1, 0);
  for (int i = 0; i < 5000; ++i) split.tokens.push_back(i % 100 == 99 ? 0 : 1 + rng.below(31));
  split.documents = 50;
  data::write_data_folder(dir.file("data"), {"synthetic", 32, 0, {}}, {split, split, split}, "unused");
  std::ofstream(dir.file("run.toml")) << "[data]\ndir = \"" << dir.file("data") << "\"\n"
                                      << "[model]\nd_model = 16\nn_layers = 1\nn_heads = 2\nmax_seq_len = 8\n"
                                      << "[moe]\nn_experts = 2\nexpert_hidden = 8\n"
                                      << "[train]\nseq_len = 8\nbatch_size = 2\nsteps = 1000000\nwarmup_steps = 1\n"
                                      << "eval_every = 0\ncheckpoint_every = 0\nlog_every = 1\nout_dir = \""
                                      << dir.file("run") << "\"\n";
  const pid_t pid = spawn({MOELAB_BINARY, "train", dir.file("run.toml")}, dir.file("train.log"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (train_records(dir.file("run/metrics.jsonl")) < 5 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGINT);
  EXPECT_EQ(wait_status(pid), 130) << testing::read_all(dir.file("train.log"));

  std::ifstream latest(dir.file("run/checkpoints/latest"));
  std::string name;
  latest >> name;
  ASSERT_FALSE(name.empty()) << "no checkpoint was written: " << testing::read_all(dir.file("train.log"));
  const auto state = nlohmann::json::parse(testing::read_all(dir.file("run/checkpoints/" + name + "/state.json")));
  const int64_t stopped_at = state["step"].get<int64_t>();
  EXPECT_GE(stopped_at, 5);
  EXPECT_EQ(train_records(dir.file("run/metrics.jsonl")), stopped_at);

  const pid_t resumed = spawn(
      {MOELAB_BINARY, "train", "--resume", dir.file("run"), "--set", "train.steps=" + std::to_string(stopped_at + 3)},
      dir.file("resume.log"));
  EXPECT_EQ(wait_status(resumed), 0) << testing::read_all(dir.file("resume.log"));
  EXPECT_EQ(train_records(dir.file("run/metrics.jsonl")), stopped_at + 3);
  EXPECT_NE(testing::read_all(dir.file("resume.log")).find("resuming from"), std::string::npos);
}

// The default model (configs/brown-tiny.toml: d 256, 4 layers, 8 experts) on synthetic tokens of Brown's vocabulary
// size, evaluating and checkpointing every few steps, so that signals land in every phase of a run: start-up,
// forward, backward, the optimizer, an evaluation, a checkpoint being written. `precision`: train.precision.
std::vector<std::string> default_shape_run(const testing::TempDir& dir, const std::string& run,
                                           const std::string& precision) {
  return {MOELAB_BINARY,
          "train",
          MOELAB_TEST_DIR "/../configs/brown-tiny.toml",
          "--set",
          "train.precision=" + precision,
          "--set",
          "data.dir=\"" + dir.file("data") + "\"",
          "--set",
          "train.out_dir=\"" + run + "\"",
          "--set",
          "train.steps=1000000",
          "--set",
          "train.eval_every=3",
          "--set",
          "train.checkpoint_every=4",
          "--set",
          "train.log_every=1"};
}

// Both precisions: bf16 runs other kernels (oneDNN's bf16 primitives, the weights' bf16 copy) whose threads and
// buffers a signal can interrupt too. Each pair of trials sends SIGINT then SIGTERM, pairs alternate f32 and bf16.
TEST(Interrupt, DefaultShapeSavesAndExitsOnSignalsAtRandomMoments) {
  testing::TempDir dir;
  testing::write_bigram_data_folder(dir.file("data"), 8192, testing::random_words_tokenizer(8192));
  Rng rng(7, 0);
  for (int trial = 0; trial < 10; ++trial) {
    const int sig = trial % 2 == 0 ? SIGINT : SIGTERM;
    const std::string precision = trial / 2 % 2 == 0 ? "f32" : "bf16";
    const std::string run = dir.file("run" + std::to_string(trial)), log = dir.file("train.log");
    const pid_t pid = spawn(default_shape_run(dir, run, precision), log);
    const auto delay = std::chrono::milliseconds(200 + rng.below(2300));
    std::this_thread::sleep_for(delay);
    kill(pid, sig);
    const int status = wait_status(pid);
    ASSERT_EQ(status, sig == SIGINT ? 130 : 143)
        << "trial " << trial << " (" << precision << "), " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << " after "
        << delay.count() << " ms (negative: ended by that signal)\n"
        << testing::read_all(log);
    const std::string ckpt = latest_checkpoint(run);
    ASSERT_FALSE(ckpt.empty()) << "trial " << trial << " (" << precision << "): no checkpoint was saved\n"
                               << testing::read_all(log);
    const auto state = nlohmann::json::parse(testing::read_all(ckpt + "/state.json"));
    EXPECT_GE(state["step"].get<int64_t>(), 1);
    const auto config = nlohmann::json::parse(testing::read_all(ckpt + "/config.json"));
    EXPECT_EQ(config["train"]["precision"], precision) << "trial " << trial;
    // The checkpoint it saved loads and evaluates.
    const pid_t eval = spawn({MOELAB_BINARY, "eval", run, "--max-tokens", "512"}, dir.file("eval.log"));
    EXPECT_EQ(wait_status(eval), 0) << "trial " << trial << " (" << precision
                                    << "): " << testing::read_all(dir.file("eval.log"));
  }
}

TEST(Interrupt, SecondCtrlCStopsAtOnceAndKeepsTheCheckpointsWritten) {
  testing::TempDir dir;
  testing::write_bigram_data_folder(dir.file("data"), 8192);
  const std::string run = dir.file("run"), log = dir.file("train.log");
  const pid_t pid = spawn(default_shape_run(dir, run, "f32"), log);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (latest_checkpoint(run).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_FALSE(latest_checkpoint(run).empty()) << testing::read_all(log);
  const std::string first = latest_checkpoint(run);
  kill(pid, SIGINT);
  // The second once the first is taken (two signals that arrive together are one), as a user presses it again.
  const auto taken_by = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (testing::read_all(log).find("stopping after this step") == std::string::npos &&
         std::chrono::steady_clock::now() < taken_by)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGINT);
  EXPECT_EQ(wait_status(pid), 130) << testing::read_all(log);
  EXPECT_NE(testing::read_all(log).find("stopping now"), std::string::npos) << testing::read_all(log);
  // Whatever it was doing, the run folder still names a complete checkpoint.
  const std::string kept = latest_checkpoint(run);
  ASSERT_FALSE(kept.empty());
  EXPECT_TRUE(std::filesystem::exists(kept + "/model.safetensors")) << kept;
  EXPECT_TRUE(std::filesystem::exists(kept + "/optimizer.safetensors")) << kept;
}

}  // namespace
}  // namespace moelab
