// A regular expression of a tokenizer.json (pre-tokenizer splits, normalizer replacements), run by Oniguruma, the
// engine Hugging Face's tokenizers library runs them with, in its default syntax: \p{L}-style Unicode classes,
// (?i:...), look-ahead such as \s+(?!\S) all mean what they mean there.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace moelab::data {

class OnigRegex {
 public:
  // Throws moelab::Error naming `where` and Oniguruma's complaint when the pattern does not compile.
  OnigRegex(const std::string& pattern, const std::string& where);
  OnigRegex(OnigRegex&&) noexcept;
  ~OnigRegex();

  // The first non-empty match in text at or after byte `start`: true and its byte range, or false. Throws naming the
  // pattern when Oniguruma gives up (its retry limit), rather than pass for no match.
  bool find(std::string_view text, size_t start, size_t& begin, size_t& end) const;

 private:
  struct Compiled;
  std::string where_;  // the file, part and pattern, for errors
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace moelab::data
