// tokenizer.json, part by part, on hand-made files whose right answers are worked out by hand: BPE merge order,
// byte fallback and unknown tokens, ignore_merges, the byte-level alphabet, the split behaviours, normalisers with
// byte ranges kept, added tokens and their strip rules, the decoders; and every unsupported part refused by name.
// tests/hf/test_hf_tokenizer_reference.cpp checks the real files against Hugging Face's own library.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/byte_level.h"
#include "data/tokenizer.h"
#include "data/tokenizer_json.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab::data {
namespace {

using json = nlohmann::json;

// A tokenizer.json of the given parts, written and loaded.
std::unique_ptr<TokenizerJson> load(const json& file, testing::TempDir& dir) {
  testing::write_all(dir.file("tokenizer.json"), file.dump());
  return TokenizerJson::load(dir.file("tokenizer.json"));
}

json bpe(json vocab, json merges) {
  return {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}, {"dropout", nullptr}};
}

std::vector<TokenSpan> spans_of(const TokenizerJson& tok, const std::string& text) {
  std::vector<TokenSpan> out;
  tok.encode(text, 0, out);
  return out;
}

std::vector<int32_t> ids_of(const TokenizerJson& tok, const std::string& text) {
  std::vector<int32_t> ids;
  for (const TokenSpan& s : spans_of(tok, text)) ids.push_back(s.id);
  return ids;
}

TEST(TokenizerJson, MergesTheLowestRankedPairFirst) {
  testing::TempDir dir;
  // "abc": the pairs are (a,b) rank 1 and (b,c) rank 0, so b+c merges first, then a+bc (rank 2). Merged the other
  // way round it would stop at "ab" "c", since there is no merge of (ab, c).
  const auto tok = load({{"model", bpe({{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abc", 5}},
                                       {"b c", "a b", json::array({"a", "bc"})})}},
                        dir);
  const std::vector<TokenSpan> s = spans_of(*tok, "abc");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].id, 5);
  EXPECT_EQ(s[0].begin, 0u);
  EXPECT_EQ(s[0].end, 3u);
  // Equal ranks cannot happen; the leftmost of two occurrences of the same pair merges first: "abab" -> ab ab.
  EXPECT_EQ(ids_of(*tok, "abab"), (std::vector<int32_t>{3, 3}));
  EXPECT_EQ(ids_of(*tok, "cab"), (std::vector<int32_t>{2, 3}));
}

TEST(TokenizerJson, IgnoreMergesTakesAWholePieceInTheVocabulary) {
  testing::TempDir dir;
  // Without ignore_merges "xyz" is x + yz (no merge makes xyz); with it, the vocabulary's "xyz" is taken whole.
  json model = bpe({{"x", 0}, {"y", 1}, {"z", 2}, {"yz", 3}, {"xyz", 4}}, {"y z"});
  EXPECT_EQ(ids_of(*load({{"model", model}}, dir), "xyz"), (std::vector<int32_t>{0, 3}));
  model["ignore_merges"] = true;
  EXPECT_EQ(ids_of(*load({{"model", model}}, dir), "xyz"), (std::vector<int32_t>{4}));
}

TEST(TokenizerJson, UnknownCharactersFallBackToBytesOrTheUnknownToken) {
  testing::TempDir dir;
  json vocab = {{"<unk>", 0}, {"a", 1}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 2 + b;
  }
  json model = bpe(vocab, json::array());
  model["unk_token"] = "<unk>";
  model["byte_fallback"] = true;
  // "é" is not in the vocabulary: its bytes C3 A9 as two byte tokens, each spanning its own byte.
  const std::vector<TokenSpan> s = spans_of(*load({{"model", model}}, dir), "a\xC3\xA9");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[1].id, 2 + 0xC3);
  EXPECT_EQ(s[2].id, 2 + 0xA9);
  EXPECT_EQ(s[1].begin, 1u);
  EXPECT_EQ(s[2].end, 3u);
  // Without byte fallback: the unknown token, one per character, or one per run with fuse_unk.
  model["byte_fallback"] = false;
  EXPECT_EQ(ids_of(*load({{"model", model}}, dir),
                   "\xC3\xA9\xC3\xA9"
                   "a"),
            (std::vector<int32_t>{0, 0, 1}));
  model["fuse_unk"] = true;
  EXPECT_EQ(ids_of(*load({{"model", model}}, dir),
                   "\xC3\xA9\xC3\xA9"
                   "a"),
            (std::vector<int32_t>{0, 1}));
  // Neither: an error naming the text.
  model.erase("unk_token");
  const auto tok = load({{"model", model}}, dir);
  EXPECT_CONTAINS(testing::error_of([&] { ids_of(*tok, "\xC3\xA9"); }), "neither byte fallback nor an unknown token");
}

