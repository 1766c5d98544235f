// The memory estimate: its parameter and tensor counts agree with the ParamTable the model is built from, its
// total is close to what a training step really takes, and a config beyond the machine is refused by name.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "model/config.h"
#include "model/memory_estimate.h"
#include "model/param_table.h"
#include "support/errors.h"

namespace moelab {
namespace {

const std::string kConfigs = std::string(MOELAB_TEST_DIR) + "/../configs";

void expect_counts_match_the_table(const Config& cfg, const std::string& what) {
  const ParamTable table(cfg);
  const MemoryEstimate e = estimate_memory(cfg, MemoryUse::Count);
  EXPECT_EQ(e.params, static_cast<double>(table.total_numel())) << what;
  EXPECT_EQ(e.tensors, static_cast<double>(table.specs().size())) << what;
}

TEST(MemoryEstimate, CountsTheParametersAndTensorsOfTheTable) {
  for (const auto& entry : std::filesystem::directory_iterator(kConfigs)) {
    if (entry.path().extension() != ".toml") continue;
    Config cfg = load_config(entry.path().string());
    cfg.model.vocab_size = 8192;
    expect_counts_match_the_table(cfg, entry.path().string());
  }
  Config cfg;
  cfg.model.vocab_size = 500, cfg.model.n_layers = 7, cfg.model.n_kv_heads = 2, cfg.model.tie_embeddings = true;
  cfg.moe.first_dense_layers = 1, cfg.moe.moe_every = 2, cfg.moe.n_shared_experts = 2, cfg.moe.dense_hidden = 300;
  cfg.routing.bias_update_rate = 1e-3;
  validate(cfg);
  expect_counts_match_the_table(cfg, "dense layers, shared experts, grouped-query attention, tied head, bias");
  cfg.routing.router = RouterKind::Hash, cfg.routing.bias_update_rate = 0;
  validate(cfg);
  expect_counts_match_the_table(cfg, "hash router");
  // The imported architectures' layers: wide heads with per-head q/k norms, biases, a gated shared expert, a layer
  // made dense by the list (3: MoE by the rhythm) and one the list names that the rhythm already makes dense (2).
  cfg.routing.router = RouterKind::Learned;
  cfg.model.head_dim = 48, cfg.model.qk_norm = QkNorm::PerHead, cfg.model.qkv_bias = true;
  cfg.moe.shared_expert_gate = true, cfg.moe.dense_layers = {2, 3};
  validate(cfg);
  expect_counts_match_the_table(cfg, "head_dim, per-head q/k norm, q/k/v biases, gated shared experts, dense_layers");
  cfg.model.qk_norm = QkNorm::Whole;
  validate(cfg);
  expect_counts_match_the_table(cfg, "whole q/k norm");
}

// `moelab bench`'s default shape (d 256, 4 layers, 8 experts top-2, vocab 8192, 8 x 256 tokens) peaks at 365 KB
// of resident memory per token of a training step (docs/performance.md): 747 MB, code and libraries included.
TEST(MemoryEstimate, ATrainingStepOfTheDefaultShapeIsCloseToItsMeasuredPeak) {
  Config cfg;
  cfg.model.vocab_size = 8192;
  validate(cfg);
  const double mb = estimate_memory(cfg, MemoryUse::Training).total_bytes() / 1e6;
  EXPECT_GT(mb, 600);
  EXPECT_LT(mb, 800);
  EXPECT_LT(estimate_memory(cfg, MemoryUse::Inference).total_bytes(), mb * 1e6);
  EXPECT_LT(estimate_memory(cfg, MemoryUse::Model).total_bytes(),
            estimate_memory(cfg, MemoryUse::Inference).total_bytes());
}

TEST(MemoryEstimate, AConfigBeyondTheMachineIsRefusedNamingItsSizes) {
  ASSERT_GT(machine_memory_bytes(), 0) << "/proc/meminfo has no MemTotal";
  Config cfg;
  cfg.source = "big.toml";
  cfg.model.vocab_size = 8192;
  EXPECT_NO_THROW(check_memory_fits(cfg, MemoryUse::Training));
  cfg.moe.n_experts = 10'000'000;  // 22T parameters
  validate(cfg);
  const std::string message = testing::error_of([&] { check_memory_fits(cfg, MemoryUse::Training); });
  EXPECT_CONTAINS(message, "config big.toml: this config needs about");
  EXPECT_CONTAINS(message, "to train:");
  EXPECT_CONTAINS(message, "this machine has");
  EXPECT_CONTAINS(message, "moe.n_experts = 10000000");
}

TEST(MemoryEstimate, SizesBeyondA64BitCountAreInvalid) {
  Config cfg;
  cfg.source = "absurd.toml";
  cfg.model.d_model = 4'000'000'000;
  EXPECT_CONTAINS(testing::error_of([&] { validate(cfg); }), "more than a 64-bit size can count");
  cfg = Config{};
  cfg.moe.n_experts = 4'000'000'000'000'000'000;
  EXPECT_CONTAINS(testing::error_of([&] { validate(cfg); }), "more than a 64-bit size can count");
}

}  // namespace
}  // namespace moelab
