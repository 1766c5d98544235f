#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <string>

#include "core/error.h"
#include "model/config.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

namespace fs = std::filesystem;

using testing::error_of;

using testing::read_all;
using testing::TempDir;
using testing::write_all;

// Loads TOML text written to a temporary file; returns the config (or throws).
struct TomlFile {
  TempDir dir;
  std::string path = dir.file("run.toml");
  explicit TomlFile(const std::string& text) { write_all(path, text); }
  Config load(const std::vector<std::string>& overrides = {}) const { return load_config(path, overrides); }
  std::string error(const std::vector<std::string>& overrides = {}) const {
    return error_of([&] { load(overrides); });
  }
};

// Every field set to a value other than its default, written by hand (independent of the field table).
const char* kFullToml = R"(
[data]
dir = "data/other"

[model]
vocab_size = 5000
d_model = 96
n_layers = 3
n_heads = 6
n_kv_heads = 2
head_dim = 32
qk_norm = "per_head"
qkv_bias = true
clip_qkv = 8.0
rope_theta = 500000.0
rms_eps = 1e-5
init_std = 0.01
tie_embeddings = true
max_seq_len = 512

[moe]
n_experts = 16
expert_hidden = 128
first_dense_layers = 1
moe_every = 2
dense_hidden = 300
n_shared_experts = 2
shared_expert_hidden = 48
shared_expert_gate = true
dense_layers = [2]

[routing]
router = "frozen"
gating = "sigmoid"
rule = "top_p"
top_k = 1
renormalize = false
top_p = 0.6
max_k = 3
granularity = "sequence"
capacity_factor = 1.25
load_balance_coef = 0.02
z_loss_coef = 0
dynamic_loss_coef = 0.0001
bias_update_rate = 0.0

[train]
seq_len = 128
batch_size = 4
grad_accum = 3
steps = 1000
lr = 3e-4
min_lr_ratio = 0.0
warmup_steps = 20
weight_decay = 0.05
beta1 = 0.8
beta2 = 0.99
adam_eps = 1e-9
decay_norms = true
decay_router = false
decay_embeddings = false
grad_clip = 0.5
seed = 42
eval_every = 7
eval_tokens = 4096
checkpoint_every = 11
log_every = 1
out_dir = "runs/other"
threads = 2
precision = "bf16"
)";

// `folder`: that of the file kFullToml was read from, which its relative paths are read against.
void expect_full_values(const Config& c, const fs::path& folder) {
  EXPECT_EQ(c.data.dir, (folder / "data/other").string());
  EXPECT_EQ(c.model.vocab_size, 5000);
  EXPECT_EQ(c.model.d_model, 96);
  EXPECT_EQ(c.model.n_layers, 3);
  EXPECT_EQ(c.model.n_heads, 6);
  EXPECT_EQ(c.model.n_kv_heads, 2);
  EXPECT_EQ(c.model.head_dim, 32);
  EXPECT_EQ(c.model.qk_norm, QkNorm::PerHead);
  EXPECT_TRUE(c.model.qkv_bias);
  EXPECT_EQ(c.model.clip_qkv, 8.0);
  EXPECT_EQ(c.model.rope_theta, 500000.0);
  EXPECT_EQ(c.model.rms_eps, 1e-5);
  EXPECT_EQ(c.model.init_std, 0.01);
  EXPECT_TRUE(c.model.tie_embeddings);
  EXPECT_EQ(c.model.max_seq_len, 512);
  EXPECT_EQ(c.moe.n_experts, 16);
  EXPECT_EQ(c.moe.expert_hidden, 128);
  EXPECT_EQ(c.moe.first_dense_layers, 1);
  EXPECT_EQ(c.moe.moe_every, 2);
  EXPECT_EQ(c.moe.dense_hidden, 300);
  EXPECT_EQ(c.moe.n_shared_experts, 2);
  EXPECT_EQ(c.moe.shared_expert_hidden, 48);
  EXPECT_TRUE(c.moe.shared_expert_gate);
  EXPECT_EQ(c.moe.dense_layers, std::vector<int64_t>{2});
  EXPECT_EQ(c.routing.router, RouterKind::Frozen);
  EXPECT_EQ(c.routing.gating, Gating::Sigmoid);
  EXPECT_EQ(c.routing.rule, SelectionRule::TopP);
  EXPECT_EQ(c.routing.top_k, 1);
  EXPECT_FALSE(c.routing.renormalize);
  EXPECT_EQ(c.routing.top_p, 0.6);
  EXPECT_EQ(c.routing.max_k, 3);
  EXPECT_EQ(c.routing.dynamic_loss_coef, 1e-4);
  EXPECT_EQ(c.routing.granularity, Granularity::Sequence);
  EXPECT_EQ(c.routing.capacity_factor, 1.25);
  EXPECT_EQ(c.routing.load_balance_coef, 0.02);
  EXPECT_EQ(c.routing.z_loss_coef, 0.0);
  EXPECT_EQ(c.train.seq_len, 128);
  EXPECT_EQ(c.train.batch_size, 4);
  EXPECT_EQ(c.train.grad_accum, 3);
  EXPECT_EQ(c.train.steps, 1000);
  EXPECT_EQ(c.train.lr, 3e-4);
  EXPECT_EQ(c.train.min_lr_ratio, 0.0);
  EXPECT_EQ(c.train.warmup_steps, 20);
  EXPECT_EQ(c.train.weight_decay, 0.05);
  EXPECT_EQ(c.train.beta1, 0.8);
  EXPECT_EQ(c.train.beta2, 0.99);
  EXPECT_EQ(c.train.adam_eps, 1e-9);
  EXPECT_TRUE(c.train.decay_norms);
  EXPECT_FALSE(c.train.decay_router);
  EXPECT_FALSE(c.train.decay_embeddings);
  EXPECT_EQ(c.train.grad_clip, 0.5);
  EXPECT_EQ(c.train.seed, 42u);
  EXPECT_EQ(c.train.eval_every, 7);
  EXPECT_EQ(c.train.eval_tokens, 4096);
  EXPECT_EQ(c.train.checkpoint_every, 11);
  EXPECT_EQ(c.train.log_every, 1);
  EXPECT_EQ(c.train.out_dir, (folder / "runs/other").string());
  EXPECT_EQ(c.train.threads, 2);
  EXPECT_EQ(c.train.precision, Precision::Bf16);
}

