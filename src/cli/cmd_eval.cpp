// moelab eval CHECKPOINT|HF_DIR [--split val|test|train | --text FILE] [--data DIR] [--max-tokens N] [--json]
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "core/error.h"
#include "eval/model_source.h"
#include "eval/perplexity.h"

namespace moelab::cli {

namespace {

struct EvalArgs {
  std::string checkpoint;
  std::string split = "val";
  std::string text_file;
  std::string data_dir;
  int64_t max_tokens = 0;
  int64_t seq_len = 0;
  int64_t stride = 0;
  bool json = false;
};

void run_eval(const EvalArgs& a) {
  ModelSource source = open_model_source(a.checkpoint, a.data_dir);
  source.set_window(a.seq_len);
  const std::string& ckpt = source.path;
  const Config& cfg = source.config;
  // A text file is read whole (max_tokens only limits what is scored); a split is copied whole for the same reason.
  const data::TokenStream stream =
      a.text_file.empty() ? source.split_stream(a.split, 0) : source.text_stream(a.text_file, 0);
  std::vector<int32_t> piece_bytes = source.tokenizer.piece_bytes();  // [V]
  piece_bytes.resize(cfg.model.vocab_size, 0);  // a pretrained model's vocabulary may have padding rows past it
  if (a.stride > cfg.train.seq_len)
    throw_error("--stride ", a.stride, ": a window starts at most every window, ", cfg.train.seq_len,
                " tokens (--seq-len)");
  const EvalResult r = evaluate_perplexity(*source.model, stream, cfg.train.seq_len, cfg.train.batch_size, a.max_tokens,
                                           piece_bytes, a.stride);
  if (a.json) {
    nlohmann::json j = to_json(r);
    j["checkpoint"] = ckpt;
    if (source.is_hf()) j["hf_model_type"] = source.hf_model_type;
    std::cout << j.dump(2) << std::endl;
    return;
  }
  std::printf("%s on %s:\n  loss %.4f  perplexity %.2f  bits per byte %.4f  (%lld tokens, %lld bytes)\n", ckpt.c_str(),
              r.source.c_str(), r.loss, r.perplexity, r.bits_per_byte, static_cast<long long>(r.tokens),
              static_cast<long long>(r.bytes));
  if (r.stride < r.window)
    std::printf("  windows of %lld tokens every %lld tokens (each token scored once)\n",
                static_cast<long long>(r.window), static_cast<long long>(r.stride));
  for (const auto& channel : r.per_label) {
    std::printf("  by %s:\n", channel.channel.c_str());
    for (const auto& c : channel.classes)
      std::printf("    %-16s loss %.4f  perplexity %8.2f  (%lld tokens)\n", c.name.c_str(), c.loss, c.perplexity,
                  static_cast<long long>(c.tokens));
  }
}

}  // namespace

void register_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Evaluate a checkpoint: loss, perplexity and bits per byte, overall and by class of each label");
  cmd->add_option("checkpoint", args->checkpoint, kModelSourceHelp)->required();
  auto* split =
      cmd->add_option("--split", args->split, "Which split to score")->check(CLI::IsMember({"val", "test", "train"}));
  cmd->add_option("--text", args->text_file,
                  "Score a text file instead of a split (UTF-8; FILE.jsonl: one {\"text\": ...} document per line), "
                  "e.g. another domain's text; encoded with the checkpoint's tokenizer")
      ->check(CLI::ExistingFile)
      ->excludes(split);
  cmd->add_option("--data", args->data_dir, "Data folder (default: the one in the checkpoint's config)");
  cmd->add_option("--max-tokens", args->max_tokens, "Score only the first windows covering this many tokens (0: all)")
      ->check(whole_number(0, INT64_MAX, "0: all"));
  cmd->add_option("--seq-len", args->seq_len, kSeqLenHelp)->check(whole_number(0, INT64_MAX, "0: train.seq_len"));
  cmd->add_option("--stride", args->stride,
                  "Tokens between window starts (0: the window, disjoint windows): less gives a sliding context, "
                  "each token scored once with at least window - stride tokens before it, for one forward per "
                  "stride tokens")
      ->check(whole_number(0, INT64_MAX, "0: the window"));
  cmd->add_flag("--json", args->json, "Print the result as JSON (for scripts)");
  cmd->callback([args] { run_eval(*args); });
}

}  // namespace moelab::cli
