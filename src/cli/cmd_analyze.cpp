// moelab analyze {trace, report}: the papers' analyses of a checkpoint (docs/analysis.md). `trace` lives in
// cmd_analyze_trace.cpp; `report` runs every analysis and writes report.html, analysis.json and PNG figures.
#include <cstdio>
#include <filesystem>
#include <optional>

#include "analysis/checkpoint_analysis.h"
#include "analysis/loss_history.h"
#include "analysis/report_content.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "core/error.h"
#include "core/version.h"
#include "eval/model_source.h"
#include "io/atomic_file.h"
#include "report/html_report.h"
#include "report/png_export.h"
#include "train/checkpoint.h"

namespace moelab::cli {

namespace {

namespace fs = std::filesystem;

struct ReportArgs {
  std::string checkpoint;
  std::string out;
  bool no_png = false;
  analysis::AnalysisOptions options;
};

// "--out DIR" or "report folder DIR", for messages.
std::string folder_name(const ReportArgs& args, const std::string& out) {
  return (args.out.empty() ? "report folder " : "--out ") + out;
}

void run_report(const ReportArgs& args) {
  const std::string out = !args.out.empty() ? args.out : default_analysis_folder(args.checkpoint, "report");
  // Checked before the analysis, which takes minutes on a real split.
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    throw_error(folder_name(args, out), ": exists and is not a folder; expected a folder (created if missing) for ",
                "report.html, analysis.json and figures/");
  analysis::StageProgress progress;
  const analysis::CheckpointAnalysis a = analysis::analyze_checkpoint(args.checkpoint, args.options, progress);
  fs::create_directories(out, ec);
  if (ec) throw_error(folder_name(args, out), ": cannot create the folder (", ec.message(), ")");
  const std::optional<analysis::LossHistory> history =
      a.hf_model_type.empty() ? analysis::read_loss_history(run_folder_of(a.checkpoint)) : std::nullopt;
  const report::ReportDoc doc = analysis::build_report(a, history);
  const auto charts = analysis::report_charts(doc);
  progress.stage("writing report.html and analysis.json", 1);
  nlohmann::json numbers = analysis::to_json(a);
  numbers["moelab_version"] = kVersion;
  numbers["loss_history"] = history ? analysis::to_json(*history) : nlohmann::json();
  write_file_atomic(out + "/analysis.json", numbers.dump(1) + "\n");
  report::write_html_report(out + "/report.html", doc);
  if (!args.no_png) {
    progress.stage("drawing " + std::to_string(charts.size()) + " PNG figures", 1);
    report::export_pngs(charts, out + "/figures");
  }
  progress.finish();
  std::printf("report: %s/report.html (%zu charts)\nnumbers: %s/analysis.json\n", out.c_str(), charts.size(),
              out.c_str());
  if (!args.no_png) std::printf("figures: %s/figures/*.png\n", out.c_str());
}

void register_analyze_report_command(CLI::App& analyze) {
  auto args = std::make_shared<ReportArgs>();
  auto& o = args->options;
  CLI::App* cmd = analyze.add_subcommand(
      "report", "Every analysis of the three papers on a checkpoint: report.html, analysis.json, PNG figures");
  cmd->add_option("checkpoint", args->checkpoint, kModelSourceHelp)->required();
  CLI::Option* split = cmd->add_option("--split", o.split, "Which split to trace")
                           ->check(CLI::IsMember({"val", "test", "train"}))
                           ->capture_default_str();
  cmd->add_option("--text", o.text_file, "Trace a text file instead of a split (no POS/genre analyses)")
      ->check(CLI::ExistingFile)
      ->excludes(split);
  cmd->add_option("--out", args->out,
                  "Output folder (default: <run folder>/analysis/report; for a Hugging Face folder "
                  "analysis/<its name>/report under the current folder)");
  cmd->add_option("--data", o.data_dir, "Data folder (default: the one in the checkpoint's config)");
  cmd->add_option("--max-tokens", o.max_tokens, "Trace only the first this many tokens (0: all)")
      ->check(whole_number(0, INT64_MAX, "0: all"));
  cmd->add_option("--seq-len", o.seq_len, kSeqLenHelp)->check(whole_number(0, INT64_MAX, "0: train.seq_len"));
  cmd->add_option("--sample-tokens", o.sample_tokens, "Tokens every expert is run on for the dynamic expert analysis")
      ->check(whole_number(1))
      ->capture_default_str();
  cmd->add_option("--match-neurons", o.static_options.max_matched_neurons,
                  "Neurons matched per expert pair in the static analysis: experts with more are matched on this many, "
                  "evenly spaced (a matching costs the cube of it)")
      ->check(whole_number(2))
      ->capture_default_str();
  cmd->add_option("--permutations", o.permutations, "Shuffled-label permutations of the specialisation baseline")
      ->check(whole_number(2, 100000))
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of the permutations")->capture_default_str();
  cmd->add_option_function<std::string>(
         "--shuffle", [&o](const std::string& v) { o.shuffle_windows = v == "window"; },
         "What the specialisation baseline shuffles: whole windows' labels (default; fair to clustered labels and "
         "sequence-level routing) or single tokens' labels")
      ->check(CLI::IsMember({"window", "token"}));
  cmd->add_option("--prompt", o.prompt, "Text whose chosen experts and gate activations are mapped per token")
      ->capture_default_str();
  cmd->add_flag("--no-png", args->no_png, "Skip the PNG figures (report.html and analysis.json only)");
  cmd->callback([args] { run_report(*args); });
}

}  // namespace

void register_analyze_command(CLI::App& app) {
  CLI::App* analyze = app.add_subcommand("analyze", "Dissect a checkpoint: routing traces and the papers' analyses");
  analyze->require_subcommand(1);
  register_analyze_trace_command(*analyze);
  register_analyze_report_command(*analyze);
}

}  // namespace moelab::cli
