// The whole model against an independent implementation: tests/oracle/torch_model.py (PyTorch, float64) builds
// the same model from the same safetensors weights; logits, losses and every parameter gradient must agree with
// moelab's f32 forward/backward to a relative error of 1e-4 (scale-relative, see support/gradcheck.h).
// Needs Debian's python3-torch, which the test command installs: without it this test fails, it is not skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/model.h"
#include "support/gradcheck.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

struct OracleCase {
  std::string name;
  int64_t n_kv_heads = 0;
  bool renormalize = false;
  bool tie_embeddings = false;
  int64_t first_dense_layers = 0;
  int64_t moe_every = 1;
  std::string rule = "top_k";
  std::string granularity = "token";
  std::string router = "learned";
  int64_t max_k = 0;
  int64_t head_dim = 0;
  std::string qk_norm = "none";
  bool qkv_bias = false;
  double clip_qkv = 0;
  int64_t n_shared_experts = 0;
  bool shared_expert_gate = false;
  std::vector<int64_t> dense_layers = {};
};

void PrintTo(const OracleCase& c, std::ostream* os) { *os << c.name; }  // readable test names in ctest

Config small_config(const OracleCase& c) {
  Config cfg;
  cfg.model.vocab_size = 97;
  cfg.model.d_model = 48;
  cfg.model.n_layers = 3;
  cfg.model.n_heads = 4;
  cfg.model.n_kv_heads = c.n_kv_heads;
  cfg.model.tie_embeddings = c.tie_embeddings;
  cfg.model.max_seq_len = 16;
  cfg.moe.n_experts = 5;
  cfg.moe.expert_hidden = 40;
  cfg.moe.first_dense_layers = c.first_dense_layers;
  cfg.moe.moe_every = c.moe_every;
  cfg.model.head_dim = c.head_dim;
  cfg.model.qk_norm = parse_design<QkNorm>(c.qk_norm, "qk_norm");
  cfg.model.qkv_bias = c.qkv_bias;
  cfg.model.clip_qkv = c.clip_qkv;
  cfg.moe.n_shared_experts = c.n_shared_experts;
  cfg.moe.shared_expert_hidden = 16;
  cfg.moe.shared_expert_gate = c.shared_expert_gate;
  cfg.moe.dense_layers = c.dense_layers;
  cfg.routing.top_k = 2;
  cfg.routing.renormalize = c.renormalize;
  cfg.routing.load_balance_coef = 0.05;  // larger than the default so the aux gradients are well above noise
  cfg.routing.z_loss_coef = 0.01;
  cfg.routing.dynamic_loss_coef = 0.02;
  cfg.routing.rule = parse_design<SelectionRule>(c.rule, "rule");
  cfg.routing.top_p = 0.6;
  cfg.routing.max_k = c.max_k;
  cfg.routing.granularity = parse_design<Granularity>(c.granularity, "granularity");
  cfg.routing.router = parse_design<RouterKind>(c.router, "router");
  cfg.train.seq_len = 16;
  cfg.train.batch_size = 3;
  return cfg;
}

// Runs the oracle; returns its outputs. Any failure of the script fails the test with its exit status.
SafetensorsFile run_oracle(const testing::TempDir& dir) {
  const std::string script = std::string(MOELAB_TEST_DIR) + "/oracle/torch_model.py";
  const std::string cmd = "/usr/bin/python3 " + script + " --checkpoint " + dir.path().string() + " --tokens " +
                          dir.file("tokens.safetensors") + " --out " + dir.file("oracle.safetensors") +
                          " --dtype float64 2> " + dir.file("oracle.log");
  const int status = std::system(cmd.c_str());
  EXPECT_EQ(status, 0) << "the PyTorch oracle failed (is python3-torch installed?): "
                       << testing::read_all(dir.file("oracle.log"));
  return SafetensorsFile::open(dir.file("oracle.safetensors"));
}

std::vector<double> read_f64(const SafetensorsFile& f, const std::string& name) {
  const auto& info = f.info(name);
  int64_t n = 1;
  for (int64_t s : info.shape) n *= s;
  std::vector<double> out(n);
  f.read(name, DType::F64, info.shape, out.data());
  return out;
}

class ModelVsTorch : public ::testing::TestWithParam<OracleCase> {};

