// A data folder: what `moelab data` writes and what training and evaluation read.
//
//   meta.json          format_version, corpus, vocab_size, dtype, eod_id, tokenizer, splits{train,val,test:
//                      {tokens, documents}}, labels: [{name, per: "word" | "document", classes: [...]}] (the label
//                      channels, label_channel.h; empty for an unlabelled corpus); for a folder encoded with a
//                      pretrained model's tokenizer, framing: {whole_text: true, bos_id: N or -1} (each document
//                      encoded whole and started with bos_id; absent: moelab's line-by-line encoding, no start id)
//   tokenizer.model    the SentencePiece model (or tokenizer.json, a pretrained model's Hugging Face tokenizer)
//   <split>.bin        flat little-endian token ids, uint16 (vocab_size <= 65535) or uint32; every document's tokens
//                      are followed by the end-of-document id
//   <split>.<name>.u8  one byte per token for each label channel: the token's class id, 255 for none. Brown writes
//                      <split>.pos.u8 (the universal POS class of the word the token's first non-space byte belongs
//                      to; none for end-of-document) and <split>.genre.u8 (its document's genre, end-of-document
//                      included)
//
// Folders of the first format (format_version 1: genre_names and pos_names instead of labels) are still read, as
// the channels "pos" (word) and "genre" (document); their side files have the same names.
//
// Every file is replaced atomically, and meta.json is removed first and written last: an interrupted run leaves no
// meta.json that describes files which are not all there.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/document.h"
#include "data/label_channel.h"

namespace moelab::data {

inline constexpr int64_t kDataFormatVersion = 2;

// The content of one split, in memory: tokens and (for labelled corpora) aligned labels.
struct SplitTokens {
  std::vector<uint32_t> tokens;              // [n]
  std::vector<std::vector<uint8_t>> labels;  // [channels][n], channels as in DataDescription::labels
  int64_t documents = 0;
};

// What meta.json says beyond the per-split counts (which are taken from the splits written).
struct DataDescription {
  std::string corpus;  // "brown", "text"
  int64_t vocab_size = 0;
  int32_t eod_id = 0;
  std::vector<LabelChannel> labels;                // empty: an unlabelled corpus
  std::string tokenizer_file = "tokenizer.model";  // or "tokenizer.json"
  bool whole_text = false;                         // documents encoded whole (a pretrained model's tokenizer)
  int32_t bos_id = -1;                             // the id each document starts with; -1: none
};

// "uint16" when every id of a vocabulary of this size fits (vocab_size <= 65535), "uint32" otherwise.
std::string token_dtype(int64_t vocab_size);

// Writes a complete data folder (created if missing; files of an earlier run are replaced, stale side files
// removed). Splits are indexed like kSplitNames; each split has one label vector per channel of the description, as
// long as its tokens.
void write_data_folder(const std::string& dir, const DataDescription& description,
                       const std::array<SplitTokens, kNumSplits>& splits, const std::string& tokenizer_bytes);

// One opened data folder, validated: meta.json (every field), each split's .bin (present, size a multiple of the
// dtype, as many tokens as meta.json says, every id < vocab_size, ending with end-of-document, one
// end-of-document per document) and side files (one per channel and split, one byte per token, labels in range).
// Tokens stay in memory in their file width and are widened to int32 when copied out.
class TokenData {
 public:
  static TokenData open(const std::string& dir);  // throws moelab::Error naming the file and what was expected

  const std::string& dir() const { return dir_; }
  const std::string& corpus() const { return corpus_; }
  int64_t vocab_size() const { return vocab_size_; }
  int32_t eod_id() const { return eod_id_; }
  std::string tokenizer_path() const;
  // How documents were encoded: whole (a pretrained model's tokenizer) or line by line, and the id each starts with
  // (-1: none). Every document ends with eod_id either way.
  bool whole_text() const { return whole_text_; }
  int32_t bos_id() const { return bos_id_; }
  const std::vector<LabelChannel>& label_channels() const { return channels_; }  // empty for unlabelled corpora

  // Splits are named "train" | "val" | "test"; any other name throws moelab::Error.
  int64_t split_tokens(const std::string& split) const;
  int64_t split_documents(const std::string& split) const;
  // Copies tokens [start, start + count) of the split, widened.
  void copy_tokens(const std::string& split, int64_t start, int64_t count, int32_t* out /*[count]*/) const;
  // Per-token class ids of the split in label channel `channel` (an index into label_channels()).
  const uint8_t* labels(const std::string& split, size_t channel) const;  // [split_tokens]

 private:
  struct Split {
    std::vector<uint16_t> ids16;               // [tokens] when the dtype is uint16
    std::vector<uint32_t> ids32;               // [tokens] when the dtype is uint32
    std::vector<std::vector<uint8_t>> labels;  // [channels][tokens]
    int64_t tokens = 0, documents = 0;
  };
  const Split& split(const std::string& name) const;

  std::string dir_, corpus_, tokenizer_file_;
  int64_t vocab_size_ = 0;
  int32_t eod_id_ = 0;
  bool whole_text_ = false;
  int32_t bos_id_ = -1;
  std::vector<LabelChannel> channels_;
  std::array<Split, kNumSplits> splits_;
};

}  // namespace moelab::data
