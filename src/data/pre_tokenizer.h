// A tokenizer.json "pre_tokenizer": how normalised text is cut into the pieces the BPE model encodes one by one.
// Steps: Split (a literal string or a regular expression; the matches isolated, removed, or merged with the piece
// before or after them, or runs of matches kept together; optionally inverted), ByteLevel (GPT-2's: an optional
// space before the text, an optional split by GPT-2's own expression, then every byte spelled in the byte-level
// alphabet, byte_level.h), Metaspace (SentencePiece's: spaces become "▁", one put before the text, pieces start at
// each "▁"), Digits (digits apart from other text, each alone or in runs), and Sequence of these. Every piece keeps
// its bytes' origins in the input. Any other pre-tokenizer is refused by name.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/aligned_text.h"
#include "data/onig_regex.h"

namespace moelab::data {

// A Metaspace step's prepend_scheme ("always", "first", "never"); older files give add_prefix_space instead. The
// Metaspace decoder reads it too.
std::string metaspace_prepend_scheme(const nlohmann::json& step);

class PreTokenizer {
 public:
  // `where` names the file in errors; null JSON is no pre-tokenizer (the whole text is one piece).
  static PreTokenizer from_json(const nlohmann::json& j, const std::string& where);
  std::vector<AlignedText> apply(AlignedText text) const;
  // Whether the pieces are spelled in the byte-level alphabet (a ByteLevel step).
  bool byte_level() const;

 private:
  enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
  struct Step {
    enum class Kind { Split, ByteLevel, Metaspace, Digits } kind;
    std::string literal;                     // Split's literal pattern; Metaspace's replacement
    std::shared_ptr<const OnigRegex> regex;  // Split's regular expression; ByteLevel's with use_regex
    Behavior behavior = Behavior::Isolated;
    bool invert = false;        // Split: the matches are what is between the pattern's matches
    bool prefix_space = false;  // ByteLevel: add_prefix_space; Metaspace: prepend_scheme other than never
    bool first_only = false;    // Metaspace: prepend_scheme "first"
    bool split = true;          // Metaspace: start a piece at each replacement
    bool individual = false;    // Digits: each digit its own piece
  };
  static void add_steps(const nlohmann::json& j, const std::string& where, std::vector<Step>& steps);
  static void split(const AlignedText& piece, const Step& s, std::vector<AlignedText>& out);
  std::vector<Step> steps_;
};

}  // namespace moelab::data
