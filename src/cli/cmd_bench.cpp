// moelab bench [CONFIG | --shape small|large] [--set K=V ...] [--precision f32|bf16] [--steps N] [--forward]
//              [--peak-gflops X] [--json]
// The cost of one training (or inference) step, op by op: wall time, share of the step, FLOPs and GFLOP/s of every
// op (core/op_profile.h), and end to end tokens/s and model-FLOP utilisation against the machine's measured FP32
// FMA peak, and the process's peak resident memory per token of a step. Random tokens: a step's cost does not
// depend on the data.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "backend/cpu/fma_peak.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "core/error.h"
#include "core/op_profile.h"
#include "core/rng.h"
#include "model/config.h"
#include "model/memory_estimate.h"
#include "model/model.h"
#include "model/model_flops.h"
#include "train/trainer.h"

namespace moelab::cli {

namespace {

struct BenchArgs {
  std::string config;
  std::string shape = "small";
  std::vector<std::string> sets;
  std::string precision;  // empty: the config's
  int64_t steps = 5;
  int64_t warmup = 2;
  bool forward_only = false;
  double peak_gflops = 0;
  bool json = false;
};

// The two shapes of the PyTorch peer that bench/compare_with_peer.py runs against: vocab 8192, top-2 softmax
// routing.
Config shape_config(const std::string& shape) {
  Config cfg;
  cfg.model.vocab_size = 8192;
  if (shape == "large") {
    cfg.model.d_model = 512, cfg.model.n_layers = 8, cfg.model.n_heads = 8, cfg.moe.n_experts = 16;
    cfg.moe.expert_hidden = 1408, cfg.train.seq_len = 512, cfg.train.batch_size = 4;
  } else {
    cfg.model.d_model = 256, cfg.model.n_layers = 4, cfg.model.n_heads = 4, cfg.moe.n_experts = 8;
    cfg.moe.expert_hidden = 704, cfg.train.seq_len = 256, cfg.train.batch_size = 8;
  }
  cfg.model.max_seq_len = cfg.train.seq_len;
  return cfg;
}

void run_bench(const BenchArgs& a) {
  if (a.config.empty() && !a.sets.empty())
    throw_error("bench: --set changes a CONFIG file's settings, and no CONFIG was given (put CONFIG before --set)");
  Config cfg = a.config.empty() ? shape_config(a.shape) : load_config(a.config, a.sets);
  if (cfg.model.vocab_size == 0) cfg.model.vocab_size = 8192;  // the data's vocabulary is not needed to time a step
  if (!a.precision.empty()) apply_overrides(cfg, {"train.precision=" + a.precision});
  validate(cfg);
  if (cfg.train.threads > 0) omp_set_num_threads(static_cast<int>(cfg.train.threads));
  const bool training = !a.forward_only;
  check_memory_fits(cfg, training ? MemoryUse::Training : MemoryUse::Inference);
  const int64_t B = cfg.train.batch_size, T = cfg.train.seq_len, N = B * T;
  Model model(cfg, training ? ModelUse::Training : ModelUse::Inference);
  model.init_params(cfg.train.seed);
  const size_t moments = training ? model.params().size() : 0;  // AdamW's state, for training only
  OptimizerState opt{std::vector<float>(moments), std::vector<float>(moments)};
  std::vector<int32_t> inputs(N), targets(N);  // [B,T]
  Rng rng(3, 0);
  for (int64_t i = 0; i < N; ++i)
    inputs[i] = static_cast<int32_t>(rng.below(cfg.model.vocab_size)),
    targets[i] = static_cast<int32_t>(rng.below(cfg.model.vocab_size));
  std::optional<Model::InferenceMode> inference;
  if (!training) inference.emplace(model);
  auto step = [&](int64_t t) {
    if (training) {
      model.zero_grads();
      model.forward(inputs.data(), targets.data(), B, T);
      model.backward(1.0);
      const GradientNorm g = measure_gradients(model, cfg.train.grad_clip);
      optimizer_step(model, opt, cfg.train, cfg.train.lr, t + 1, g.clip_factor);
    } else {
      model.forward(inputs.data(), nullptr, B, T);
    }
  };
  for (int64_t t = 0; t < a.warmup; ++t) step(t);
  profile::reset();
  profile::set_enabled(true);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t t = 0; t < a.steps; ++t) step(a.warmup + t);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  profile::set_enabled(false);
  const auto ops = profile::snapshot();

  const double peak = a.peak_gflops > 0 ? a.peak_gflops : cpu::measure_fma_peak_gflops();
  const double step_s = seconds / a.steps, tokens_per_s = N / step_s;
  const double model_gflops = tokens_per_s * model_flops_per_token(cfg, T, training) / 1e9;
  double timed = 0;
  for (const auto& op : ops) timed += op.seconds;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double max_rss_mb = usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux

