// Training end to end on a small synthetic corpus (a random bigram chain: learnable, and fast):
// the loss falls, runs are bit-identical, a resumed run equals an uninterrupted one, checkpoints round-trip,
// and bad inputs (corrupt checkpoints, vocab mismatch, a NaN loss) stop with a clear error and lose nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "data/token_file.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/model.h"
#include "support/errors.h"
#include "support/synthetic_data.h"
#include "support/temp_dir.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace moelab {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kVocab = 64;

class Training : public ::testing::Test {
 protected:
  void SetUp() override { testing::write_bigram_data_folder(dir.file("data"), kVocab); }

  Config config(const std::string& out) const {
    Config cfg;
    cfg.data.dir = dir.file("data");
    cfg.model.d_model = 32, cfg.model.n_layers = 2, cfg.model.n_heads = 2, cfg.model.max_seq_len = 16;
    cfg.moe.n_experts = 4, cfg.moe.expert_hidden = 32;
    cfg.train.seq_len = 16, cfg.train.batch_size = 4, cfg.train.grad_accum = 2, cfg.train.steps = 40;
    cfg.train.lr = 3e-3, cfg.train.warmup_steps = 5;
    cfg.train.eval_every = 20, cfg.train.eval_tokens = 512, cfg.train.checkpoint_every = 20;
    cfg.train.log_every = 1, cfg.train.out_dir = dir.file(out);
    validate(cfg);
    return cfg;
  }

  static std::vector<nlohmann::json> records(const std::string& run, const std::string& type) {
    std::ifstream in(run + "/metrics.jsonl");
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      if (j["type"] == type) out.push_back(j);
    }
    return out;
  }

  // In bf16 this also checks the weights' rounded copy: written by the optimizer in the uninterrupted run, made
  // from the loaded weights after the resume; the same bits either way.
  void expect_resume_continues_exactly(const std::string& precision) {
    auto with_precision = [&](const std::string& out) {
      Config cfg = config(out);
      cfg.train.precision = parse_design<Precision>(precision, "precision");
      return cfg;
    };
    train(with_precision("full"), "");
    // A run that stopped after its step-20 checkpoint: its folder holds only that checkpoint.
    const fs::path half = dir.file("half");
    fs::create_directories(half / "checkpoints");
    fs::copy(dir.file("full") + "/checkpoints/step-00000020", half / "checkpoints/step-00000020");
    std::ofstream(half / "checkpoints/latest") << "step-00000020\n";
    train(with_precision("half"), half.string());
    const auto full = records(dir.file("full"), "train"), resumed = records(half.string(), "train");
    ASSERT_EQ(resumed.size(), 20u);
    for (size_t i = 0; i < 20; ++i) EXPECT_EQ(resumed[i]["loss"].get<double>(), full[20 + i]["loss"].get<double>());
    EXPECT_EQ(testing::read_all(resolve_checkpoint(dir.file("full")) + "/model.safetensors"),
              testing::read_all(resolve_checkpoint(half.string()) + "/model.safetensors"));
  }

  testing::TempDir dir;
};

TEST_F(Training, LossFallsAndEvaluationsAreLogged) {
  const TrainOutcome out = train(config("run"), "");
  const auto steps = records(dir.file("run"), "train");
  ASSERT_EQ(steps.size(), 40u);
  EXPECT_NEAR(steps.front()["ce_loss"].get<double>(), std::log(static_cast<double>(kVocab)), 0.3);
  EXPECT_LT(steps.back()["ce_loss"].get<double>(), steps.front()["ce_loss"].get<double>() - 1.0);
  const auto evals = records(dir.file("run"), "eval");
  ASSERT_EQ(evals.size(), 2u);  // at step 20 and at the end
  EXPECT_EQ(evals[1]["step"], 40);
  EXPECT_NEAR(evals[1]["loss"].get<double>(), out.final_val_loss, 1e-12);
  EXPECT_TRUE(evals[1]["per_label"]["genre"].contains("even"));
  const auto& routing = steps.back()["routing"];
  ASSERT_EQ(routing.size(), 2u);  // one object per MoE layer
  EXPECT_EQ(routing[0]["expert_fraction"].size(), 4u);
  double fraction_sum = 0;
  for (double f : routing[1]["expert_fraction"]) fraction_sum += f;
  EXPECT_NEAR(fraction_sum, 2.0, 1e-9);  // top-2: every token reaches two experts
  EXPECT_NEAR(routing[1]["mean_experts_per_token"].get<double>(), 2.0, 1e-12);
  EXPECT_GT(routing[1]["mean_entropy"].get<double>(), 0.0);
  EXPECT_EQ(evals[1]["routing"].size(), 2u);  // evaluations carry the statistics too
  for (const auto& e : evals) {               // and each expert's raw gradient norm at the step before them
    ASSERT_EQ(e["expert_grad_norm"].size(), 2u);
    EXPECT_EQ(e["expert_grad_norm"][1]["layer"], 1);
    ASSERT_EQ(e["expert_grad_norm"][1]["norms"].size(), 4u);
    for (double n : e["expert_grad_norm"][1]["norms"]) EXPECT_GT(n, 0.0);
  }
}

TEST_F(Training, SameSeedGivesBitIdenticalRuns) {
  train(config("a"), "");
  train(config("b"), "");
  const auto a = records(dir.file("a"), "train"), b = records(dir.file("b"), "train");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["loss"].get<double>(), b[i]["loss"].get<double>()) << i;
  EXPECT_EQ(testing::read_all(resolve_checkpoint(dir.file("a")) + "/model.safetensors"),
            testing::read_all(resolve_checkpoint(dir.file("b")) + "/model.safetensors"));
}

