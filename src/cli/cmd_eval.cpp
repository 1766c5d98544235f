// moelab eval CHECKPOINT [--split val|test] [--data DIR] [--json]
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "core/error.h"
#include "data/loader.h"
#include "eval/perplexity.h"
#include "model/model.h"
#include "train/checkpoint.h"

namespace moelab::cli {

namespace {

struct EvalArgs {
  std::string checkpoint;
  std::string split = "val";
  std::string data_dir;
  int64_t max_tokens = 0;
  bool json = false;
};

void run_eval(const EvalArgs& a) {
  LoadedCheckpoint loaded = load_checkpoint(a.checkpoint, a.data_dir);
  const std::string& ckpt = loaded.path;
  const Config& cfg = loaded.config;
  Model& model = *loaded.model;
  const auto& data = loaded.data;
  const EvalResult r = evaluate_perplexity(model, data, a.split, cfg.train.seq_len, cfg.train.batch_size, a.max_tokens);
  if (a.json) {
    nlohmann::json j = to_json(r);
    j["checkpoint"] = ckpt;
    std::cout << j.dump(2) << std::endl;
    return;
  }
  std::printf("%s: %s loss %.4f  perplexity %.2f  (%lld tokens)\n", ckpt.c_str(), r.split.c_str(), r.loss, r.perplexity,
              static_cast<long long>(r.tokens));
  for (const auto& g : r.per_genre)
    std::printf("  %-16s loss %.4f  perplexity %8.2f  (%lld tokens)\n", g.genre.c_str(), g.loss, g.perplexity,
                static_cast<long long>(g.tokens));
}

}  // namespace

void register_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a checkpoint: loss and perplexity, overall and per genre");
  cmd->add_option("checkpoint", args->checkpoint, "A checkpoint folder, or a run folder (its latest checkpoint)")
      ->required();
  cmd->add_option("--split", args->split, "Which split to score")->check(CLI::IsMember({"val", "test", "train"}));
  cmd->add_option("--data", args->data_dir, "Data folder (default: the one in the checkpoint's config)");
  cmd->add_option("--max-tokens", args->max_tokens, "Score only the first windows covering this many tokens (0: all)")
      ->check(whole_number(0, INT64_MAX, "0: all"));
  cmd->add_flag("--json", args->json, "Print the result as JSON (for scripts)");
  cmd->callback([args] { run_eval(*args); });
}

}  // namespace moelab::cli
