// Hostile input to the moelab command, one table row each: a damaged file, an absurd size, a nonsense option value, a
// run whose data folder is gone. Every row must end in a message naming the file, field or option and what was
// expected, with the exit status given (1 for every error): never an abort, a crash, the OOM killer, or a result
// computed from garbage. A few rows pin what must work where it once did not (exit status 0).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/token_file.h"
#include "data/tokenizer.h"
#include "support/errors.h"
#include "support/run_moelab.h"
#include "support/synthetic_data.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

namespace fs = std::filesystem;

struct HostileCase {
  std::string name;
  std::string args;  // {R} stands for the fixture's folder
  int status;
  std::vector<std::string> expected;  // fragments of the output, {R} as in args
  std::string before = "";            // shell commands run first, {R} as in args: a memory limit, a `cd`
};

// The command line, for gtest's listing of the cases.
void PrintTo(const HostileCase& c, std::ostream* os) { *os << "moelab " << c.args; }

std::string with_root(std::string text, const std::string& root) {
  for (size_t at = text.find("{R}"); at != std::string::npos; at = text.find("{R}", at + root.size()))
    text.replace(at, 3, root);
  return text;
}

// Sets one float of a tensor in a safetensors file to `value`, in place.
void poison_tensor(const std::string& path, const std::string& tensor, float value) {
  std::string bytes = testing::read_all(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_len));
  const size_t at = 8 + header_len + header.at(tensor).at("data_offsets")[0].get<size_t>() + 5 * sizeof(float);
  std::memcpy(bytes.data() + at, &value, sizeof value);
  testing::write_all(path, bytes);
}

// A data folder of the bigram corpus whose tokenizer is a real one (generation encodes a prompt); `val_tokens`
// sets the size of the validation split.
void write_data(const std::string& dir, const data::Tokenizer& tok, int64_t val_tokens) {
  const int64_t vocab = tok.vocab_size();
  const data::DataDescription desc{"synthetic", vocab, 0, {{"genre", data::LabelScope::document, {"even", "odd"}}}};
  data::write_data_folder(dir, desc,
                          {testing::bigram_split(vocab, 4000, 1), testing::bigram_split(vocab, val_tokens, 2),
                           testing::bigram_split(vocab, 600, 3)},
                          tok.model_bytes());
}

// A d_model 16 model trained for 2 steps on `data_dir`, into `out_dir`.
std::string tiny_config(const std::string& data_dir, const std::string& out_dir) {
  return "[data]\ndir = \"" + data_dir +
         "\"\n[model]\nd_model = 16\nn_layers = 1\nn_heads = 2\nmax_seq_len = 8\n"
         "[moe]\nn_experts = 2\nexpert_hidden = 8\n"
         "[train]\nseq_len = 8\nbatch_size = 2\nsteps = 2\nwarmup_steps = 1\n"
         "eval_every = 0\nlog_every = 1\nout_dir = \"" +
         out_dir + "\"\n";
}

