// The numbers of `moelab analyze report` against an independent implementation: tests/oracle/analysis_oracle.py
// (numpy) recomputes every number of analysis.json that follows from the routing trace (`moelab analyze trace` of
// the same tokens), the checkpoint's weights and the run's metrics log, per MoE layer, and fails on any deviation
// above its tolerance. The unit tests of each analysis use synthetic cases; this is the whole pipeline, run as a
// user runs it, on a tiny model trained for a few steps on Brown: once with top-k routing per token, once with
// top-p (a varying number of experts per token) and once with sequence-level routing behind a dense first layer
// (MoE layers that are not blocks 0..L-1).
// Needs data/brown (scripts/test.sh prepares it) and Debian's /usr/bin/python3 with python3-numpy, which the test
// command installs: without them this test fails, it is not skipped.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/run_moelab.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

// The first 20000 validation tokens span two genres (news, then editorial), so the genre table is not one column.
constexpr const char* kTokens = "20000";

// What a case is there to exercise, checked on its analysis.json so that it cannot pass vacuously.
enum class Exercises { TopTwo, VaryingExperts, SequenceAfterDense };

struct PipelineCase {
  std::string name;
  std::vector<std::string> settings;  // --set KEY=VALUE beyond the tiny model
  Exercises exercises;
};

void PrintTo(const PipelineCase& c, std::ostream* os) { *os << c.name; }

// One OpenMP thread for the commands the test runs, restored afterwards: the model is tiny, and on a busy 2-core
// machine a second thread spins at every barrier (a report took 13 s with 2 threads against 0.4 s with 1).
class OneThreadForChildren {
 public:
  OneThreadForChildren() {
    if (const char* v = std::getenv("OMP_NUM_THREADS")) saved_ = v;
    ::setenv("OMP_NUM_THREADS", "1", 1);
  }
  ~OneThreadForChildren() {
    if (saved_)
      ::setenv("OMP_NUM_THREADS", saved_->c_str(), 1);
    else
      ::unsetenv("OMP_NUM_THREADS");
  }

 private:
  std::optional<std::string> saved_;
};

// The oracle's exit status and everything it printed.
testing::CommandResult run_oracle(const std::string& checkpoint, const std::string& trace,
                                  const std::string& analysis) {
  const std::string cmd = "/usr/bin/python3 " + std::string(MOELAB_TEST_DIR) + "/oracle/analysis_oracle.py" +
                          " --checkpoint " + checkpoint + " --trace " + trace + " --analysis " + analysis + " 2>&1";
  return testing::run_command(cmd);
}

class AnalysisVsNumpy : public ::testing::TestWithParam<PipelineCase> {};

TEST_P(AnalysisVsNumpy, EveryNumberOfTheReportMatchesTheOracle) {
  const PipelineCase& c = GetParam();
  const std::string data_dir = std::string(MOELAB_TEST_DIR) + "/../data/brown";
  ASSERT_TRUE(std::filesystem::exists(data_dir + "/meta.json"))
      << data_dir << " is missing: prepare it with `moelab data brown --out data/brown` (scripts/test.sh does)";
  testing::TempDir dir;
  const OneThreadForChildren one_thread;
  const std::string run = dir.file("run"), trace = dir.file("trace"), report = dir.file("report");

  // A tiny model, 8 steps at a high learning rate so that routing is no longer uniform; an evaluation at step 4
  // and at the end logs the per-expert gradient norms the report reads back.
  std::string train = "train " + std::string(MOELAB_TEST_DIR) + "/../configs/brown-tiny.toml";
  std::vector<std::string> settings = {"data.dir=\"" + data_dir + "\"",
                                       "model.d_model=32",
                                       "model.n_layers=2",
                                       "model.n_heads=2",
                                       "moe.n_experts=4",
                                       "moe.expert_hidden=48",
                                       "train.seq_len=32",
                                       "model.max_seq_len=32",
                                       "train.batch_size=4",
                                       "train.steps=8",
                                       "train.warmup_steps=2",
                                       "train.lr=1e-2",
                                       "train.eval_every=4",
                                       "train.eval_tokens=512",
                                       "train.checkpoint_every=0",
                                       "train.log_every=1",
                                       "train.out_dir=\"" + run + "\""};
  settings.insert(settings.end(), c.settings.begin(), c.settings.end());
  for (const std::string& s : settings) train += " --set '" + s + "'";
  const auto trained = testing::run_moelab(train);
  ASSERT_EQ(trained.status, 0) << trained.output;

  const auto traced = testing::run_moelab("analyze trace " + run + " --max-tokens " + kTokens + " --out " + trace);
  ASSERT_EQ(traced.status, 0) << traced.output;
  const auto reported = testing::run_moelab("analyze report " + run + " --max-tokens " + kTokens +
                                            " --sample-tokens 64 --permutations 5 --no-png --out " + report);
  ASSERT_EQ(reported.status, 0) << reported.output;

  const auto oracle = run_oracle(run, trace, report + "/analysis.json");
  EXPECT_EQ(oracle.status, 0) << "the numpy oracle disagrees (or could not run: is python3-numpy installed?):\n"
                              << oracle.output;
  EXPECT_NE(oracle.output.find("quantities agree"), std::string::npos) << oracle.output;

  const auto a = nlohmann::json::parse(testing::read_all(report + "/analysis.json"));
  ASSERT_EQ(a["layers"].size(), 2u);
  for (const auto& layer : a["layers"]) {
    int genres = 0;
    for (const auto& g : layer["by_label"]["genre"]["experts_per_class"]["groups"])
      genres += g["tokens"].get<int64_t>() > 0;
    EXPECT_EQ(genres, 2) << "the genre table should have two labelled columns";
  }
  if (c.exercises == Exercises::VaryingExperts) {
    bool varies = false;
    std::string histograms;
    for (const auto& layer : a["layers"]) {
      int used = 0;
      for (const auto& n : layer["experts_per_token"]["histogram"]) used += n.get<int64_t>() > 0;
      varies = varies || used >= 2;
      histograms += layer["experts_per_token"]["histogram"].dump() + " ";
    }
    EXPECT_TRUE(varies) << "top-p gave every token of every layer the same number of experts: " << histograms;
  } else if (c.exercises == Exercises::SequenceAfterDense) {
    EXPECT_EQ(a["config"]["routing"]["granularity"], "sequence");
    EXPECT_EQ(a["layers"][0]["layer"], 1);
    EXPECT_EQ(a["layers"][1]["layer"], 2);
  } else {
    for (const auto& layer : a["layers"]) EXPECT_EQ(layer["experts_per_token"]["mean"].get<double>(), 2.0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Routing, AnalysisVsNumpy,
    ::testing::Values(PipelineCase{"top_k_token", {}, Exercises::TopTwo},
                      // With 4 experts near 1/4 each, the two largest sum to just over 0.5: 0.55 keeps 2 or 3.
                      PipelineCase{
                          "top_p", {"routing.rule=\"top_p\"", "routing.top_p=0.55"}, Exercises::VaryingExperts},
                      PipelineCase{"sequence_after_dense",
                                   {"routing.granularity=\"sequence\"", "model.n_layers=3", "moe.first_dense_layers=1"},
                                   Exercises::SequenceAfterDense}),
    [](const ::testing::TestParamInfo<PipelineCase>& info) { return info.param.name; });

}  // namespace
}  // namespace moelab
