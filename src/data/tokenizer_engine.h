// What a tokenizer's own algorithm provides to data::Tokenizer, which adds how documents are framed (tokenizer.h):
// SentencePiece's tokenizer.model (tokenizer.cpp) and Hugging Face's tokenizer.json (tokenizer_json.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::data {

struct TokenSpan {
  int32_t id = 0;
  uint32_t begin = 0, end = 0;  // byte range [begin, end) in the encoded text
};

class TokenizerEngine {
 public:
  virtual ~TokenizerEngine() = default;
  // The file name the engine's model is stored under: "tokenizer.model" or "tokenizer.json".
  virtual const char* file_name() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int32_t eod_id() const = 0;  // -1: none
  virtual int32_t bos_id() const = 0;  // -1: none
  virtual std::string piece(int32_t id) const = 0;
  // Appends the tokens of text with their byte ranges, shifted by `offset` (where text starts in the input).
  virtual void encode(std::string_view text, uint32_t offset, std::vector<TokenSpan>& out) const = 0;
  // [vocab] the bytes each id stands for in running text (Tokenizer::piece_bytes).
  virtual std::vector<int32_t> piece_bytes() const = 0;
  // Text of the ids; control ids (beginning and end of sequence, other special tokens) decode to nothing.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
};

}  // namespace moelab::data
