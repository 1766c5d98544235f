// Text on its way through a tokenizer's normalizer and pre-tokenizer, each byte carrying the byte range of the input
// it came from, so that every token can say which bytes of the input it stands for (a token's range is the union
// of its bytes' ranges) however the text was rewritten before it was cut into tokens.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::data {

struct AlignedText {
  std::string text;
  std::vector<uint32_t> from, to;  // [text.size()] the input bytes [from, to) each byte of text comes from

  // `input` as it is, its bytes numbered from `offset`.
  static AlignedText of(std::string_view input, uint32_t offset);
  bool empty() const { return text.empty(); }
  // Bytes [begin, end) with their origins.
  AlignedText slice(size_t begin, size_t end) const;
  // Appends bytes [begin, end) of `other` with their origins.
  void append(const AlignedText& other, size_t begin, size_t end);
  // Appends `bytes`, all coming from the input range [from, to).
  void append_from(std::string_view bytes, uint32_t from, uint32_t to);
  // Puts `bytes` before the text, all coming from the input range [from, to).
  void prepend_from(std::string_view bytes, uint32_t from, uint32_t to);
};

}  // namespace moelab::data