TEST_P(ModelVsTorch, LogitsLossAndEveryGradientMatch) {
  const OracleCase c = GetParam();
  const Config cfg = small_config(c);
  validate(cfg);
  Model model(cfg);
  model.init_params(7);
  // Spread the router logits so that no top-k choice is a near-tie that float rounding could flip.
  for (const auto& spec : model.table().specs())
    if (spec.group == ParamGroup::Router)
      for (int64_t i = 0; i < spec.numel; ++i) model.mutable_params()[spec.offset + i] *= 40.0f;
  // Biases start at 0 and q/k norm gains at 1: moved, so that a bias or gain read in the wrong place shows.
  Rng perturb(13, 0);
  for (const auto& spec : model.table().specs())
    if (spec.name.ends_with(".bias") || spec.name.ends_with("q_norm.weight") || spec.name.ends_with("k_norm.weight"))
      for (int64_t i = 0; i < spec.numel; ++i)
        model.mutable_params()[spec.offset + i] += static_cast<float>(0.3 * (perturb.uniform() - 0.5));

  const int64_t B = cfg.train.batch_size, T = cfg.train.seq_len, V = cfg.model.vocab_size;
  std::vector<int32_t> tokens(B * (T + 1)), inputs(B * T), targets(B * T);
  Rng rng(11, 0);
  for (auto& t : tokens) t = static_cast<int32_t>(rng.below(V));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      inputs[b * T + t] = tokens[b * (T + 1) + t];
      targets[b * T + t] = tokens[b * (T + 1) + t + 1];
    }

  testing::TempDir dir;
  std::vector<TensorView> views;
  for (const auto& spec : model.table().specs())
    views.push_back({spec.name, DType::F32, spec.shape, model.params().data() + spec.offset});
  write_safetensors(dir.file("model.safetensors"), views);
  write_file_atomic(dir.file("config.json"), config_to_json(cfg).dump(2));
  const std::vector<TensorView> token_view = {{"tokens", DType::I32, {B, T + 1}, tokens.data()}};
  write_safetensors(dir.file("tokens.safetensors"), token_view);

  const Losses losses = model.forward(inputs.data(), targets.data(), B, T);
  const std::vector<float> logits(model.logits(), model.logits() + B * T * V);
  model.zero_grads();
  model.backward(1.0);

  const SafetensorsFile oracle = run_oracle(dir);
  EXPECT_LT(testing::max_rel_error(logits, read_f64(oracle, "logits")), 1e-4) << "logits";
  EXPECT_NEAR(losses.total, read_f64(oracle, "loss")[0], 1e-4 * std::abs(losses.total)) << "total loss";
  EXPECT_NEAR(losses.ce, read_f64(oracle, "ce_loss")[0], 1e-4 * losses.ce) << "cross-entropy";
  EXPECT_NEAR(losses.load_balance, read_f64(oracle, "load_balance_loss")[0], 1e-4 * losses.load_balance + 1e-9);
  EXPECT_NEAR(losses.z_loss, read_f64(oracle, "z_loss")[0], 1e-4 * losses.z_loss + 1e-9);
  EXPECT_NEAR(losses.entropy, read_f64(oracle, "entropy_loss")[0], 1e-4 * losses.entropy + 1e-9);
  for (const auto& spec : model.table().specs()) {
    if (!spec.trainable) continue;  // frozen/resampled routers: moelab computes no gradient for them
    const std::vector<float> grad(model.grads().begin() + spec.offset,
                                  model.grads().begin() + spec.offset + spec.numel);
    EXPECT_LT(testing::max_rel_error(grad, read_f64(oracle, "grad." + spec.name)), 1e-4) << spec.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, ModelVsTorch,
    ::testing::Values(
        OracleCase{.name = "mha_renormalized", .renormalize = true},
        OracleCase{.name = "gqa_raw_weights_tied", .n_kv_heads = 2, .tie_embeddings = true},
        OracleCase{.name = "dense_first_then_every_other",
                   .n_kv_heads = 1,
                   .renormalize = true,
                   .first_dense_layers = 1,
                   .moe_every = 2},
        OracleCase{.name = "top_p", .rule = "top_p"},
        OracleCase{
            .name = "top_p_max_k2_prefix", .n_kv_heads = 2, .rule = "top_p", .granularity = "prefix", .max_k = 2},
        OracleCase{.name = "sequence_top2", .renormalize = true, .granularity = "sequence"},
        OracleCase{.name = "sequence_top_p_frozen", .rule = "top_p", .granularity = "sequence", .router = "frozen"},
        // renormalize = false: this rule always normalises over its k.
        OracleCase{.name = "top_k_then_softmax_prefix", .rule = "top_k_then_softmax", .granularity = "prefix"},
        // The layers of the imported architectures, in a model moelab trains.
        OracleCase{.name = "head_dim_per_head_qk_norm",
                   .n_kv_heads = 2,
                   .renormalize = true,
                   .head_dim = 16,
                   .qk_norm = "per_head"},
        OracleCase{.name = "whole_qk_norm_clip_qkv", .qk_norm = "whole", .clip_qkv = 1.5},
        OracleCase{.name = "qkv_bias_gated_shared_dense_layer",
                   .n_kv_heads = 2,
                   .qkv_bias = true,
                   .n_shared_experts = 2,
                   .shared_expert_gate = true,
                   .dense_layers = {1}}),
    [](const ::testing::TestParamInfo<OracleCase>& info) { return info.param.name; });

}  // namespace
}  // namespace moelab