TEST(ConfigFields, OneEntryPerStructFieldWithUniqueNames) {
  // 60 fields in include/moelab/config.h; kFullToml sets each once. Update all three together.
  const auto& fields = config_fields();
  EXPECT_EQ(fields.size(), 60u);
  std::set<std::string> names;
  for (const auto& f : fields) {
    EXPECT_TRUE(names.insert(f.name()).second) << f.name();
    EXPECT_FALSE(f.doc.empty()) << f.name();
  }
  // Every field is reachable from TOML: the full file mentions each name once.
  const toml::table full = toml::parse(kFullToml);
  for (const auto& f : fields) EXPECT_TRUE(full[f.section][f.key]) << f.name() << " missing from kFullToml";
}

TEST(Config, EmptyFileGivesDefaults) {
  TomlFile file("# nothing set\n");
  const Config c = file.load();
  EXPECT_EQ(c.source, file.path);
  EXPECT_TRUE(same_settings(c, Config{}));
  EXPECT_EQ(c.model.d_model, 256);
  EXPECT_EQ(c.model.n_layers, 4);
  EXPECT_EQ(c.moe.n_experts, 8);
  EXPECT_EQ(c.routing.top_k, 2);
  EXPECT_EQ(c.routing.rule, SelectionRule::TopK);
  EXPECT_EQ(c.train.lr, 1e-3);
  EXPECT_EQ(c.train.seed, 1234u);
  EXPECT_NO_THROW(validate(c));
}

TEST(Config, FullFileSetsEveryField) {
  const TomlFile file(kFullToml);
  expect_full_values(file.load(), file.dir.path());
}

TEST(Config, MissingKeysKeepDefaults) {
  const Config c = TomlFile("[model]\nd_model = 128\n[train]\nlr = 2\n").load();
  EXPECT_EQ(c.model.d_model, 128);
  EXPECT_EQ(c.train.lr, 2.0);  // an integer is accepted for a float
  EXPECT_EQ(c.model.n_layers, 4);
  EXPECT_EQ(c.train.steps, 600);
  EXPECT_EQ(c.data.dir, "data/brown");
}

TEST(Config, UnknownKeyNamesFileLineAndSuggestion) {
  TomlFile file("[train]\nsteps = 10\nlrr = 3e-4\n");
  EXPECT_CONTAINS(file.error(), "config " + file.path + ":3:1: unknown key 'train.lrr' (did you mean 'train.lr'?)");
}

TEST(Config, UnknownKeySuggestsTheSameKeyInAnotherSection) {
  EXPECT_CONTAINS(TomlFile("[model]\ntop_k = 2\n").error(),
                  "unknown key 'model.top_k' (did you mean 'routing.top_k'?)");
  EXPECT_CONTAINS(TomlFile("lr = 1\n").error(), "unknown key 'lr' (did you mean 'train.lr'?)");
}

