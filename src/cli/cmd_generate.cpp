// moelab generate CHECKPOINT|HF_DIR --prompt TEXT [--max-tokens N] [--temperature T] [--top-k K] [--seed S] [--data
// DIR]
#include <cstdio>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "eval/generate.h"
#include "eval/model_source.h"

namespace moelab::cli {

namespace {

struct GenerateArgs {
  std::string checkpoint;
  std::string prompt;
  std::string data_dir;
  SamplingOptions sampling;
};

void run_generate(GenerateArgs a) {
  const ModelSource source = open_model_source(a.checkpoint, a.data_dir);  // tokenizer and model checked to agree
  const data::Tokenizer& tokenizer = source.tokenizer;
  a.sampling.stop_token = tokenizer.eod_id();
  a.sampling.vocab_limit = tokenizer.vocab_size();
  const std::vector<int32_t> prompt = tokenizer.encode_prompt(a.prompt);
  const std::vector<int32_t> produced = generate(*source.model, prompt, a.sampling);
  std::printf("%s%s\n", a.prompt.c_str(), tokenizer.decode_continuation(prompt, produced).c_str());
}

}  // namespace

void register_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt by sampling from a checkpoint");
  cmd->add_option("checkpoint", args->checkpoint, kModelSourceHelp)->required();
  cmd->add_option("--prompt", args->prompt, "Text to continue")->required();
  cmd->add_option("--max-tokens", args->sampling.max_new_tokens, "Tokens to generate at most")
      ->capture_default_str()
      ->check(whole_number(1, 100000));
  cmd->add_option("--temperature", args->sampling.temperature, "Softmax temperature; 0 picks the most likely token")
      ->capture_default_str()
      ->check(finite_number(0.0, 100.0));
  cmd->add_option("--top-k", args->sampling.top_k, "Sample among the k most likely tokens; 0: all")
      ->capture_default_str()
      ->check(whole_number(0, INT64_MAX, "0: all"));
  cmd->add_option("--seed", args->sampling.seed, "Random seed of the sampler")->capture_default_str();
  cmd->add_option("--data", args->data_dir,
                  "Data folder with the tokenizer (default: the checkpoint config's; none for a Hugging Face folder)");
  cmd->callback([args] { run_generate(*args); });
}

}  // namespace moelab::cli
