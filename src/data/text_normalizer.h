// A tokenizer.json "normalizer": what is done to the text before it is split and encoded. Steps: NFC, NFD, NFKC,
// NFKD (through utf8proc), Lowercase, Prepend (a string before non-empty text), Replace (a literal string or a
// regular expression by a string), Strip (whitespace at either end), and Sequence of these. Each step keeps every
// byte's origin in the input (aligned_text.h). Any other normalizer is refused by name.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/aligned_text.h"
#include "data/onig_regex.h"

namespace moelab::data {

class TextNormalizer {
 public:
  // `where` names the file in errors; null JSON is no normalizer.
  static TextNormalizer from_json(const nlohmann::json& j, const std::string& where);
  AlignedText apply(AlignedText text) const;

 private:
  struct Step {
    enum class Kind { Unicode, Lowercase, Prepend, Replace, Strip } kind;
    int unicode_options = 0;                 // utf8proc options of a Unicode normal form
    std::string text, content;               // Prepend's text; Replace's literal pattern and its replacement
    std::shared_ptr<const OnigRegex> regex;  // Replace's pattern when a regular expression
    bool left = false, right = false;        // Strip
  };
  static void add_steps(const nlohmann::json& j, const std::string& where, std::vector<Step>& steps);
  std::vector<Step> steps_;
};

}  // namespace moelab::data
