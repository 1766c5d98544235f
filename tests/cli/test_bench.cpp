// `moelab bench`: one step timed op by op. The JSON names every op of a training step (optimizer included), its
// times add up to no more than the step, utilisation is model FLOPs over the peak given, and --forward times
// inference only; --precision picks the GEMM precision; peak memory per token is reported.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "support/run_moelab.h"

namespace moelab {
namespace {

const std::string kSmall = std::string(MOELAB_TEST_DIR) +
                           "/../configs/brown-tiny.toml --set model.d_model=32 --set model.n_layers=2"
                           " --set model.n_heads=2 --set moe.n_experts=4 --set moe.expert_hidden=32"
                           " --set train.seq_len=32 --set model.max_seq_len=32 --set train.batch_size=2";

nlohmann::json bench(const std::string& extra) {
  const auto r = testing::run_moelab("bench " + kSmall + " --steps 2 --warmup 1 --peak-gflops 100 --json" + extra);
  EXPECT_EQ(r.status, 0) << r.output;
  return nlohmann::json::parse(r.output, nullptr, false);
}

TEST(Bench, TrainingStepOpByOp) {
  const auto j = bench("");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["mode"], "train");
  EXPECT_EQ(j["tokens_per_step"], 64);
  EXPECT_NEAR(j["model_flops_utilisation"].get<double>(), j["model_gflops"].get<double>() / 100, 1e-12);
  EXPECT_NEAR(j["tokens_per_s"].get<double>(), 64 / j["step_seconds"].get<double>(), 1e-6);
  std::set<std::string> names;
  double op_seconds = 0;
  for (const auto& op : j["ops"]) {
    names.insert(op["op"].get<std::string>());
    op_seconds += op["seconds_per_step"].get<double>();
    EXPECT_GE(op["seconds_per_step"].get<double>(), 0);
  }
  for (const char* name : {"fwd lm_head", "bwd lm_head", "fwd ffn.gate_up_proj", "bwd attention.core",
                           "optimizer (AdamW)", "clip_grad_norm", "fwd moe.routing"})
    EXPECT_TRUE(names.count(name)) << name;
  EXPECT_LE(op_seconds, j["step_seconds"].get<double>() * 1.0001);
  EXPECT_NEAR(op_seconds + j["untimed_seconds_per_step"].get<double>(), j["step_seconds"].get<double>(), 1e-9);
}

TEST(Bench, ForwardOnlyTimesNoBackwardOp) {
  const auto j = bench(" --forward");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["mode"], "forward");
  ASSERT_FALSE(j["ops"].empty());
  for (const auto& op : j["ops"]) EXPECT_EQ(op["op"].get<std::string>().rfind("fwd ", 0), 0u) << op["op"];
}

TEST(Bench, ABadConfigIsAnErrorNamingIt) {
  const auto r = testing::run_moelab("bench /no/such/config.toml");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("/no/such/config.toml"), std::string::npos) << r.output;
  // --set takes every value after it: without a CONFIG first it has nothing to change, which must not pass silently.
  const auto s = testing::run_moelab("bench --steps 1 --set train.precision=bf16");
  EXPECT_EQ(s.status, 1);
  EXPECT_NE(s.output.find("no CONFIG was given"), std::string::npos) << s.output;
}

TEST(Bench, Bf16PrecisionRunsFromTheConfigOrTheFlag) {
  for (const char* extra : {" --set 'train.precision=\"bf16\"'", " --precision bf16"}) {
    const auto j = bench(extra);
    ASSERT_FALSE(j.is_discarded()) << extra;
    EXPECT_EQ(j["precision"], "bf16") << extra;
    EXPECT_GT(j["tokens_per_s"].get<double>(), 0);
  }
  EXPECT_EQ(bench("")["precision"], "f32");
  const auto r = testing::run_moelab("bench --shape small --precision f16");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--precision"), std::string::npos) << r.output;
}

TEST(Bench, ReportsPeakMemoryPerToken) {
  const auto j = bench("");
  ASSERT_FALSE(j.is_discarded());
  // The process holds at least the parameters, their gradients and AdamW's two moments in f32.
  const double params_mb = 4.0 * 4 * (8192 * 32 * 2) / 1e6;  // embedding and LM head alone
  EXPECT_GT(j["max_rss_mb"].get<double>(), params_mb);
  EXPECT_NEAR(j["max_rss_kb_per_token"].get<double>(), j["max_rss_mb"].get<double>() * 1024 / 64, 1e-6);
}

}  // namespace
}  // namespace moelab