TEST(Config, UnknownKeyFarFromEveryNameHasNoSuggestion) {
  const std::string err = TomlFile("[train]\nlearning_rate = 1\n").error();
  EXPECT_CONTAINS(err, "unknown key 'train.learning_rate'");
  EXPECT_EQ(err.find("did you mean"), std::string::npos) << err;
}

TEST(Config, UnknownTableIsAnError) {
  TomlFile file("[trian]\nlr = 1\n");
  EXPECT_CONTAINS(file.error(), "config " + file.path + ":1:");
  EXPECT_CONTAINS(file.error(), "unknown table 'trian' (did you mean 'train'?)");
  EXPECT_CONTAINS(TomlFile("[optimizer]\n").error(), "unknown table 'optimizer'");
  EXPECT_CONTAINS(TomlFile("model = 3\n").error(), "'model' must be a table ([model]), found an integer");
  EXPECT_CONTAINS(TomlFile("[model.sub]\nx = 1\n").error(), "unknown key 'model.sub'");
}

TEST(Config, WrongTypeNamesKeyExpectedAndFound) {
  TomlFile file("[train]\nlr = \"fast\"\n");
  EXPECT_CONTAINS(file.error(), "config " + file.path + ":2:6: key 'train.lr': expected a float, found a string");
  EXPECT_CONTAINS(file.error(), "found a string ('fast')");
  EXPECT_CONTAINS(TomlFile("[model]\ntie_embeddings = 1\n").error(),
                  "key 'model.tie_embeddings': expected a boolean, found an integer (1)");
  EXPECT_CONTAINS(TomlFile("[data]\ndir = 3\n").error(), "key 'data.dir': expected a string, found an integer");
  EXPECT_CONTAINS(TomlFile("[train]\nseed = -1\n").error(),
                  "key 'train.seed': expected a non-negative integer, found an integer (-1)");
  EXPECT_CONTAINS(TomlFile("[model]\nd_model = [256]\n").error(), "expected an integer, found an array");
  EXPECT_CONTAINS(TomlFile("[train]\nsteps = 1979-05-27\n").error(), "expected an integer, found a date");
}

TEST(Config, FloatIsNotAcceptedForAnInteger) {
  EXPECT_CONTAINS(TomlFile("[model]\nd_model = 256.0\n").error(),
                  "key 'model.d_model': expected an integer, found a float (256.0)");
}

TEST(Config, ParseErrorReportsLineAndColumn) {
  TomlFile file("[model]\nd_model = 256\nn_layers = = 4\n");
  const std::string err = file.error();
  EXPECT_CONTAINS(err, "config " + file.path + ":3:");
  EXPECT_CONTAINS(TomlFile("[model]\n[model]\n").error(), ":2:");  // a table defined twice is a TOML error
}

TEST(Config, MissingFileIsNamed) {
  TempDir dir;
  const std::string path = dir.file("absent.toml");
  EXPECT_CONTAINS(error_of([&] { load_config(path, {}); }), "config " + path + ": cannot open");
}

TEST(ConfigOverride, ValuesOfEveryTypeAndBareWords) {
  TomlFile file("[model]\nd_model = 128\n");
  const Config c = file.load({"model.d_model=512", "train.lr=3e-4", "model.tie_embeddings=true",
                              "train.out_dir=\"runs/a b\"", "routing.rule=top_p", "data.dir=data/other-corpus",
                              "routing.capacity_factor=2", " train.steps = 77 ", "train.seed=9", "train.steps=78"});
  EXPECT_EQ(c.model.d_model, 512);  // the override wins over the file
  EXPECT_EQ(c.train.lr, 3e-4);
  EXPECT_TRUE(c.model.tie_embeddings);
  EXPECT_EQ(c.train.out_dir, "runs/a b");
  EXPECT_EQ(c.routing.rule, SelectionRule::TopP);
  EXPECT_EQ(c.data.dir, "data/other-corpus");
  EXPECT_EQ(c.routing.capacity_factor, 2.0);
  EXPECT_EQ(c.train.steps, 78);  // later overrides win
  EXPECT_EQ(c.train.seed, 9u);
  EXPECT_EQ(c.model.n_layers, 4);
}