TEST(TokenizerJson, ByteLevelAlphabetIsGpt2s) {
  const auto& chars = byte_level_chars();
  EXPECT_EQ(chars[' '], U'\u0120');   // Ġ
  EXPECT_EQ(chars['\n'], U'\u010A');  // Ċ
  EXPECT_EQ(chars['A'], U'A');
  EXPECT_EQ(chars[0xAD], U'\u0143');  // the soft hyphen is not printable: the 68th byte moved up
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string back;
  ASSERT_TRUE(from_byte_level(to_byte_level(all), back));
  EXPECT_EQ(back, all);
  EXPECT_FALSE(from_byte_level("\xE2\x96\x81", back));  // "▁" is not in the alphabet
}

// Each Split behaviour on "a-b--c" with the pattern "-", as Hugging Face's SplitDelimiterBehavior documents it.
TEST(TokenizerJson, SplitBehaviours) {
  testing::TempDir dir;
  json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"-", 3}};
  const auto pieces = [&](const std::string& behavior, bool invert) {
    json pre = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
    const auto tok = load({{"model", bpe(vocab, json::array())}, {"pre_tokenizer", pre}}, dir);
    std::vector<std::string> out;
    for (const TokenSpan& s : spans_of(*tok, "a-b--c")) out.push_back(std::to_string(s.begin) + ":" + tok->piece(s.id));
    return out;
  };
  // With no merges every character is a token: what the behaviours change is which pieces are fed to the model, so
  // the tokens must be the same, and Removed drops the dashes.
  const std::vector<std::string> all = {"0:a", "1:-", "2:b", "3:-", "4:-", "5:c"};
  EXPECT_EQ(pieces("Isolated", false), all);
  EXPECT_EQ(pieces("MergedWithPrevious", false), all);
  EXPECT_EQ(pieces("Removed", false), (std::vector<std::string>{"0:a", "2:b", "5:c"}));
  EXPECT_EQ(pieces("Removed", true), (std::vector<std::string>{"1:-", "3:-", "4:-"}));
}

// The pieces themselves, seen through merges across a split boundary: "ab" merges only when a and b are in one
// piece.
TEST(TokenizerJson, SplitBehavioursDecideWhatMerges) {
  testing::TempDir dir;
  json vocab = {{"a", 0}, {"b", 1}, {"-", 2}, {"a-", 3}, {"-b", 4}, {"--", 5}};
  json merges = {"a -", "- b", "- -"};
  const auto ids = [&](const std::string& behavior) {
    json pre = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}};
    return ids_of(*load({{"model", bpe(vocab, merges)}, {"pre_tokenizer", pre}}, dir), "a-b--b");
  };
  EXPECT_EQ(ids("Isolated"), (std::vector<int32_t>{0, 2, 1, 2, 2, 1}));
  EXPECT_EQ(ids("MergedWithPrevious"), (std::vector<int32_t>{3, 1, 2, 2, 1}));  // a- | b- | - | b
  EXPECT_EQ(ids("MergedWithNext"), (std::vector<int32_t>{0, 4, 2, 4}));         // a | -b | - | -b
  EXPECT_EQ(ids("Contiguous"), (std::vector<int32_t>{0, 2, 1, 5, 1}));          // a | - | b | -- | b
}

