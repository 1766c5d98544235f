// A corpus document as the data pipeline sees it: its plain text (what the tokenizer reads) and, for labelled
// corpora, its words with their byte ranges in that text and their universal POS class (Brown), and its own
// labels (Brown's genre, a researcher's label fields).
// Also the three split names every data folder uses.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::data {

// Label value meaning "no label" in the per-token side files (a token with no word, e.g. end-of-document).
inline constexpr uint8_t kNoLabel = 255;

// Split indices and the names used for files and meta.json: train.bin, val.bin, test.bin.
inline constexpr int kNumSplits = 3;
inline constexpr std::array<std::string_view, kNumSplits> kSplitNames = {"train", "val", "test"};

struct Word {
  uint32_t begin = 0, end = 0;  // byte range [begin, end) in Document::text
  uint8_t pos = kNoLabel;       // universal POS class id (see pos_class_names() in brown_corpus.h)
  std::string tag;              // the corpus's own tag, as written there (Brown: lower case, e.g. "nn-tl")
};

struct Document {
  std::string name;         // e.g. "ca01", the file a plain-text document came from, or "FILE:LINE" of a JSONL one
  std::string text;         // Brown: one sentence per line, each ending in '\n'; plain text: the file as it is
  std::vector<Word> words;  // in text order, non-overlapping; empty for unlabelled corpora
  // One value per document label channel of the corpus (label_channel.h), in channel order; "" = none. Brown:
  // {genre name}; `data text --label a --label b`: {a's value, b's value}.
  std::vector<std::string> labels;
  std::string split;  // the split the corpus itself gives it (`data text --split-field`), or empty
};

// Documents of each split, indexed like kSplitNames.
using SplitDocuments = std::array<std::vector<Document>, kNumSplits>;

}  // namespace moelab::data
