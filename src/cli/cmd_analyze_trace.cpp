// moelab analyze trace CHECKPOINT|HF_DIR [--split val|test|train] [--text FILE] [--out DIR] [--max-tokens N] [--probs]
//                                 [--data DIR]
// Records every MoE layer's routing decision for every token of a split or a text file and writes it as .npy
// arrays with a trace.json index (analysis/trace.h; the format is in docs/traces.md).
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "analysis/trace.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "core/error.h"
#include "eval/model_source.h"
#include "model/config.h"

namespace moelab::cli {

namespace {

namespace fs = std::filesystem;

struct TraceArgs {
  std::string checkpoint;
  std::string split = "val";
  std::string text;
  std::string out;
  std::string data_dir;
  int64_t max_tokens = 0;
  int64_t seq_len = 0;
  bool probs = false;
};

void run_trace(const TraceArgs& a) {
  ModelSource opened = open_model_source(a.checkpoint, a.data_dir);
  opened.set_window(a.seq_len);
  const std::string& ckpt = opened.path;
  const Config& cfg = opened.config;
  Model& model = *opened.model;
  const bool from_text = !a.text.empty();
  const data::TokenStream source =
      from_text ? opened.text_stream(a.text, a.max_tokens) : opened.split_stream(a.split, a.max_tokens);
  const std::string out =
      !a.out.empty() ? a.out
                     : default_analysis_folder(
                           ckpt, from_text ? "trace-text-" + fs::path(a.text).stem().string() : "trace-" + a.split);

  const bool tty = ::isatty(STDERR_FILENO);  // a redrawn count on a terminal, nothing in logs
  const auto tr = analysis::collect_trace(model, source, {cfg.train.seq_len, cfg.train.batch_size, a.probs, 0},
                                          [tty](int64_t done, int64_t total) {
                                            if (tty)
                                              std::fprintf(stderr, "\rtracing %lld/%lld tokens",
                                                           static_cast<long long>(done), static_cast<long long>(total));
                                          });
  if (tty) std::fprintf(stderr, "\n");

  nlohmann::json about = {{"checkpoint", ckpt},
                          {"source", source.description},
                          {"seq_len", cfg.train.seq_len},
                          {"batch_size", cfg.train.batch_size},
                          {"config", config_to_json(cfg)}};
  if (opened.is_hf()) about["hf_model_type"] = opened.hf_model_type;
  analysis::write_trace(out, tr, about);

  const int64_t L = static_cast<int64_t>(tr.layers.size());
  double selected = 0;
  for (uint8_t k : tr.n_selected) selected += k;
  std::printf("wrote %s: %s, %lld tokens x %lld MoE layers, %.2f experts per token on average (at most %lld)%s\n",
              out.c_str(), source.description.c_str(), static_cast<long long>(tr.n_tokens), static_cast<long long>(L),
              selected / static_cast<double>(L * tr.n_tokens), static_cast<long long>(tr.max_slots),
              tr.probs.empty() ? "" : ", router probabilities included");
}

}  // namespace

void register_analyze_trace_command(CLI::App& analyze) {
  auto args = std::make_shared<TraceArgs>();
  CLI::App* cmd = analyze.add_subcommand(
      "trace", "Record each token's experts and weights in every MoE layer (.npy arrays + trace.json)");
  cmd->add_option("checkpoint", args->checkpoint, kModelSourceHelp)->required();
  CLI::Option* split = cmd->add_option("--split", args->split, "Which split to trace")
                           ->check(CLI::IsMember({"val", "test", "train"}))
                           ->capture_default_str();
  cmd->add_option("--text", args->text,
                  "Trace a text file instead of a split (encoded with the data's or the model's tokenizer)")
      ->check(CLI::ExistingFile)
      ->excludes(split);
  cmd->add_option(
      "--out", args->out,
      "Output folder (default: <run folder>/analysis/trace-<split>, or trace-text-<file stem>; for a Hugging Face "
      "folder analysis/<its name>/... under the current folder)");
  cmd->add_option("--max-tokens", args->max_tokens, "Trace only the first this many tokens (0: all)")
      ->check(whole_number(0, INT64_MAX, "0: all"));
  cmd->add_option("--seq-len", args->seq_len, kSeqLenHelp)->check(whole_number(0, INT64_MAX, "0: train.seq_len"));
  cmd->add_flag("--probs", args->probs, "Also record the router probabilities over all experts (probs.npy)");
  cmd->add_option("--data", args->data_dir, "Data folder (default: the one in the checkpoint's config)");
  cmd->callback([args] { run_trace(*args); });
}

}  // namespace moelab::cli