TEST_F(Training, ResumeContinuesExactlyAsAnUninterruptedRun) { expect_resume_continues_exactly("f32"); }
TEST_F(Training, ResumeContinuesExactlyInBf16) { expect_resume_continues_exactly("bf16"); }

TEST_F(Training, CheckpointRoundTripRestoresTheModel) {
  Config cfg = config("rt");
  cfg.model.vocab_size = kVocab;
  Model a(cfg);
  a.init_params(5);
  OptimizerState opt{std::vector<float>(a.params().size(), 0.5f), std::vector<float>(a.params().size(), 0.25f)};
  const std::string ckpt = save_checkpoint(cfg.train.out_dir, a, opt, TrainState{7, 700});
  Model b(load_checkpoint_config(ckpt));
  load_model_weights(ckpt, b);
  EXPECT_EQ(a.params(), b.params());
  OptimizerState opt2;
  TrainState st;
  load_training_state(ckpt, b, opt2, st);
  EXPECT_EQ(opt2.exp_avg, opt.exp_avg);
  EXPECT_EQ(opt2.exp_avg_sq, opt.exp_avg_sq);
  EXPECT_EQ(st.step, 7);
  EXPECT_EQ(st.tokens_seen, 700);
  EXPECT_EQ(resolve_checkpoint(cfg.train.out_dir), ckpt);
}

// Runs f, expects a moelab::Error whose message contains every one of the fragments.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  const std::string message = testing::error_of(f);
  for (const auto& fragment : fragments) EXPECT_CONTAINS(message, fragment);
}

TEST_F(Training, CorruptOrMismatchedCheckpointsAreRefusedByName) {
  Config cfg = config("bad");
  cfg.model.vocab_size = kVocab;
  Model m(cfg);
  m.init_params(1);
  OptimizerState opt{std::vector<float>(m.params().size()), std::vector<float>(m.params().size())};
  const std::string ckpt = save_checkpoint(cfg.train.out_dir, m, opt, TrainState{1, 1});
  const std::string weights = ckpt + "/model.safetensors";
  const std::string good = testing::read_all(weights);

  testing::write_all(weights, good.substr(0, good.size() / 2));  // truncated
  expect_error([&] { load_model_weights(ckpt, m); }, {"model.safetensors"});
  testing::write_all(weights, good);

  Config other = cfg;  // a checkpoint of another shape
  other.moe.expert_hidden = 16;
  Model wrong(other);
  expect_error([&] { load_model_weights(ckpt, wrong); }, {"model.safetensors", "expected shape"});

  expect_error([&] { load_checkpoint_config(dir.file("nowhere")); }, {"nowhere"});
  expect_error([&] { resolve_checkpoint(dir.file("nowhere")); }, {"nowhere", "not a checkpoint"});
}

TEST_F(Training, VocabMismatchBetweenConfigAndDataIsAnError) {
  Config cfg = config("vocab");
  cfg.model.vocab_size = kVocab + 1;
  expect_error([&] { train(cfg, ""); }, {"vocab mismatch", std::to_string(kVocab)});
}

TEST_F(Training, ResumingFromNonFiniteWeightsIsRefusedNamingTheTensorAndKeepsTheCheckpoint) {
  train(config("nan"), "");
  const std::string ckpt = resolve_checkpoint(dir.file("nan"));
  // Poison one weight of the last checkpoint and resume for more steps: the first resumed step must fail.
  Config cfg = load_checkpoint_config(ckpt);
  Model m(cfg);
  load_model_weights(ckpt, m);
  m.mutable_params()[m.table().find("model.norm.weight").offset] = std::numeric_limits<float>::quiet_NaN();
  OptimizerState opt;
  TrainState st;
  load_training_state(ckpt, m, opt, st);
  const std::string poisoned = save_checkpoint(dir.file("poisoned"), m, opt, st);
  const std::string before = testing::read_all(poisoned + "/model.safetensors");
  Config more = config("poisoned");
  more.train.steps = 60;
  expect_error([&] { train(more, dir.file("poisoned")); }, {poisoned, "'model.norm.weight'", "nan"});
  EXPECT_EQ(testing::read_all(resolve_checkpoint(dir.file("poisoned")) + "/model.safetensors"), before);
}

// A learning rate that blows the weights up in one update: the loss is still finite at that step, so the
// checkpoint written after it holds the exploded weights and the next step's loss is not finite. The message must
// not call that checkpoint good, but the one before it, whose weights trained a step with a finite loss.
TEST_F(Training, NonFiniteLossStopsNamingTheStepAndTheLastCheckpointWhoseWeightsGaveAFiniteLoss) {
  train(config("run"), "");  // 40 steps, a checkpoint at 20 and 40
  Config more = config("run");
  more.train.steps = 60, more.train.lr = 1e10, more.train.checkpoint_every = 1, more.train.eval_every = 0;
  const std::string message = testing::error_of([&] { train(more, dir.file("run")); });
  EXPECT_CONTAINS(message, "step 42: the loss is");
  EXPECT_CONTAINS(message, "last good checkpoint (whose weights then gave a finite loss and gradient) is " +
                               checkpoint_folder(dir.file("run"), 40));
  EXPECT_CONTAINS(message, checkpoint_folder(dir.file("run"), 41) + " holds the weights that gave this value");
}

}  // namespace
}  // namespace moelab