TEST(ConfigOverride, ErrorsNameTheSetArgument) {
  TomlFile file("");
  EXPECT_CONTAINS(file.error({"train.lrr=1"}), "--set train.lrr=1: unknown key 'train.lrr' (did you mean 'train.lr'?)");
  EXPECT_CONTAINS(file.error({"lr=1"}), "--set lr=1: unknown key 'lr' (did you mean 'train.lr'?)");
  EXPECT_CONTAINS(file.error({"train.lr"}), "--set train.lr: expected section.key=value");
  EXPECT_CONTAINS(file.error({"model.d_model=big"}),
                  "--set model.d_model=big: key 'model.d_model': expected an integer, found a string ('big')");
  EXPECT_CONTAINS(file.error({"model.d_model=2.5"}), "expected an integer, found a float (2.5)");
  EXPECT_CONTAINS(file.error({"data.dir=2024"}),
                  "--set data.dir=2024: key 'data.dir': expected a string, found an integer (2024); quote it");
}

TEST(ConfigOverride, ApplyOverridesAloneWorksOnAnyConfig) {
  Config c;
  apply_overrides(c, {"moe.n_experts=4", "routing.top_k=1"});
  EXPECT_EQ(c.moe.n_experts, 4);
  EXPECT_EQ(c.routing.top_k, 1);
}

struct Rule {
  std::function<void(Config&)> change;
  const char* expected;
};

TEST(ConfigValidate, EachRuleNamesTheKey) {
  const std::vector<Rule> rules = {
      {[](Config& c) { c.model.d_model = 250; }, "model.d_model = 250 must be divisible by model.n_heads = 4"},
      {[](Config& c) { c.model.d_model = 0; }, "model.d_model = 0 must be at least 1"},
      {[](Config& c) { c.model.d_model = 12; }, "model.d_model / model.n_heads = 3 (the head size) must be even"},
      {[](Config& c) { c.model.n_heads = 0; }, "model.n_heads = 0 must be at least 1"},
      {[](Config& c) { c.model.head_dim = 7; }, "model.head_dim = 7 must be even"},
      {[](Config& c) { c.model.head_dim = -2; }, "model.head_dim = -2 must be at least 0"},
      {[](Config& c) { c.model.clip_qkv = -1; }, "model.clip_qkv = -1 must be >= 0"},
      {[](Config& c) { c.moe.shared_expert_gate = true; },
       "moe.shared_expert_gate = true needs shared experts to gate (moe.n_shared_experts > 0)"},
      {[](Config& c) {
         c.moe.dense_layers = {1, 4};
       },
       "moe.dense_layers[1] = 4 must be a layer index between 0 and model.n_layers - 1 = 3"},
      {[](Config& c) {
         c.moe.dense_layers = {2, 2};
       },
       "moe.dense_layers names layer 2 more than once"},
      {[](Config& c) { c.model.n_kv_heads = 3; }, "model.n_heads = 4 must be divisible by model.n_kv_heads = 3"},
      {[](Config& c) { c.model.n_kv_heads = 8; }, "model.n_kv_heads = 8 must be between 0"},
      {[](Config& c) { c.model.vocab_size = -1; }, "model.vocab_size = -1 must be at least 0"},
      {[](Config& c) { c.model.rms_eps = 0; }, "model.rms_eps = 0 must be > 0"},
      {[](Config& c) { c.model.rope_theta = -1; }, "model.rope_theta = -1 must be > 0"},
      {[](Config& c) { c.model.init_std = std::nan(""); }, "model.init_std = nan must be a finite number"},
      {[](Config& c) { c.moe.n_experts = 0; }, "moe.n_experts = 0 must be at least 1"},
      {[](Config& c) { c.moe.first_dense_layers = 5; },
       "moe.first_dense_layers = 5 must be between 0 and model.n_layers = 4"},
      {[](Config& c) { c.moe.moe_every = 0; }, "moe.moe_every = 0 must be at least 1"},
      {[](Config& c) { c.routing.top_k = 0; }, "routing.top_k = 0 must be between 1 and moe.n_experts = 8"},
      {[](Config& c) { c.routing.top_k = 9; }, "routing.top_k = 9 must be between 1 and moe.n_experts = 8"},
      {[](Config& c) { c.routing.load_balance_coef = -0.1; }, "routing.load_balance_coef = -0.1 must be >= 0"},
      {[](Config& c) { c.train.lr = 0; }, "train.lr = 0 must be > 0"},
      {[](Config& c) { c.train.lr = INFINITY; }, "train.lr = inf must be a finite number"},
      {[](Config& c) { c.train.min_lr_ratio = 1.5; }, "train.min_lr_ratio = 1.5 must be between 0 and 1"},
      {[](Config& c) { c.train.warmup_steps = 700; },
       "train.warmup_steps = 700 must be between 0 and train.steps = 600"},
      {[](Config& c) { c.train.batch_size = 0; }, "train.batch_size = 0 must be at least 1"},
      {[](Config& c) { c.train.seq_len = 0; }, "train.seq_len = 0 must be at least 1"},
      {[](Config& c) { c.train.seq_len = 512; }, "train.seq_len = 512 must not exceed model.max_seq_len = 256"},
      {[](Config& c) { c.train.grad_accum = 0; }, "train.grad_accum = 0 must be at least 1"},
      {[](Config& c) { c.train.steps = 0; }, "train.steps = 0 must be at least 1"},
      {[](Config& c) { c.train.beta2 = 1.0; }, "train.beta2 = 1 must be in [0, 1)"},
      {[](Config& c) { c.train.adam_eps = 0; }, "train.adam_eps = 0 must be > 0"},
      {[](Config& c) { c.train.grad_clip = -1; }, "train.grad_clip = -1 must be >= 0"},
      {[](Config& c) { c.train.log_every = 0; }, "train.log_every = 0 must be at least 1"},
      {[](Config& c) { c.train.threads = -2; }, "train.threads = -2 must be at least 0"},
      {[](Config& c) { c.train.out_dir = ""; }, "train.out_dir must not be empty"},
      {[](Config& c) { c.data.dir = ""; }, "data.dir must not be empty"},
  };
  for (const auto& rule : rules) {
    Config c;
    c.source = "configs/x.toml";
    rule.change(c);
    const std::string err = error_of([&] { validate(c); });
    EXPECT_CONTAINS(err, "config configs/x.toml: ");
    EXPECT_CONTAINS(err, rule.expected);
  }
}

