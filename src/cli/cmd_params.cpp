// moelab params CONFIG [--set key=value ...] [--json]
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "core/error.h"
#include "data/token_file.h"
#include "model/config.h"
#include "model/memory_estimate.h"
#include "model/param_count.h"
#include "routing/selection_rule.h"

namespace moelab::cli {

namespace {

struct ParamsArgs {
  std::string config;
  std::vector<std::string> overrides;
  bool json = false;
};

void print_row(std::string_view part, int64_t total, int64_t active) {
  std::printf("%-10.*s %8s %14lld   %8s %14lld\n", static_cast<int>(part.size()), part.data(),
              human_count(total).c_str(), static_cast<long long>(total), human_count(active).c_str(),
              static_cast<long long>(active));
}

void run_params(const ParamsArgs& a) {
  Config cfg = load_config(a.config, a.overrides);
  validate(cfg);
  if (cfg.model.vocab_size == 0) {
    // Only the vocabulary size is needed from the data; counting a model must not require preparing data first.
    if (!std::filesystem::exists(cfg.data.dir))
      throw_error("config ", a.config, ": model.vocab_size = 0 takes the vocabulary size from the data folder ",
                  cfg.data.dir,
                  ", which does not exist; prepare it with `moelab data`, or give the size with "
                  "--set model.vocab_size=N");
    cfg.model.vocab_size = data::TokenData::open(cfg.data.dir).vocab_size();
  }
  check_memory_fits(cfg, MemoryUse::Count);  // counting lists every tensor
  const ParamCount c = count_params(cfg);
  // Under top-p and expert choice a token's number of experts is not fixed: the active column then counts
  // routing.top_k experts, and says so rather than passing it off as the rule's.
  const bool varies = !routing::selection_rule(cfg.routing.rule).k_slots_per_token;
  if (a.json) {
    nlohmann::json j = to_json(c);
    j["config"] = a.config;
    j["vocab_size"] = cfg.model.vocab_size;
    j["experts_per_token_varies"] = varies;
    std::cout << j.dump(2) << std::endl;
    return;
  }
  const std::string active = varies ? "active counted at routing.top_k = " + std::to_string(c.experts_per_token) +
                                          " (under " + std::string(name_of(cfg.routing.rule)) +
                                          " a token's number of experts varies: a run's mean is mean_experts_per_token "
                                          "in `moelab eval --json`)"
                                    : std::to_string(c.experts_per_token) + " active per token (routing.top_k)";
  std::printf("%s: %lld layers (%lld MoE), %lld experts per MoE layer, %s, vocab %lld\n", a.config.c_str(),
              static_cast<long long>(c.n_layers), static_cast<long long>(c.moe_layers),
              static_cast<long long>(c.n_experts), active.c_str(), static_cast<long long>(cfg.model.vocab_size));
  std::printf("%-10s %23s   %23s\n", "part", "total", "active");
  for (const ParamPart& p : c.parts) print_row(p.name, p.total, p.active);
  print_row("total", c.total, c.active);
}

}  // namespace

void register_params_command(CLI::App& app) {
  auto args = std::make_shared<ParamsArgs>();
  CLI::App* cmd = app.add_subcommand("params", "Count a config's parameters: total and active per token, by part");
  cmd->add_option("config", args->config, "TOML config file (see configs/ and docs/config.md)")->required();
  cmd->add_option("--set", args->overrides, "Override one setting: section.key=value (repeatable)")
      ->type_name("KEY=VALUE");
  cmd->add_flag("--json", args->json, "Print the counts as JSON with exact integers (for scripts)");
  cmd->callback([args] { run_params(*args); });
}

}  // namespace moelab::cli
