// moelab train CONFIG [--set key=value ...] [--resume DIR]
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "model/config.h"
#include "train/checkpoint.h"
#include "train/stop_requests.h"
#include "train/trainer.h"

namespace moelab::cli {

namespace {

struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string resume;
  bool overwrite = false;
};

// The trainer can only say that a data folder is missing; here it is known where data.dir came from, and so how to
// fix it.
void check_data_folder(const Config& cfg, const TrainArgs& a, const std::string& checkpoint) {
  if (std::filesystem::is_directory(cfg.data.dir)) return;
  if (!checkpoint.empty())
    throw_error("--resume ", a.resume, ": the data folder ", cfg.data.dir, " of checkpoint ", checkpoint,
                " (data.dir in its config.json) does not exist; name the folder it was trained on with --set "
                "data.dir=DIR");
  throw_error("config ", a.config, ": the data folder data.dir = \"", cfg.data.dir,
              "\" does not exist; prepare it with `moelab data brown --out ", cfg.data.dir,
              "` or `moelab data text FILE... --out ", cfg.data.dir, "`, or fix data.dir in ", a.config,
              " (a relative path there is read against the file's folder)");
}

void run_train(const TrainArgs& a) {
  take_stop_signals_on_a_watcher_thread();  // first, while this is the only thread
  Config cfg;
  std::string ckpt;
  if (!a.resume.empty()) {
    // A resumed run continues with exactly the configuration it was started with; --set may still change
    // settings that do not alter the model (e.g. train.steps to train longer).
    // It writes into the run folder of the checkpoint the user named, wherever the run was first started, unless
    // --set train.out_dir names another.
    ckpt = resolve_checkpoint(a.resume);
    cfg = load_checkpoint_config(ckpt);
    cfg.train.out_dir = run_folder_of(ckpt);
    apply_overrides(cfg, a.overrides);
    if (!a.config.empty()) {
      Config given = load_config(a.config, a.overrides);
      given.model.vocab_size = cfg.model.vocab_size;
      if (!same_settings(given, cfg))
        throw_error("--resume ", a.resume, ": the checkpoint was trained with a different configuration than ",
                    a.config, "; omit CONFIG to continue with the checkpoint's own (", ckpt, "/config.json)");
    }
  } else {
    if (a.config.empty()) throw_error("moelab train: a CONFIG file is required (or --resume DIR)");
    cfg = load_config(a.config, a.overrides);
  }
  validate(cfg);
  check_data_folder(cfg, a, ckpt);
  const TrainOutcome out = train(cfg, a.resume, a.overwrite);
  if (out.stopped_by_signal != 0) throw CLI::RuntimeError(128 + out.stopped_by_signal);  // 130 SIGINT, 143 SIGTERM
  std::printf("trained %lld steps; final validation loss %.4f; checkpoint %s\n", static_cast<long long>(out.steps_done),
              out.final_val_loss, out.checkpoint.c_str());
}

}  // namespace

void register_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model from a TOML config");
  cmd->add_option("config", args->config, "TOML config file (see configs/ and docs/config.md)");
  cmd->add_option("--set", args->overrides, "Override one setting: section.key=value (repeatable)")
      ->type_name("KEY=VALUE");
  cmd->add_option("--resume", args->resume,
                  "Continue an interrupted run from its run folder or a checkpoint folder, exactly where it stopped");
  cmd->add_flag("--overwrite", args->overwrite,
                "Clear train.out_dir first when it holds another run's files (otherwise such a folder is refused)");
  cmd->callback([args] { run_train(*args); });
}

}  // namespace moelab::cli