// Every input the table needs, made once: a data folder, a run of the tiny model, damaged copies of their files, and
// the same run trained from configs whose paths are relative.
class HostileInput : public ::testing::TestWithParam<HostileCase> {
 protected:
  static void SetUpTestSuite() {
    root_ = new testing::TempDir;
    const auto file = [](const std::string& name) { return root_->file(name); };
    std::vector<std::string> sentences;
    for (int i = 0; i < 20; ++i)
      sentences.push_back("the cat sat on the mat and the dog ran far away, then came back home number " +
                          std::to_string(i));
    const auto tok = data::Tokenizer::train(sentences, 300);
    write_data(file("data"), tok, 600);
    write_data(file("data-tiny-val"), tok, 1);
    write_data(file("data-empty-val"), tok, 0);
    fs::copy(file("data"), file("data-truncated"));
    fs::resize_file(file("data-truncated/val.bin"), fs::file_size(file("data-truncated/val.bin")) - 1);

    testing::write_all(file("tiny.toml"), tiny_config(file("data"), file("run")));
    const auto trained = testing::run_moelab("train " + file("tiny.toml"));
    ASSERT_EQ(trained.status, 0) << trained.output;
    const std::string ckpt = "/checkpoints/step-00000002";
    auto copy_run = [&](const std::string& name) {
      fs::copy(file("run"), file(name), fs::copy_options::recursive);
      return file(name);
    };
    poison_tensor(copy_run("run-nan") + ckpt + "/model.safetensors", "model.layers.0.self_attn.q_proj.weight",
                  std::numeric_limits<float>::quiet_NaN());
    poison_tensor(copy_run("run-inf") + ckpt + "/model.safetensors", "lm_head.weight",
                  std::numeric_limits<float>::infinity());
    testing::write_all(copy_run("run-bad-safetensors") + ckpt + "/model.safetensors",
                       std::string("\xff\x00\x00\x00\x00\x00\x00\x00{}", 10));
    testing::write_all(copy_run("run-latest-nul") + "/checkpoints/latest", std::string("step-00000002\0evil\n", 19));
    {
      const std::string path = copy_run("run-huge-config") + ckpt + "/config.json";
      auto config = nlohmann::json::parse(testing::read_all(path));
      config["moe"]["n_experts"] = int64_t{100000000000};
      testing::write_all(path, config.dump());
    }
    {
      const std::string path = copy_run("run-metrics") + "/metrics.jsonl";
      std::string log = testing::read_all(path);
      log.replace(log.find("\"step\":1"), 8, "\"step\":\"x\"");
      testing::write_all(path, log);
    }
    testing::write_all(file("a-file"), "not a folder\n");
    fs::create_directories(file("config-folder"));
    testing::write_all(file("bad-value.toml"), "[train]\nlr = \"fast\"\n");
    testing::write_all(file("unknown-key.toml"), "[train]\nlrr = 0.1\n");
    // Input that once tripped assertions inside toml++ 3.3.0: a table header whose name starts with a character no
    // key starts with, and three bytes that look like the start of a byte-order mark.
    testing::write_all(file("table-slash.toml"), "[/");
    testing::write_all(file("ef-bb-99.toml"), "\xef\xbb\x99");
    // A run whose data folder is gone (moved, or trained on another machine).
    {
      const std::string path = copy_run("run-data-gone") + ckpt + "/config.json";
      auto config = nlohmann::json::parse(testing::read_all(path));
      config["data"]["dir"] = file("data-gone");
      testing::write_all(path, config.dump());
    }
    // Configs in a folder of their own whose paths are relative: to their folder, whatever the current directory.
    // "run-relative" is trained from "cwd/deeper", where the same paths read against the current directory lead
    // nowhere; its checkpoint must still find its data from anywhere.
    fs::create_directories(file("configs"));
    fs::create_directories(file("cwd/deeper"));
    testing::write_all(file("configs/relative.toml"), tiny_config("../data", "../run-relative"));
    testing::write_all(file("configs/no-data.toml"), tiny_config("../no-such-data", "../run-no-data"));
    const auto relative = testing::run_command("cd " + file("cwd/deeper") + " && " + MOELAB_BINARY +
                                               " train ../../configs/relative.toml 2>&1");
    ASSERT_EQ(relative.status, 0) << relative.output;
  }
  static void TearDownTestSuite() {
    delete root_;
    root_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(fs::exists(root_->file("run/checkpoints/latest"))) << "the fixture failed"; }

  static testing::TempDir* root_;
};

testing::TempDir* HostileInput::root_ = nullptr;

TEST_P(HostileInput, EndsInAClearMessageAndItsExitStatus) {
  const HostileCase& c = GetParam();
  const std::string root = root_->path().string();
  const auto r = testing::run_command(with_root(c.before, root) + std::string(MOELAB_BINARY) + " " +
                                      with_root(c.args, root) + " 2>&1");
  EXPECT_EQ(r.status, c.status) << c.before << "moelab " << c.args << "\n" << r.output;
  for (const std::string& fragment : c.expected) EXPECT_CONTAINS(r.output, with_root(fragment, root));
}