// Llama / Mistral style: a "▁" put before the text and for every space, byte fallback for a newline; each token's
// range in the input, and decoding back to the text.
TEST(TokenizerJson, SentencePieceStyleKeepsByteRangesAndDecodesBack) {
  testing::TempDir dir;
  json vocab = {{"<unk>", 0}, {"<s>", 1},           {"\xE2\x96\x81", 2},   {"H", 3},
                {"i", 4},     {"\xE2\x96\x81H", 5}, {"\xE2\x96\x81Hi", 6}, {"<0x0A>", 7}};
  json model = bpe(vocab, {"\xE2\x96\x81 H", "\xE2\x96\x81H i"});
  model["unk_token"] = "<unk>", model["byte_fallback"] = true;
  const json file = {
      {"model", model},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}}},
      {"added_tokens",
       {{{"id", 0}, {"content", "<unk>"}, {"special", true}}, {{"id", 1}, {"content", "<s>"}, {"special", true}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}}};
  const auto tok = load(file, dir);
  const std::string text = "Hi Hi\nHi";
  const std::vector<TokenSpan> s = spans_of(*tok, text);
  // "▁Hi▁Hi\nHi": ▁Hi, ▁Hi, <0x0A>, H, i (no merge of H i without the ▁).
  std::vector<int32_t> ids;
  for (const TokenSpan& t : s) ids.push_back(t.id);
  EXPECT_EQ(ids, (std::vector<int32_t>{6, 6, 7, 3, 4}));
  // The first ▁ stands for no input byte but comes from the first character; the second is the space.
  EXPECT_EQ(s[0].begin, 0u);
  EXPECT_EQ(s[0].end, 2u);
  EXPECT_EQ(s[1].begin, 2u);
  EXPECT_EQ(s[1].end, 5u);
  EXPECT_EQ(s[2].begin, 5u);
  EXPECT_EQ(s[2].end, 6u);
  EXPECT_EQ(tok->decode(ids), text);
  EXPECT_EQ(tok->template_before(), (std::vector<int32_t>{1}));
  EXPECT_TRUE(tok->template_after().empty());
  // In running text "▁Hi" stands for 3 bytes (" Hi") and a byte piece for 1; special tokens for none.
  const std::vector<int32_t> bytes = tok->piece_bytes();
  EXPECT_EQ(bytes[6], 3);
  EXPECT_EQ(bytes[7], 1);
  EXPECT_EQ(bytes[1], 0);
  EXPECT_EQ(tok->decode({1, 6, 6}), "Hi Hi");  // <s> decodes to nothing
}