TEST(ConfigValidate, AcceptsEdgesOfEachRule) {
  Config c;
  c.model.n_kv_heads = 2;        // grouped-query attention
  c.moe.first_dense_layers = 4;  // every layer dense: a dense baseline
  c.routing.top_k = 8;           // every expert
  c.train.warmup_steps = 600;    // warmup over the whole run
  c.train.min_lr_ratio = 1.0;
  c.train.eval_every = 0;
  EXPECT_NO_THROW(validate(c));
}

TEST(ConfigValidate, BadCombinationsOfDesignsAreRefusedClearly) {
  auto err = [](auto change) {
    Config c;
    c.source = "configs/x.toml";
    change(c);
    return error_of([&] { validate(c); });
  };
  EXPECT_CONTAINS(err([](Config& c) { c.routing.gating = Gating::Sigmoid, c.routing.rule = SelectionRule::TopP; }),
                  "config configs/x.toml: routing.rule = 'top_p' needs routing.gating = 'softmax'");
  EXPECT_CONTAINS(err([](Config& c) { c.routing.gating = Gating::Sigmoid, c.routing.dynamic_loss_coef = 1e-4; }),
                  "routing.dynamic_loss_coef = 0.0001 needs routing.gating = 'softmax'");
  EXPECT_CONTAINS(err([](Config& c) { c.routing.top_p = 0; }), "routing.top_p = 0 must be in (0, 1]");
  EXPECT_CONTAINS(err([](Config& c) { c.routing.top_p = 1.5; }), "routing.top_p = 1.5 must be in (0, 1]");
  EXPECT_CONTAINS(err([](Config& c) { c.routing.top_k = 9; }), "routing.top_k = 9 must be between 1 and");
  EXPECT_CONTAINS(err([](Config& c) { c.routing.max_k = 9; }), "routing.max_k = 9 must be between 0");
  EXPECT_CONTAINS(
      err([](Config& c) { c.routing.rule = SelectionRule::ExpertChoice, c.routing.granularity = Granularity::Prefix; }),
      "routing.rule = 'expert_choice' does not combine with routing.granularity = 'prefix'");
  EXPECT_CONTAINS(err([](Config& c) { c.routing.rule = SelectionRule::TopP, c.routing.capacity_factor = 1.25; }),
                  "routing.capacity_factor = 1.25 needs routing.rule = 'top_k'");
  // A rule that cannot be capped, nor biased by loss-free balancing, says which rules can.
  EXPECT_CONTAINS(
      err([](Config& c) { c.routing.rule = SelectionRule::TopKThenSoftmax, c.routing.capacity_factor = 2; }),
      "routing.capacity_factor = 2 needs routing.rule = 'top_k' (capacity ceil(cf * T * k / E) assumes k "
      "slots per token) or 'expert_choice' (it sets each expert's capacity), found 'top_k_then_softmax'");
  EXPECT_CONTAINS(
      err([](Config& c) { c.routing.rule = SelectionRule::TopKThenSoftmax, c.routing.bias_update_rate = 1e-3; }),
      "routing.bias_update_rate = 0.001 (loss-free balancing) biases a top-k choice: it needs "
      "routing.rule = 'top_k' and a router other than 'hash'");
  EXPECT_CONTAINS(
      err([](Config& c) { c.routing.granularity = Granularity::Sequence, c.routing.capacity_factor = 1.25; }),
      "does not combine with routing.granularity = 'sequence'");
  EXPECT_CONTAINS(err([](Config& c) { c.routing.capacity_factor = 1.25; }),
                  "routing.capacity_factor = 1.25 needs routing.renormalize = false");
  EXPECT_CONTAINS(
      err([](Config& c) { c.routing.router = RouterKind::Hash, c.routing.granularity = Granularity::Sequence; }),
      "routing.router = 'hash' routes by token id");
  for (auto ok :
       {+[](Config& c) { c.routing.rule = SelectionRule::TopP; },
        +[](Config& c) { c.routing.router = RouterKind::Frozen; },
        +[](Config& c) { c.routing.gating = Gating::Sigmoid; },
        +[](Config& c) { c.routing.rule = SelectionRule::TopKThenSoftmax, c.routing.gating = Gating::Sigmoid; },
        +[](Config& c) {
          c.routing.rule = SelectionRule::TopKThenSoftmax, c.routing.granularity = Granularity::Sequence;
        },
        +[](Config& c) {
          c.routing.granularity = Granularity::Prefix, c.routing.capacity_factor = 1.0, c.routing.renormalize = false;
        },
        +[](Config& c) { c.routing.rule = SelectionRule::ExpertChoice, c.routing.capacity_factor = 2.0; }})
    EXPECT_EQ(err(ok), "<no error>");
}