const std::vector<HostileCase> kCases = {
    // An output folder that is a file.
    {.name = "ReportOutIsAFile",
     .args = "analyze report {R}/run --out {R}/a-file --no-png",
     .status = 1,
     .expected = {"moelab: error: --out {R}/a-file: exists and is not a folder; expected a folder"}},
    // Sizes no machine holds: refused before anything is allocated.
    {.name = "ExpertCountBeyondMemory",
     .args = "train {R}/tiny.toml --set moe.n_experts=100000000000",
     .status = 1,
     .expected = {"config {R}/tiny.toml: this config needs about", "GB to train: 4e+13 parameters x 16 bytes",
                  "this machine has", "moe.n_experts = 100000000000"}},
    {.name = "SeqLenBeyondMemory",
     .args = "train {R}/tiny.toml --set train.seq_len=1000000000 --set model.max_seq_len=1000000000 --set "
             "train.batch_size=64",
     .status = 1,
     .expected = {"of activations for batch_size x seq_len = 64 x 1000000000 tokens; this machine has"}},
    {.name = "DModelOverflowingInt64",
     .args = "train {R}/tiny.toml --set model.d_model=4000000000",
     .status = 1,
     .expected = {"config {R}/tiny.toml: these sizes need about",
                  "more than a 64-bit size can count: model.d_model = 4000000000"}},
    {.name = "TokensPerRunOverflowingInt64",
     .args = "train {R}/tiny.toml --set train.steps=9000000000000000000 --set train.warmup_steps=0",
     .status = 1,
     .expected = {"train.steps x train.grad_accum x train.batch_size x train.seq_len",
                  "more than a 64-bit count can hold"}},
    {.name = "ParamsOfAnExpertCountBeyondMemory",
     .args = "params {R}/tiny.toml --set moe.n_experts=100000000000",
     .status = 1,
     .expected = {"this config needs about", "to list its parameter tensors: 300.00B tensors"}},
    {.name = "CheckpointConfigBeyondMemory",
     .args = "eval {R}/run-huge-config",
     .status = 1,
     .expected = {"config {R}/run-huge-config/checkpoints/step-00000002/config.json: this config needs about",
                  "to evaluate"}},
    // Memory the machine cannot give although the estimate fits (here a limit of the process's address space):
    // std::bad_alloc, caught as the last resort.
    {.name = "AllocationFailing",
     .args = "train {R}/tiny.toml --set train.batch_size=100000 --set 'train.out_dir=\"{R}/oom\"' --overwrite",
     .status = 1,
     .expected = {"moelab: error: out of memory: an allocation failed"},
     .before = "ulimit -v 1500000; "},
    // A metrics log whose step is not a number, on resume.
    {.name = "MetricsStepNotAnInteger",
     .args = "train --resume {R}/run-metrics --set train.steps=4",
     .status = 1,
     .expected =
         {"metrics log {R}/run-metrics/metrics.jsonl, line 1: expected a JSON object with an integer \"step\", found "
          "\"step\": \"x\""}},
    // Counts out of range.
    {.name = "EvalMaxTokensNegative",
     .args = "eval {R}/run --max-tokens -1",
     .status = 1,
     .expected = {"moelab: error: --max-tokens: expected a whole number >= 0 (0: all), got -1"}},
    {.name = "EvalStrideBeyondTheWindow",
     .args = "eval {R}/run --stride 9",
     .status = 1,
     .expected = {"moelab: error: --stride 9: a window starts at most every window, 8 tokens (--seq-len)"}},
    {.name = "ReportMatchNeuronsOne",
     .args = "analyze report {R}/run --match-neurons 1",
     .status = 1,
     .expected = {"--match-neurons: expected a whole number >= 2, got 1"}},
    {.name = "ReportSampleTokensZero",
     .args = "analyze report {R}/run --sample-tokens 0",
     .status = 1,
     .expected = {"--sample-tokens: expected a whole number > 0, got 0"}},
    {.name = "ReportPermutationsOne",
     .args = "analyze report {R}/run --permutations 1",
     .status = 1,
     .expected = {"--permutations: expected a whole number from 2 to 100000, got 1"}},
    {.name = "TraceMaxTokensNotWhole",
     .args = "analyze trace {R}/run --max-tokens 1e3",
     .status = 1,
     .expected = {"--max-tokens: expected a whole number >= 0 (0: all), got 1e3"}},
    {.name = "GenerateMaxTokensZero",
     .args = "generate {R}/run --prompt the --max-tokens 0",
     .status = 1,
     .expected = {"--max-tokens: expected a whole number from 1 to 100000, got 0"}},
    // An evaluation that would score no token.
    {.name = "EvalOfAOneTokenSplit",
     .args = "eval {R}/run --data {R}/data-tiny-val",
     .status = 1,
     .expected = {"the val split of {R}/data-tiny-val has 1 token: too few to evaluate"}},
    {.name = "EvalOfAnEmptySplit",
     .args = "eval {R}/run --data {R}/data-empty-val",
     .status = 1,
     .expected = {"the val split of {R}/data-empty-val has 0 tokens: too few to evaluate"}},
    {.name = "TrainingEvaluatingOneToken",
     .args = "train {R}/tiny.toml --set train.eval_tokens=1",
     .status = 1,
     .expected = {"config {R}/tiny.toml: train.eval_tokens = 1 scores no token"}},
    {.name = "EvalLimitedToOneToken",
     .args = "eval {R}/run --max-tokens 1",
     .status = 1,
     .expected = {"evaluating the val split of {R}/data: a limit of 1 token scores none"}},
    // A folder given as the config.
    {.name = "ConfigIsAFolder",
     .args = "train {R}/config-folder",
     .status = 1,
     .expected = {"config {R}/config-folder: is a folder, expected a TOML config file"}},
    // Non-finite weights, wherever a checkpoint is used.
    {.name = "NanWeightsEval",
     .args = "eval {R}/run-nan",
     .status = 1,
     .expected = {"checkpoint {R}/run-nan/checkpoints/step-00000002: tensor 'model.layers.0.self_attn.q_proj.weight' "
                  "holds nan"}},
    {.name = "InfWeightsGenerate",
     .args = "generate {R}/run-inf --prompt 'the cat'",
     .status = 1,
     .expected = {"tensor 'lm_head.weight' holds inf"}},
    {.name = "NanWeightsTrace",
     .args = "analyze trace {R}/run-nan --out {R}/trace-nan",
     .status = 1,
     .expected = {"holds nan"}},
    {.name = "NanWeightsReport",
     .args = "analyze report {R}/run-nan --no-png --out {R}/report-nan",
     .status = 1,
     .expected = {"holds nan"}},
    {.name = "NanWeightsResume",
     .args = "train --resume {R}/run-nan --set train.steps=4",
     .status = 1,
     .expected = {"holds nan"}},
    // A learning rate that blows the weights up: the checkpoint written after the update is not called good.
    {.name = "ExplodingLearningRate",
     .args = "train {R}/tiny.toml --set train.lr=1e10 --set train.steps=6 --set train.checkpoint_every=1 --set "
             "'train.out_dir=\"{R}/lr\"' --overwrite",
     .status = 1,
     .expected = {"step 2: the loss is",
                  "the last good checkpoint (whose weights then gave a finite loss and gradient) is none; "
                  "{R}/lr/checkpoints/step-00000001 holds the weights that gave this value"}},
    // Sampling options.
    {.name = "TemperatureNan",
     .args = "generate {R}/run --prompt the --temperature nan",
     .status = 1,
     .expected = {"--temperature: expected a number from 0 to 100, got nan"}},
    {.name = "TemperatureInf",
     .args = "generate {R}/run --prompt the --temperature inf",
     .status = 1,
     .expected = {"--temperature: expected a number"}},
    {.name = "TemperatureNegative",
     .args = "generate {R}/run --prompt the --temperature -0.5",
     .status = 1,
     .expected = {"--temperature: expected a number from 0 to 100, got -0.5"}},
    {.name = "TopKNegative",
     .args = "generate {R}/run --prompt the --top-k -1",
     .status = 1,
     .expected = {"--top-k: expected a whole number >= 0"}},
    // A NUL in checkpoints/latest: refused as not a checkpoint name, shown escaped, not cutting the message.
    {.name = "LatestHoldingANul",
     .args = "eval {R}/run-latest-nul",
     .status = 1,
     .expected = {"checkpoints/latest: expected the name of a checkpoint folder", "step-00000002\\x00evil"}},
    // Commands.
    {.name = "UnknownCommand",
     .args = "frobnicate",
     .status = 1,
     .expected = {"moelab: error: unknown command 'frobnicate'; commands: data, train, eval, generate, params, "
                  "analyze, bench"}},
    {.name = "UnknownAnalyzeCommand",
     .args = "analyze frobnicate",
     .status = 1,
     .expected = {"unknown command 'analyze frobnicate'; commands of analyze: trace, report"}},
    {.name = "NoCommand", .args = "", .status = 1, .expected = {"a command is required; commands: data, train"}},
    // Behaviour that was already right, pinned.
    {.name = "CorruptSafetensors",
     .args = "eval {R}/run-bad-safetensors",
     .status = 1,
     .expected =
         {"{R}/run-bad-safetensors/checkpoints/step-00000002/model.safetensors: header length 255 runs past the end"}},
    {.name = "TruncatedTokenFile",
     .args = "eval {R}/run --data {R}/data-truncated",
     .status = 1,
     .expected = {"{R}/data-truncated/val.bin: size", "is not a multiple of 2"}},
    {.name = "BadTomlValue",
     .args = "train {R}/bad-value.toml",
     .status = 1,
     .expected = {"config {R}/bad-value.toml:2:6: key 'train.lr': expected a float, found a string ('fast')"}},
    {.name = "UnknownConfigKey",
     .args = "train {R}/unknown-key.toml",
     .status = 1,
     .expected = {"config {R}/unknown-key.toml:2:1: unknown key 'train.lrr' (did you mean 'train.lr'?)"}},
    {.name = "ConfigTableNameStartingWithASlash",
     .args = "train {R}/table-slash.toml",
     .status = 1,
     .expected = {"moelab: error: config {R}/table-slash.toml:1:2: ", "'/'"}},
    {.name = "ConfigOfTheBytesEfBb99",
     .args = "train {R}/ef-bb-99.toml",
     .status = 1,
     .expected = {"moelab: error: config {R}/ef-bb-99.toml:1:1: "}},
    // A data folder that is not there: say how to name it, or how to make it.
    {.name = "EvalOfARunWhoseDataFolderIsGone",
     .args = "eval {R}/run-data-gone",
     .status = 1,
     .expected =
         {"checkpoint {R}/run-data-gone/checkpoints/step-00000002: its data folder {R}/data-gone (data.dir in its "
          "config.json) does not exist; pass --data DIR"}},
    {.name = "GenerateFromARunWhoseDataFolderIsGone",
     .args = "generate {R}/run-data-gone --prompt the",
     .status = 1,
     .expected = {"checkpoint {R}/run-data-gone/checkpoints/step-00000002: its data folder {R}/data-gone",
                  "--data DIR"}},
    {.name = "TraceOfARunWhoseDataFolderIsGone",
     .args = "analyze trace {R}/run-data-gone --out {R}/trace-data-gone",
     .status = 1,
     .expected = {"checkpoint {R}/run-data-gone/checkpoints/step-00000002: its data folder {R}/data-gone",
                  "--data DIR"}},
    {.name = "ReportOfARunWhoseDataFolderIsGone",
     .args = "analyze report {R}/run-data-gone --no-png --out {R}/report-data-gone",
     .status = 1,
     .expected = {"checkpoint {R}/run-data-gone/checkpoints/step-00000002: its data folder {R}/data-gone",
                  "--data DIR"}},
    {.name = "EvalOfARunWhoseDataFolderIsGoneGivenData",
     .args = "eval {R}/run-data-gone --data {R}/data --max-tokens 64",
     .status = 0,
     .expected = {"{R}/run-data-gone/checkpoints/step-00000002", "perplexity"}},
    {.name = "ResumeOfARunWhoseDataFolderIsGone",
     .args = "train --resume {R}/run-data-gone --set train.steps=4",
     .status = 1,
     .expected = {"--resume {R}/run-data-gone: the data folder {R}/data-gone of checkpoint "
                  "{R}/run-data-gone/checkpoints/step-00000002",
                  "--set data.dir=DIR"}},
    {.name = "TrainWithoutItsDataFolder",
     .args = "train {R}/configs/no-data.toml",
     .status = 1,
     .expected =
         {"config {R}/configs/no-data.toml: the data folder data.dir = \"{R}/no-such-data\" does not exist; prepare it "
          "with `moelab data brown --out {R}/no-such-data` or `moelab data text FILE... --out {R}/no-such-data`, or "
          "fix "
          "data.dir in {R}/configs/no-data.toml"}},
    {.name = "TrainWithADataFolderSetThatIsNotThere",
     .args = "train {R}/tiny.toml --set data.dir=nowhere",
     .status = 1,
     .expected = {"config {R}/tiny.toml: the data folder data.dir = \"nowhere\" does not exist", "moelab data brown",
                  "moelab data text", "fix data.dir in {R}/tiny.toml"}},
    // Paths in a config file are read against its folder, from any current directory; --set paths against the
    // current directory; a checkpoint finds its data folder from anywhere.
    {.name = "ConfigWithRelativePathsTrainsFromAnotherDirectory",
     .args = "train ../../configs/relative.toml --set 'train.out_dir=\"run-here\"' --overwrite",
     .status = 0,
     .expected = {"checkpoint run-here/checkpoints/step-00000002"},
     .before = "cd {R}/cwd/deeper && "},
    {.name = "CheckpointOfARelativeConfigEvaluatesFromAnotherDirectory",
     .args = "eval {R}/run-relative --max-tokens 64",
     .status = 0,
     .expected = {"{R}/run-relative/checkpoints/step-00000002", "perplexity"},
     .before = "cd / && "},
    {.name = "HelpIsNotAnError", .args = "eval --help", .status = 0, .expected = {"Usage"}},
};

INSTANTIATE_TEST_SUITE_P(Table, HostileInput, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<HostileCase>& info) { return info.param.name; });

}  // namespace
}  // namespace moelab
