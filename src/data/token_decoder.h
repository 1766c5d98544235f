// A tokenizer.json "decoder": how the pieces of a list of ids become text again. Steps: ByteLevel (the byte-level
// alphabet back to bytes), Metaspace ("▁" back to a space, the first one of the text dropped when one was put
// before it), Replace (a literal string by another, in each piece), ByteFallback (runs of <0xNN> pieces back to
// their bytes, U+FFFD for each byte of a run that is not UTF-8), Fuse (the pieces joined into one), Strip (up to n
// given characters from the start and end of each piece), and Sequence of these. Any other is refused by name.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moelab::data {

class TokenDecoder {
 public:
  // `where` names the file in errors; null JSON joins the pieces as they are.
  static TokenDecoder from_json(const nlohmann::json& j, const std::string& where);
  // The text of `pieces`, decoded as the start of a text (Metaspace and Strip drop what was put before it).
  std::string decode(std::vector<std::string> pieces) const;
  // The bytes one piece stands for in running text (nothing dropped; bytes that are not UTF-8 on their own, as a
  // byte-level piece may hold a part of a character, counted as they are).
  size_t piece_bytes(const std::string& piece) const;

 private:
  std::string run(std::vector<std::string> pieces, bool start_of_text, bool raw_bytes) const;
  struct Step {
    enum class Kind { ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip } kind;
    std::string from, to;            // Replace; Metaspace's replacement (from) for " " (to); Strip's character
    bool strip_first_space = false;  // Metaspace: a prepend scheme other than never
    int start = 0, stop = 0;         // Strip
  };
  static void add_steps(const nlohmann::json& j, const std::string& where, std::vector<Step>& steps);
  std::vector<Step> steps_;
};

}  // namespace moelab::data