// A design's name is checked where it is read, so no Config holds an unknown one: in a file (naming the line), in
// --set, in a checkpoint's config.json, and by parse_design.
TEST(ConfigDesigns, AnUnknownNameIsRefusedWhereItIsRead) {
  EXPECT_CONTAINS(error_of([] { TomlFile("[routing]\nrule = \"topk\"\n").load(); }),
                  ":2:8: routing.rule = 'topk' is not a valid value (did you mean 'top_k'?); valid values: 'top_k', "
                  "'top_p', 'expert_choice'");
  EXPECT_CONTAINS(error_of([] {
                    Config c;
                    apply_overrides(c, {"routing.router=magic"});
                  }),
                  "--set routing.router=magic: routing.router = 'magic' is not a valid value; valid values: "
                  "'learned', 'frozen', 'resampled', 'hash'");
  EXPECT_CONTAINS(error_of([] {
                    config_from_json(nlohmann::json::parse(R"({"train": {"precision": "fp8"}})"), "ckpt/config.json");
                  }),
                  "config ckpt/config.json: train.precision = 'fp8' is not a valid value (did you mean 'f32'?); valid "
                  "values: 'f32', 'bf16'");
  EXPECT_CONTAINS(error_of([] { TomlFile("[routing]\ngranularity = 3\n").load(); }),
                  "key 'routing.granularity': expected a string, found an integer");
  EXPECT_CONTAINS(error_of([] { parse_design<Gating>("tanh", "--gating"); }),
                  "--gating = 'tanh' is not a valid value; valid values: 'softmax', 'sigmoid'");
}

// Every design's names read back to the value they name, through TOML, --set and JSON alike.
TEST(ConfigDesigns, EveryNameReadsBackToItsValue) {
  for (size_t i = 0; i < DesignNames<SelectionRule>::names.size(); ++i) {
    const auto rule = static_cast<SelectionRule>(i);
    EXPECT_EQ(parse_design<SelectionRule>(name_of(rule), "rule"), rule);
    Config c;
    apply_overrides(c, {"routing.rule=" + std::string(name_of(rule))});
    EXPECT_EQ(c.routing.rule, rule);
    EXPECT_EQ(config_to_json(c)["routing"]["rule"], name_of(rule));
    EXPECT_EQ(config_from_json(config_to_json(c), "json").routing.rule, rule);
  }
  for (const auto name : DesignNames<RouterKind>::names) EXPECT_EQ(name_of(parse_design<RouterKind>(name, "r")), name);
  for (const auto name : DesignNames<Gating>::names) EXPECT_EQ(name_of(parse_design<Gating>(name, "g")), name);
  for (const auto name : DesignNames<Granularity>::names)
    EXPECT_EQ(name_of(parse_design<Granularity>(name, "g")), name);
  for (const auto name : DesignNames<Precision>::names) EXPECT_EQ(name_of(parse_design<Precision>(name, "p")), name);
}

