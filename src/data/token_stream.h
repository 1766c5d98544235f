// A flat stream of token ids with their labels: what evaluation and routing traces read. It is a data folder's
// split (with the split's label channels) or a text file encoded with a tokenizer (no labels): the data folder's, or
// a pretrained model's, each document framed by its convention (tokenizer.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/label_channel.h"
#include "data/token_file.h"
#include "data/tokenizer.h"

namespace moelab::data {

struct TokenStream {
  std::string description;                   // for messages: "the val split of data/brown", "text file notes.txt"
  std::string split;                         // the split's name; empty for a text file
  std::vector<int32_t> tokens;               // [n]
  std::vector<LabelChannel> channels;        // empty for a text file
  std::vector<std::vector<uint8_t>> labels;  // [channels][n] class ids, kNoLabel = none
  int32_t eod_id = 0;                        // the end-of-document id, which pads a last partial window
};

// The first max_tokens tokens of a split (0: all) with the split's labels. Throws moelab::Error naming the data
// folder for an unknown split.
TokenStream token_stream_from_split(const TokenData& data, const std::string& split, int64_t max_tokens);

// The tokens of a text file (at most max_tokens; 0: all), each document encoded and framed by the tokenizer. Throws
// moelab::Error naming the file when it cannot be read, is not UTF-8 or has no text.
TokenStream token_stream_from_text(const Tokenizer& tokenizer, const std::string& path, int64_t max_tokens);

}  // namespace moelab::data
