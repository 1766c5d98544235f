// Token streams: a data folder's split (tokens and every label channel, whole or its head) and a text file encoded
// with the folder's tokenizer (each document closed by end-of-document, as a data folder stores it).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "data/token_stream.h"
#include "data/tokenizer.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

using testing::TempDir;

// A data folder with a real tokenizer and "pos" and "genre" labels on every split.
std::string write_labelled_data_folder(const TempDir& dir) {
  std::vector<std::string> sentences;
  for (int r = 0; r < 5; ++r)
    for (const char* s : {"The jury said it did find that the election was conducted .",
                          "The House passed the bill on Sunday , and the governor signed it .", "Who will pay for it ?",
                          "Why did the cat cross the road ?"})
      sentences.push_back(s);
  const auto tok = data::Tokenizer::train(sentences, 300);
  std::array<data::SplitTokens, data::kNumSplits> splits;
  for (int s = 0; s < data::kNumSplits; ++s) {
    auto& sp = splits[s];
    sp.labels.resize(2);
    for (int i = 0; i < (s == 1 ? 60 : 40); ++i) {  // whole documents of 20 tokens
      const bool end = i % 20 == 19;
      sp.tokens.push_back(end ? tok.eod_id() : static_cast<uint32_t>(3 + (i * 7 + s) % 200));
      sp.labels[0].push_back(end ? 255 : static_cast<uint8_t>(i % 4));
      sp.labels[1].push_back(static_cast<uint8_t>((i / 20) % 2));
      sp.documents += end;
    }
  }
  const data::DataDescription desc{"brown",
                                   tok.vocab_size(),
                                   tok.eod_id(),
                                   {{"pos", data::LabelScope::word, {"NOUN", "VERB", "ADJ", "ADV"}},
                                    {"genre", data::LabelScope::document, {"news", "fiction"}}}};
  const std::string folder = dir.file("data");
  data::write_data_folder(folder, desc, splits, tok.model_bytes());
  return folder;
}

TEST(TokenStream, FromASplitAndFromATextFile) {
  TempDir dir;
  const auto data = data::TokenData::open(write_labelled_data_folder(dir));
  const data::TokenStream all = data::token_stream_from_split(data, "val", 0);
  ASSERT_EQ(all.tokens.size(), 60u);
  std::vector<int32_t> expect(60);
  data.copy_tokens("val", 0, 60, expect.data());
  EXPECT_EQ(all.tokens, expect);
  ASSERT_EQ(all.channels.size(), 2u);
  ASSERT_EQ(all.labels.size(), 2u);
  for (size_t c = 0; c < 2; ++c) {
    EXPECT_EQ(all.channels[c].name, data.label_channels()[c].name);
    EXPECT_EQ(all.labels[c], std::vector<uint8_t>(data.labels("val", c), data.labels("val", c) + 60));
  }
  EXPECT_EQ(all.eod_id, data.eod_id());
  EXPECT_EQ(all.split, "val");
  EXPECT_CONTAINS(all.description, "the val split of " + data.dir());
  const data::TokenStream head = data::token_stream_from_split(data, "test", 13);
  EXPECT_EQ(head.tokens.size(), 13u);
  EXPECT_EQ(head.labels[0].size(), 13u);
  EXPECT_EQ(head.labels[1].size(), 13u);
  EXPECT_CONTAINS(testing::error_of([&] { data::token_stream_from_split(data, "dev", 0); }), "dev");

  const auto tok = data::Tokenizer::load(data.tokenizer_path());
  const std::string text = "The cat said it did find the road .\nWho will pay ?";
  testing::write_all(dir.file("notes.txt"), text);
  const data::TokenStream t = data::token_stream_from_text(tok, dir.file("notes.txt"), 0);
  std::vector<int32_t> want = tok.encode_ids(text);
  want.push_back(data.eod_id());
  EXPECT_EQ(t.tokens, want);
  EXPECT_TRUE(t.channels.empty() && t.labels.empty());
  EXPECT_TRUE(t.split.empty());
  EXPECT_CONTAINS(t.description, "notes.txt");
  EXPECT_EQ(data::token_stream_from_text(tok, dir.file("notes.txt"), 4).tokens.size(), 4u);

  // A JSONL file is its documents' texts, each closed by end-of-document.
  testing::write_all(dir.file("notes.jsonl"), "{\"text\": \"Who will pay ?\"}\n{\"text\": \"The cat said it .\"}\n");
  const data::TokenStream j = data::token_stream_from_text(tok, dir.file("notes.jsonl"), 0);
  want = tok.encode_ids("Who will pay ?");
  want.push_back(data.eod_id());
  for (int32_t id : tok.encode_ids("The cat said it .")) want.push_back(id);
  want.push_back(data.eod_id());
  EXPECT_EQ(j.tokens, want);

  EXPECT_CONTAINS(testing::error_of([&] { data::token_stream_from_text(tok, dir.file("missing.txt"), 0); }),
                  "missing.txt");
  testing::write_all(dir.file("blank.txt"), "");
  EXPECT_CONTAINS(testing::error_of([&] { data::token_stream_from_text(tok, dir.file("blank.txt"), 0); }),
                  "blank.txt: no tokens");
  testing::write_all(dir.file("latin1.txt"), "caf\xE9");
  EXPECT_CONTAINS(testing::error_of([&] { data::token_stream_from_text(tok, dir.file("latin1.txt"), 0); }),
                  "not UTF-8");
}

}  // namespace
}  // namespace moelab