TEST(ConfigJson, RoundTripKeepsEveryField) {
  const TomlFile file(kFullToml);
  Config c = file.load();
  c.train.seed = std::numeric_limits<uint64_t>::max();  // beyond int64: JSON must keep it unsigned
  c.train.lr = 0.1 + 0.2;                               // not a short decimal: must round-trip exactly
  const nlohmann::json j = config_to_json(c);
  EXPECT_EQ(j["model"]["d_model"], 96);
  EXPECT_EQ(j["routing"]["rule"], "top_p");
  EXPECT_EQ(j["train"]["seed"].get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(j.contains("source"));
  EXPECT_EQ(j.size(), 5u);
  size_t keys = 0;
  for (const auto& [section, body] : j.items()) keys += body.size();
  EXPECT_EQ(keys, config_fields().size());

  const Config back = config_from_json(nlohmann::json::parse(j.dump()), "runs/x/config.json");
  EXPECT_EQ(back.source, "runs/x/config.json");
  EXPECT_EQ(back.train.seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(back.train.lr, 0.1 + 0.2);
  Config back42 = back;
  back42.train.seed = 42;
  back42.train.lr = 3e-4;
  expect_full_values(back42, file.dir.path());
  EXPECT_TRUE(same_settings(config_from_json(config_to_json(Config{}), "d"), Config{}));
}

TEST(ConfigJson, FromJsonIsStrict) {
  const std::string src = "runs/x/config.json";
  auto err = [&](const char* text) { return error_of([&] { config_from_json(nlohmann::json::parse(text), src); }); };
  EXPECT_CONTAINS(err(R"({"train": {"lrr": 0.1}})"),
                  "config runs/x/config.json: unknown key 'train.lrr' (did you mean 'train.lr'?)");
  EXPECT_CONTAINS(err(R"({"trainer": {}})"), "config runs/x/config.json: unknown table 'trainer'");
  EXPECT_CONTAINS(err(R"({"model": {"d_model": 256.5}})"), "key 'model.d_model': expected an integer, found a float");
  EXPECT_CONTAINS(err(R"({"model": {"d_model": 9223372036854775808}})"), "expected an integer that fits 64 bits");
  EXPECT_CONTAINS(err(R"({"model": {"tie_embeddings": null}})"), "expected a boolean, found null");
  EXPECT_CONTAINS(err(R"({"model": 3})"), "'model' must be an object, found number");
  EXPECT_CONTAINS(err(R"([1])"), "expected a JSON object of sections, found array");
  const Config partial = config_from_json(nlohmann::json::parse(R"({"train": {"lr": 1}})"), src);
  EXPECT_EQ(partial.train.lr, 1.0);
  EXPECT_EQ(partial.model.d_model, 256);
}

// A list of layers, from TOML, --set and a checkpoint's config.json; anything but integers is refused by name.
TEST(Config, ALayerListReadsFromEveryFormAndRefusesOtherThanIntegers) {
  Config c;
  apply_overrides(c, {"moe.dense_layers=[1, 3]"});
  EXPECT_EQ(c.moe.dense_layers, (std::vector<int64_t>{1, 3}));
  const Config back = config_from_json(config_to_json(c), "config.json");
  EXPECT_EQ(back.moe.dense_layers, c.moe.dense_layers);
  EXPECT_TRUE(same_settings(back, c));
  EXPECT_EQ(TomlFile("[moe]\ndense_layers = [0]\n").load().moe.dense_layers, std::vector<int64_t>{0});
  EXPECT_CONTAINS(error_of([&] { apply_overrides(c, {"moe.dense_layers=[1.5]"}); }),
                  "key 'moe.dense_layers': expected an array of integers, found an array of other than integers");
  EXPECT_CONTAINS(error_of([&] { apply_overrides(c, {"moe.dense_layers=2"}); }),
                  "key 'moe.dense_layers': expected an array of integers, found an integer");
  EXPECT_CONTAINS(
      error_of([&] { config_from_json(nlohmann::json::parse(R"({"moe": {"dense_layers": ["1"]}})"), "x"); }),
      "expected an array of integers");
}

TEST(Config, SameSettingsComparesEveryFieldButSource) {
  Config a, b;
  b.source = "elsewhere";
  EXPECT_TRUE(same_settings(a, b));
  b.routing.rule = SelectionRule::TopP;
  EXPECT_FALSE(same_settings(a, b));
  b = a;
  b.train.seed += 1;
  EXPECT_FALSE(same_settings(a, b));
  b = a;
  b.model.rms_eps *= 2;
  EXPECT_FALSE(same_settings(a, b));
}

const fs::path kRepository = fs::path(MOELAB_TEST_DIR "/..").lexically_normal();

// The defaults, with the paths as the repository root sees them: what brown-tiny.toml spells out from configs/.
TEST(Config, BrownTinyPresetLoadsValidatesAndSpellsOutTheDefaults) {
  const std::string path = MOELAB_TEST_DIR "/../configs/brown-tiny.toml";
  const Config c = load_config(path, {});
  EXPECT_NO_THROW(validate(c));
  Config defaults_from_the_root;
  defaults_from_the_root.data.dir = (kRepository / Config{}.data.dir).string();
  defaults_from_the_root.train.out_dir = (kRepository / Config{}.train.out_dir).string();
  EXPECT_TRUE(same_settings(c, defaults_from_the_root)) << config_to_json(c).dump(2);
  const toml::table file = toml::parse_file(path);
  for (const auto& f : config_fields()) EXPECT_TRUE(file[f.section][f.key]) << f.name() << " not written out";
}

// Makes `dir` the current directory for the scope's life.
class CurrentDirectory {
 public:
  explicit CurrentDirectory(const fs::path& dir) : before_(fs::current_path()) { fs::current_path(dir); }
  ~CurrentDirectory() { fs::current_path(before_); }
  CurrentDirectory(const CurrentDirectory&) = delete;
  CurrentDirectory& operator=(const CurrentDirectory&) = delete;

 private:
  fs::path before_;
};

TEST(ConfigPaths, ARelativePathInAFileIsReadAgainstItsFolder) {
  TempDir dir;
  fs::create_directories(dir.path() / "configs");
  write_all(dir.file("configs/run.toml"), "[data]\ndir = \"../data/brown\"\n[train]\nout_dir = \"./runs//x/\"\n");
  const Config from_anywhere = load_config(dir.file("configs/run.toml"));
  EXPECT_EQ(from_anywhere.data.dir, dir.file("data/brown"));
  EXPECT_EQ(from_anywhere.train.out_dir, dir.file("configs/runs/x/"));
  // A relative config path gives paths relative to the same current directory, as short as they can be.
  const CurrentDirectory cd(dir.path());
  const Config from_root = load_config("configs/run.toml");
  EXPECT_EQ(from_root.data.dir, "data/brown");
  EXPECT_EQ(from_root.train.out_dir, "configs/runs/x/");
  const CurrentDirectory cd_configs(dir.path() / "configs");
  EXPECT_EQ(load_config("run.toml").data.dir, "../data/brown");
}

TEST(ConfigPaths, AbsolutePathsDefaultsAndOverridesAreNotMoved) {
  TomlFile file("[data]\ndir = \"/srv/corpus\"\n");
  const Config c = file.load();
  EXPECT_EQ(c.data.dir, "/srv/corpus");
  EXPECT_EQ(c.train.out_dir, Config{}.train.out_dir);  // a default: relative to the current directory
  // --set is typed on a command line: relative to the current directory, like any path there.
  const Config overridden = file.load({"data.dir=mine", "train.out_dir=\"runs/mine\""});
  EXPECT_EQ(overridden.data.dir, "mine");
  EXPECT_EQ(overridden.train.out_dir, "runs/mine");
  // An empty path stays empty, for validate() to refuse.
  EXPECT_EQ(TomlFile("[data]\ndir = \"\"\n").load().data.dir, "");
}

TEST(ConfigPaths, AbsolutePathsAreMadeAgainstTheCurrentDirectory) {
  Config c;
  c.data.dir = "data/./brown/";
  c.train.out_dir = "/abs/run/../other";
  const Config absolute = with_absolute_paths(c);
  EXPECT_EQ(absolute.data.dir, (fs::current_path() / "data/brown").string());
  EXPECT_EQ(absolute.train.out_dir, "/abs/other");
  EXPECT_EQ(absolute.routing.rule, c.routing.rule);
  // Two spellings of one place are the same setting; another place is not.
  EXPECT_TRUE(same_settings(c, absolute));
  Config elsewhere = c;
  elsewhere.data.dir = "data/other";
  EXPECT_FALSE(same_settings(c, elsewhere));
}

TEST(ConfigDoc, MarkdownIsUpToDate) {
  const std::string path = MOELAB_TEST_DIR "/../docs/config.md";
  const std::string text = config_reference_markdown();
  if (std::getenv("MOELAB_UPDATE_DOCS") != nullptr) write_all(path, text);
  EXPECT_TRUE(read_all(path) == text) << "docs/config.md is out of date: run this test with MOELAB_UPDATE_DOCS=1";
  for (const auto& f : config_fields())
    EXPECT_CONTAINS(text, "| `" + std::string(f.key) + "` | " + (f.path ? "path |" : ""));
  EXPECT_CONTAINS(text, "A path (`data.dir`, `train.out_dir`) written in a config file is read against the folder");
}

}  // namespace
}  // namespace moelab
