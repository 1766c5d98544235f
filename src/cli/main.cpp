// The `moelab` command: data preparation, training, evaluation, generation and analysis of MoE language models.
// Every failure ends here as one `moelab: error: ...` line and exit status 1: bad input (moelab::Error), a command
// line CLI11 refuses, and memory the machine cannot give.
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "core/version.h"

namespace {

// The named subcommands of a command, as "data, train, eval".
std::string command_names(const CLI::App& app) {
  std::string names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App* s) { return !s->get_name().empty(); }))
    names += (names.empty() ? "" : ", ") + sub->get_name();
  return names;
}

// A word where a command that needs a subcommand expects one, and names none of them: CLI11 only says "A
// subcommand is required". Walks the words before the first option through the subcommands they name.
std::string unknown_command_message(const CLI::App& app, int argc, char** argv) {
  const CLI::App* level = &app;
  std::string path;  // "analyze": the commands named so far
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] == '-' || level->get_require_subcommand_min() == 0) break;
    const auto named = level->get_subcommands([&](const CLI::App* s) { return s->check_name(word); });
    if (named.empty())
      return "unknown command '" + (path.empty() ? word : path + " " + word) + "'; " +
             (path.empty() ? "commands" : "commands of " + path) + ": " + command_names(*level);
    level = named.front();
    path += (path.empty() ? "" : " ") + word;
  }
  if (level->get_require_subcommand_min() > 0 && level->get_subcommands().empty())
    return "a command is required" + (path.empty() ? "" : " after '" + path + "'") +
           "; commands: " + command_names(*level);
  return "";
}

// "moelab analyze report": the deepest command the parse reached, for the help hint.
std::string command_path(const CLI::App& app) {
  std::string path = "moelab";
  for (const CLI::App* level = &app; !level->get_subcommands().empty();) {
    level = level->get_subcommands().front();
    path += " " + level->get_name();
  }
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moelab: train, evaluate and dissect Mixture-of-Experts language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("moelab ") + moelab::kVersion);
  moelab::cli::register_data_command(app);
  moelab::cli::register_train_command(app);
  moelab::cli::register_eval_command(app);
  moelab::cli::register_generate_command(app);
  moelab::cli::register_params_command(app);
  moelab::cli::register_analyze_command(app);
  moelab::cli::register_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help (exit 0) and a callback's own exit status (130, 143 after a stop signal) are not errors.
    if (e.get_exit_code() == 0 || e.get_name() == "RuntimeError") return app.exit(e);
    std::string message = e.get_name() == "RequiredError" ? unknown_command_message(app, argc, argv) : "";
    if (message.empty()) message = e.what();
    std::fprintf(stderr, "moelab: error: %s\nRun `%s --help` for more information.\n", message.c_str(),
                 command_path(app).c_str());
    return 1;
  } catch (const moelab::Error& e) {
    std::fprintf(stderr, "moelab: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    // The last resort: configs are checked against the machine's memory before their buffers are allocated, but an
    // estimate is rough and other processes take memory too.
    std::fprintf(stderr,
                 "moelab: error: out of memory: an allocation failed; smaller sizes (train.batch_size, "
                 "train.seq_len, model.d_model, moe.n_experts, moe.expert_hidden) need less\n");
    return 1;
  }
  return 0;
}