  if (a.json) {
    nlohmann::json out = {{"mode", training ? "train" : "forward"},
                          {"precision", name_of(cfg.train.precision)},
                          {"threads", omp_get_max_threads()},
                          {"tokens_per_step", N},
                          {"step_seconds", step_s},
                          {"tokens_per_s", tokens_per_s},
                          {"model_gflops", model_gflops},
                          {"peak_gflops", peak},
                          {"model_flops_utilisation", model_gflops / peak},
                          {"untimed_seconds_per_step", (seconds - timed) / a.steps},
                          {"max_rss_mb", max_rss_mb},
                          {"max_rss_kb_per_token", usage.ru_maxrss / static_cast<double>(N)},
                          {"ops", nlohmann::json::array()}};
    for (const auto& op : ops)
      out["ops"].push_back({{"op", op.name},
                            {"calls_per_step", static_cast<double>(op.calls) / a.steps},
                            {"seconds_per_step", op.seconds / a.steps},
                            {"gflop_per_step", op.flops / a.steps / 1e9},
                            {"gflops", op.flops > 0 ? op.flops / op.seconds / 1e9 : 0.0}});
    std::cout << out.dump(2) << std::endl;
    return;
  }
  std::printf(
      "moelab bench: %s %s, d %lld, %lld layers, %lld experts top-%lld, hidden %lld, T %lld, B %lld, %d threads\n",
      std::string(name_of(cfg.train.precision)).c_str(), training ? "training step" : "forward",
      static_cast<long long>(cfg.model.d_model), static_cast<long long>(cfg.model.n_layers),
      static_cast<long long>(cfg.moe.n_experts), static_cast<long long>(cfg.routing.top_k),
      static_cast<long long>(cfg.moe.expert_hidden), static_cast<long long>(T), static_cast<long long>(B),
      omp_get_max_threads());
  std::printf(
      "end to end: %.1f ms/step, %.0f tokens/s, %.1f GFLOP/s in model FLOPs = %.1f%% of the %.0f GFLOP/s "
      "FP32 FMA peak%s\n"
      "peak resident memory: %.0f MB, %.0f KB per token of the step\n\n",
      1e3 * step_s, tokens_per_s, model_gflops, 100 * model_gflops / peak, peak,
      a.peak_gflops > 0 ? " (given)" : " (measured)", max_rss_mb, usage.ru_maxrss / static_cast<double>(N));
  std::printf("%-28s %8s %10s %7s %11s %9s\n", "op", "calls", "ms/step", "% step", "GFLOP/step", "GFLOP/s");
  auto sorted = ops;
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& x, const auto& y) { return x.seconds > y.seconds; });
  for (const auto& op : sorted) {
    const std::string rate = op.flops > 0 ? std::to_string(static_cast<int64_t>(op.flops / op.seconds / 1e9)) : "-";
    std::printf("%-28s %8.0f %10.2f %6.1f%% %11.3f %9s\n", op.name.c_str(), static_cast<double>(op.calls) / a.steps,
                1e3 * op.seconds / a.steps, 100 * op.seconds / seconds, op.flops / a.steps / 1e9, rate.c_str());
  }
  std::printf("%-28s %8s %10.2f %6.1f%%\n", "(outside any op)", "", 1e3 * (seconds - timed) / a.steps,
              100 * (seconds - timed) / seconds);
}

}  // namespace

void register_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Time a training (or forward) step op by op: ms, share, GFLOP/s per op; tokens/s and model-FLOP "
      "utilisation");
  cmd->add_option("config", args->config, "A TOML config to time (default: --shape)");
  cmd->add_option("--shape", args->shape,
                  "The PyTorch peer's shapes: small (d 256, 4 layers, 8 experts) or large "
                  "(d 512, 8 layers, 16 experts)")
      ->check(CLI::IsMember({"small", "large"}))
      ->capture_default_str();
  cmd->add_option("--set", args->sets, "Override one setting of CONFIG: section.key=value (repeatable)");
  cmd->add_option("--precision", args->precision, "GEMM precision, as train.precision (default: the config's, f32)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("--steps", args->steps, "Timed steps")->check(whole_number(1))->capture_default_str();
  cmd->add_option("--warmup", args->warmup, "Untimed steps first")->check(whole_number(0))->capture_default_str();
  cmd->add_flag("--forward", args->forward_only, "Time inference (forward only) instead of a training step");
  cmd->add_option("--peak-gflops", args->peak_gflops,
                  "The FP32 peak to measure utilisation against (default: measured)")
      ->check(finite_number(0, 1e9));
  cmd->add_flag("--json", args->json, "Print the result as JSON");
  cmd->callback([args] { run_bench(*args); });
}

}  // namespace moelab::cli
