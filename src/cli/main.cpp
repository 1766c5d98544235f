// The `moelab` command: data preparation, training, evaluation, generation and analysis of MoE language models.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"moelab: train, evaluate and dissect Mixture-of-Experts language models"};
  app.require_subcommand(1);
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
    return app.exit(e);
  } catch (const moelab::Error& e) {
    std::fprintf(stderr, "moelab: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
