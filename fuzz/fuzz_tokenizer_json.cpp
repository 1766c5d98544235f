// Fuzzes the tokenizer.json reader and what a loaded file then does: either the file is refused with moelab::Error,
// or it encodes a text of every kind of character and decodes the ids, without a crash. Seeds: a byte-level file
// (GPT-2's split, NFC, an added token) and a SentencePiece-style one (Prepend and Replace, byte fallback, the
// Replace / ByteFallback / Fuse / Strip decoder).
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/tokenizer_json.h"
#include "fuzz_input_file.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string seeds = moelab::fuzz::seeds_dir();
  if (seeds.empty()) return 0;
  const std::string byte_level = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, " ": 2, "\u0120": 3,
    "\u0120a": 4, "ab": 5}, "merges": ["\u0120 a", "a b"], "ignore_merges": true},
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex":
      "(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s+(?!\\S)|\\s+"},
      "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
    "added_tokens": [{"id": 6, "content": "<|end|>", "special": true, "lstrip": true}],
    "decoder": {"type": "ByteLevel"}})";
  const std::string piece_style = R"({"model": {"type": "BPE", "vocab": {"<unk>": 0, "<s>": 1, "\u2581": 2, "a": 3,
    "\u2581a": 4, "<0x0A>": 5}, "merges": ["\u2581 a"], "unk_token": "<unk>", "byte_fallback": true,
    "fuse_unk": true},
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": true},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"},
      "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
      {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [1]}}}})";
  moelab::fuzz::write_bytes(seeds + "/byte_level.json", byte_level.data(), byte_level.size());
  moelab::fuzz::write_bytes(seeds + "/piece_style.json", piece_style.data(), piece_style.size());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string text =
      "Hello, a ab  b\n\n\t42 1234 caf\xC3\xA9 cafe\xCC\x81 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\xA4\x97 <|end|> <s>";
  try {
    const auto tok = moelab::data::TokenizerJson::load(moelab::fuzz::input_file("tokenizer.json", data, size));
    std::vector<moelab::data::TokenSpan> spans;
    tok->encode(text, 0, spans);
    std::vector<int32_t> ids;
    for (const auto& s : spans) ids.push_back(s.id);
    tok->decode(ids);
    tok->piece_bytes();
  } catch (const moelab::Error&) {
  }
  return 0;
}