// GPT-2 style: byte-level, the text split by GPT-2's expression; a multi-byte character split over tokens decodes
// whole again, and its bytes count once.
TEST(TokenizerJson, ByteLevelEncodesEveryByteAndDecodesBack) {
  testing::TempDir dir;
  json vocab;
  for (int b = 0; b < 256; ++b) vocab[to_byte_level(std::string(1, static_cast<char>(b)))] = b;
  vocab
      ["\xC4\xA0"
       "a"] = 256;  // "Ġa"
  json model = bpe(vocab, {"\xC4\xA0 a"});
  const json file = {{"model", model},
                     {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
                     {"decoder", {{"type", "ByteLevel"}}}};
  const auto tok = load(file, dir);
  const std::string text = "a a\xF0\x9F\xA4\x97!";  // "a a🤗!"
  const std::vector<TokenSpan> s = spans_of(*tok, text);
  std::vector<int32_t> ids;
  int64_t bytes = 0;
  const std::vector<int32_t> piece_bytes = tok->piece_bytes();
  for (const TokenSpan& t : s) ids.push_back(t.id), bytes += piece_bytes[t.id];
  EXPECT_EQ(ids, (std::vector<int32_t>{'a', 256, 0xF0, 0x9F, 0xA4, 0x97, '!'}));
  EXPECT_EQ(s[1].begin, 1u);
  EXPECT_EQ(s[1].end, 3u);  // "Ġa" is " a"
  EXPECT_EQ(tok->decode(ids), text);
  EXPECT_EQ(bytes, static_cast<int64_t>(text.size()));
  // Half a character: one U+FFFD for the incomplete sequence, as Rust's from_utf8_lossy; a stray byte gets its own.
  EXPECT_EQ(tok->decode({0xF0, 0x9F, 'a'}),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(tok->decode({0x9F, 0x9F}), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TokenizerJson, NormalFormsKeepByteRanges) {
  testing::TempDir dir;
  json vocab = {{"c", 0}, {"a", 1}, {"f", 2}, {"\xC3\xA9", 3}, {"!", 4}};
  const auto tok = load({{"model", bpe(vocab, json::array())}, {"normalizer", {{"type", "NFC"}}}}, dir);
  // "cafe" + U+0301 composes to "café": the é token spans the e and the combining accent.
  const std::vector<TokenSpan> s = spans_of(*tok, "cafe\xCC\x81!");
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[3].id, 3);
  EXPECT_EQ(s[3].begin, 3u);
  EXPECT_EQ(s[3].end, 6u);
  EXPECT_EQ(s[4].begin, 6u);
  EXPECT_EQ(s[4].end, 7u);
}

// Strip takes Unicode whitespace (an ideographic space, a no-break space) from both ends, as Rust's is_whitespace.
TEST(TokenizerJson, StripTakesUnicodeWhitespace) {
  testing::TempDir dir;
  const auto tok = load({{"model", bpe({{"a", 0}, {"b", 1}}, json::array())},
                         {"normalizer", {{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}}},
                        dir);
  const std::vector<TokenSpan> s = spans_of(*tok, "\xE3\x80\x80 ab\xC2\xA0");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].begin, 4u);
  EXPECT_EQ(s[1].end, 6u);
}

TEST(TokenizerJson, AddedTokensAreCutOutFirstWithTheirStripRules) {
  testing::TempDir dir;
  json vocab = {{"a", 0}, {"b", 1}, {" ", 2}};
  const json file = {{"model", bpe(vocab, json::array())},
                     {"added_tokens",
                      {{{"id", 3}, {"content", "<x>"}, {"special", true}},
                       {{"id", 4}, {"content", "<x><y>"}, {"special", true}},
                       {{"id", 5}, {"content", "<z>"}, {"lstrip", true}, {"rstrip", true}},
                       {{"id", 6}, {"content", "ab"}, {"single_word", true}}}}};
  const auto tok = load(file, dir);
  EXPECT_EQ(ids_of(*tok, "a<x>b"), (std::vector<int32_t>{0, 3, 1}));
  EXPECT_EQ(ids_of(*tok, "a<x><y>b"), (std::vector<int32_t>{0, 4, 1}));   // the longest at a place
  EXPECT_EQ(ids_of(*tok, "a  <z>  b"), (std::vector<int32_t>{0, 5, 1}));  // the spaces go with <z>
  EXPECT_EQ(ids_of(*tok, "ab a"), (std::vector<int32_t>{6, 2, 0}));
  EXPECT_EQ(ids_of(*tok, "aab"), (std::vector<int32_t>{0, 0, 1}));  // inside a word: not the added token
  EXPECT_EQ(tok->id_of("<x><y>"), 4);
  EXPECT_EQ(tok->decode({0, 3, 5, 1}), "a<z>b");  // a special token decodes to nothing, another to its text
  EXPECT_EQ(tok->vocab_size(), 7);
}

TEST(TokenizerJson, WhatIsNotImplementedIsRefusedByName) {
  testing::TempDir dir;
  const json model = bpe({{"a", 0}}, json::array());
  const auto error = [&](const json& file) { return testing::error_of([&] { load(file, dir); }); };
  EXPECT_CONTAINS(error({{"model", {{"type", "WordPiece"}, {"vocab", {{"a", 0}}}}}}), "type 'WordPiece'");
  EXPECT_CONTAINS(error({{"model", model}, {"normalizer", {{"type", "BertNormalizer"}}}}),
                  "normalizer 'BertNormalizer' is not supported");
  EXPECT_CONTAINS(error({{"model", model}, {"pre_tokenizer", {{"type", "Whitespace"}}}}),
                  "pre_tokenizer Whitespace is not supported");
  EXPECT_CONTAINS(error({{"model", model}, {"decoder", {{"type", "WordPiece"}}}}), "decoder 'WordPiece'");
  EXPECT_CONTAINS(error({{"model", bpe({{"a", 0}}, {"a b"})}}), "merge 0 (\"a b\"): 'b' is not in the vocabulary");
  EXPECT_CONTAINS(
      error({{"model", model},
             {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}}}}),
      "does not compile");
  EXPECT_CONTAINS(
      error({{"model", model},
             {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"String", "a"}}}, {"behavior", "Sideways"}}}}),
      "field 'behavior'");
  // A field of the wrong type names it; one of another shape (a pattern that is a number) names the file.
  json flag_as_text = bpe({{"a", 0}}, json::array());
  flag_as_text["ignore_merges"] = "ByteLevel";
  EXPECT_CONTAINS(error({{"model", flag_as_text}}),
                  "field 'ignore_merges': expected true or false, found \"ByteLevel\"");
  EXPECT_CONTAINS(
      error({{"model", model},
             {"post_processor", {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", {{"id", 5}}}}}}}}}),
      "does not have the shape");
  // A pattern that backtracks without end on a text is an error when it is used, not a silent "no match".
  const auto runaway = load(
      {{"model", bpe({{"a", 0}, {"b", 1}}, json::array())},
       {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "(a|aa)+(?=b$)"}}}, {"behavior", "Isolated"}}}},
      dir);
  EXPECT_CONTAINS(testing::error_of([&] { ids_of(*runaway, std::string(64, 'a') + "bc"); }),
                  "cannot be matched on this text");
  testing::write_all(dir.file("tokenizer.json"), "{not json");
  EXPECT_CONTAINS(testing::error_of([&] { TokenizerJson::load(dir.file("tokenizer.json")); }),
                  dir.file("tokenizer.json") + ": not valid JSON");
}

}  // namespace
}  // namespace moelab::data
