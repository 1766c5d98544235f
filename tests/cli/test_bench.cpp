// `moelab bench`: one step timed op by op. The JSON names every op of a training step (optimizer included), its
// times add up to no more than the step, each GEMM's FLOP count and the model FLOPs match what the shape gives,
// and --forward times inference only; --precision picks the GEMM precision; peak memory per token is reported.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
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

// The small shape of kSmall, and the vocabulary bench takes when a config leaves it to the data (8192): what the
// FLOP counts below are worked out from.
constexpr double kTokens = 64, kD = 32, kLayers = 2, kExperts = 4, kHidden = 32, kTopK = 2, kT = 32, kVocab = 8192;

TEST(Bench, TrainingStepOpByOp) {
  const auto j = bench("");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["mode"], "train");
  EXPECT_EQ(j["tokens_per_step"], 64);
  std::map<std::string, nlohmann::json> ops;
  double op_seconds = 0;
  for (const auto& op : j["ops"]) {
    ops[op["op"].get<std::string>()] = op;
    op_seconds += op["seconds_per_step"].get<double>();
    EXPECT_GE(op["seconds_per_step"].get<double>(), 0);
  }
  for (const char* name : {"fwd lm_head", "bwd lm_head", "fwd ffn.gate_up_proj", "bwd attention.core",
                           "optimizer (AdamW)", "clip_grad_norm", "fwd moe.routing"})
    EXPECT_TRUE(ops.count(name)) << name;
  // The ops are timed inside the step, one after another: together they cannot take longer than it.
  EXPECT_LE(op_seconds, j["step_seconds"].get<double>() * 1.0001);

  // Each GEMM's FLOPs, 2 x M x N x K, from the shape; a backward does twice its forward (input and weight
  // gradients). Experts: each token's top-2 slots, in 4 experts per layer.
  const double slots = kTokens * kTopK;
  const std::map<std::string, std::pair<double, double>> gemms = {
      // op: {FLOPs per step, calls per step}
      {"fwd attention.qkv_proj", {2 * kTokens * kD * 3 * kD * kLayers, kLayers}},
      {"fwd attention.out_proj", {2 * kTokens * kD * kD * kLayers, kLayers}},
      // Causal: QK^T and PV over the T(T+1)/2 visible pairs of each of the 2 sequences.
      {"fwd attention.core", {2 * 2 * (kT * (kT + 1) / 2) * kD * 2 * kLayers, kLayers}},
      {"fwd moe.routing", {2 * kTokens * kD * kExperts * kLayers, kLayers}},
      {"fwd ffn.gate_up_proj", {2 * slots * kD * 2 * kHidden * kLayers, kExperts * kLayers}},
      {"fwd ffn.down_proj", {2 * slots * kHidden * kD * kLayers, kExperts * kLayers}},
      {"fwd lm_head", {2 * kTokens * kD * kVocab, 1}},
  };
  for (const auto& [name, want] : gemms) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(ops.count(name));
    EXPECT_DOUBLE_EQ(ops[name]["gflop_per_step"].get<double>() * 1e9, want.first);
    EXPECT_EQ(ops[name]["calls_per_step"].get<double>(), want.second);
    const std::string backward = "bwd " + name.substr(4);
    ASSERT_TRUE(ops.count(backward));
    EXPECT_DOUBLE_EQ(ops[backward]["gflop_per_step"].get<double>() * 1e9, 2 * want.first);
  }

  // Model FLOPs, as the PyTorch peer counts them: 6 x the active matmul parameters per token (attention
  // projections 4d^2, router dE and top-2 experts of 3dh each per layer, the LM head dV) plus 12 L T d.
  const double active = kLayers * (4 * kD * kD + kD * kExperts + kTopK * 3 * kD * kHidden) + kD * kVocab;
  const double model_flops = kTokens * (6 * active + 12 * kLayers * kT * kD);
  EXPECT_NEAR(j["model_gflops"].get<double>() * 1e9 * j["step_seconds"].get<double>(), model_flops, 1e-9 * model_flops);
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
  EXPECT_GT(j["max_rss_kb_per_token"].get<double>(), params_mb * 1e3 / 64);
}

}  // namespace
}  // namespace moelab
