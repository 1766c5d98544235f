// Each subcommand lives in its own file src/cli/cmd_<name>.cpp and adds itself to the app here.
// A register function declares the subcommand, its options and help text, and sets its callback; the callback
// throws moelab::Error on bad input, which main() turns into a message and exit code 1.
#pragma once

#include <CLI/CLI.hpp>

namespace moelab::cli {

void register_data_command(CLI::App& app);
void register_train_command(CLI::App& app);
void register_eval_command(CLI::App& app);
void register_generate_command(CLI::App& app);
void register_params_command(CLI::App& app);
void register_analyze_command(CLI::App& app);
void register_bench_command(CLI::App& app);
// The help of the first argument of eval, generate and analyze: what open_model_source opens.
inline constexpr const char* kModelSourceHelp =
    "A checkpoint folder, a run folder (its latest checkpoint), or a Hugging Face model folder (config.json, "
    "safetensors, tokenizer.model)";

// The help of --seq-len of eval and analyze.
inline constexpr const char* kSeqLenHelp =
    "Tokens per window (at most the model's context; 0: the config's train.seq_len): a pretrained model reads a "
    "longer context than moelab's default window";

// Adds `trace` to the `analyze` command (cmd_analyze_trace.cpp).
void register_analyze_trace_command(CLI::App& analyze);

}  // namespace moelab::cli
