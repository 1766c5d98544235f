#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/tokenizer.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

using data::Tokenizer;
using data::TokenSpan;

std::vector<std::string> tiny_sentences() {
  std::vector<std::string> s;
  const std::vector<std::string> base = {
      "The jury said it did find that the election was conducted .",
      "The House passed the bill on Sunday , and the governor signed it .",
      "Who will pay for it ?",
      "We don't think the plan is wise ;",
      "My dog ate the 4-7/8 inch pie .",
      "Why did the cat cross the road ?",
  };
  for (int r = 0; r < 5; ++r) s.insert(s.end(), base.begin(), base.end());
  s.push_back("");  // empty sentences are skipped
  return s;
}

const Tokenizer& tiny_tokenizer() {
  static const Tokenizer tok = Tokenizer::train(tiny_sentences(), 400);
  return tok;
}

TEST(Tokenizer, TrainsDeterministicallyWithReservedIds) {
  const Tokenizer& a = tiny_tokenizer();
  const Tokenizer b = Tokenizer::train(tiny_sentences(), 400);
  EXPECT_EQ(a.vocab_size(), 400);
  EXPECT_EQ(a.eod_id(), 2);
  EXPECT_EQ(a.model_bytes(), b.model_bytes());
  const std::string text = "The governor said the cat was wise .";
  EXPECT_EQ(a.encode_ids(text), b.encode_ids(text));
}

TEST(Tokenizer, EncodesWithByteRangesLineByLine) {
  const Tokenizer& tok = tiny_tokenizer();
  const std::string text = "The jury passed the bill .\n\nWho said that ?\nzebra";
  std::vector<TokenSpan> spans;
  tok.encode(text, spans);
  ASSERT_FALSE(spans.empty());
  // Ranges tile each line in order: every byte of a line belongs to exactly one token, nothing of the '\n's.
  std::string rebuilt;
  size_t expect_begin = 0;
  for (const auto& s : spans) {
    if (s.begin != expect_begin) {
      ASSERT_EQ(text.substr(expect_begin, s.begin - expect_begin).find_first_not_of('\n'), std::string::npos)
          << "gap before a token at " << s.begin << " holds more than line breaks";
      rebuilt += text.substr(expect_begin, s.begin - expect_begin);
    }
    ASSERT_LE(s.begin, s.end);
    rebuilt += text.substr(s.begin, s.end - s.begin);
    expect_begin = s.end;
    EXPECT_NE(s.id, tok.eod_id());
    EXPECT_NE(s.id, 0) << "no unknown tokens with byte fallback";
  }
  EXPECT_EQ(expect_begin, text.size());
  EXPECT_EQ(rebuilt, text);
  // Each token's piece text matches its range (SentencePiece's ▁ is the space before a word).
  std::vector<int32_t> ids;
  for (const auto& s : spans) ids.push_back(s.id);
  EXPECT_EQ(tok.decode(ids), "The jury passed the bill . Who said that ? zebra");
  EXPECT_EQ(tok.encode_ids(text), ids);
}

TEST(Tokenizer, ByteFallbackCoversUnseenCharacters) {
  const Tokenizer& tok = tiny_tokenizer();
  const std::string text = "caf\xC3\xA9 \xE2\x98\x83 Q";  // é and a snowman were never seen in training
  std::vector<TokenSpan> spans;
  tok.encode(text, spans);
  for (const auto& s : spans) EXPECT_NE(s.id, 0);
  std::vector<int32_t> ids;
  for (const auto& s : spans) ids.push_back(s.id);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_GE(spans.size(), 8u);  // at least 2 + 3 byte tokens for the two characters
  EXPECT_EQ(spans.back().end, text.size());
}

// Bits per byte divide by the bytes the scored tokens stand for. Lines that end in '\n', with single spaces: the
// word mark each line's first piece carries stands for the line break the line-by-line encoding consumed, so the
// pieces' bytes add up to the text's length exactly.
TEST(Tokenizer, PieceBytesAddUpToTheTextTheTokensStandFor) {
  const Tokenizer& tok = tiny_tokenizer();
  const auto bytes = tok.piece_bytes();
  ASSERT_EQ(static_cast<int64_t>(bytes.size()), tok.vocab_size());
  EXPECT_EQ(bytes[tok.eod_id()], 0);
  EXPECT_EQ(bytes[0], 0);  // <unk>
  EXPECT_EQ(bytes[1], 0);  // <s>
  const std::string text = "The jury passed the bill .\nWho said that ?\ncaf\xC3\xA9 \xE2\x98\x83 Q zebra\n";
  int64_t sum = 0;
  for (int32_t id : tok.encode_ids(text)) sum += bytes[id];
  EXPECT_EQ(sum, static_cast<int64_t>(text.size()));
  // Each piece that is not a byte stands for what it adds to a decoded text.
  for (int32_t id = 3; id < tok.vocab_size(); ++id) {
    const std::string added = tok.decode_continuation({tok.encode_ids("The")}, {id});
    // A byte piece alone decodes to U+FFFD (3 bytes) unless it is a whole character: it counts the 1 byte it is.
    if (bytes[id] != 1 || added.size() == 1) {
      EXPECT_EQ(bytes[id], static_cast<int32_t>(added.size())) << id;
    }
  }
}

TEST(Tokenizer, LoadsSavedModelAndRejectsGarbage) {
  testing::TempDir dir;
  testing::write_all(dir.file("tokenizer.model"), tiny_tokenizer().model_bytes());
  const Tokenizer loaded = Tokenizer::load(dir.file("tokenizer.model"));
  EXPECT_EQ(loaded.vocab_size(), 400);
  EXPECT_EQ(loaded.encode_ids("the cat ."), tiny_tokenizer().encode_ids("the cat ."));
  testing::write_all(dir.file("bad.model"), "this is not a model");
  try {
    Tokenizer::load(dir.file("bad.model"));
    FAIL() << "garbage must not load";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("bad.model")), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tokenizer::load(dir.file("absent.model")), Error);
}

// moelab's own convention: a document is its lines' tokens, then end-of-document; a prompt has no framing; a text
// without tokens is no document.
TEST(Tokenizer, MoelabsConventionEndsADocumentWithEndOfDocument) {
  const Tokenizer& tok = tiny_tokenizer();
  const std::string text = "The jury said it .\nWho will pay ?";
  std::vector<int32_t> want = tok.encode_ids(text);
  EXPECT_EQ(tok.encode_prompt(text), want);
  want.push_back(tok.eod_id());
  EXPECT_EQ(tok.encode_document(text), want);
  EXPECT_TRUE(tok.encode_document("").empty());
  EXPECT_EQ(tok.piece(tok.eod_id()), "</s>");
  EXPECT_EQ(tok.bos_id(), 1);
}

TEST(Tokenizer, TooSmallVocabularyIsAnError) { EXPECT_THROW(Tokenizer::train(tiny_sentences(), 200), Error); }

// generate prints the prompt, then what the new tokens add: their first piece's space must survive.
TEST(Tokenizer, AContinuationKeepsTheSpaceItsFirstPieceStartsWith) {
  const Tokenizer& tok = tiny_tokenizer();
  const std::vector<int32_t> context = tok.encode_ids("The jury said"), next = tok.encode_ids("the plan");
  EXPECT_EQ(tok.decode(next), "the plan");  // alone, the leading space is gone
  EXPECT_EQ(tok.decode_continuation(context, next), " the plan");
  EXPECT_EQ(tok.decode_continuation({}, next), "the plan");
}

}  // namespace
}  // namespace moelab
