#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/brown_corpus.h"
#include "data/fixtures/brown_fixture.h"
#include "data/loader.h"
#include "data/prepare.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

namespace fs = std::filesystem;
using data::TokenData;
using data::Tokenizer;
using nlohmann::json;
using testing::TempDir;

constexpr int64_t kVocab = 400;
const data::TokenizerChoice kTrained{kVocab, "", ""};  // a tokenizer of kVocab pieces trained on the train split

std::vector<int32_t> split_tokens(const TokenData& d, const std::string& split) {
  std::vector<int32_t> out(d.split_tokens(split));
  d.copy_tokens(split, 0, static_cast<int64_t>(out.size()), out.data());
  return out;
}

// Cuts a split's tokens at every end-of-document id (which closes each document).
std::vector<std::vector<int32_t>> documents_of(const std::vector<int32_t>& tokens, int32_t eod) {
  std::vector<std::vector<int32_t>> docs(1);
  for (int32_t t : tokens) {
    if (t == eod) {
      docs.emplace_back();
    } else {
      docs.back().push_back(t);
    }
  }
  EXPECT_TRUE(docs.back().empty()) << "the split must end with end-of-document";
  docs.pop_back();
  return docs;
}

// What decoding a document gives: its lines joined by single spaces.
std::string lines_joined(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '\n' ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

TEST(PrepareBrown, WritesSplitsTokensAndLabels) {
  TempDir corpus, out;
  testing::write_brown_fixture(corpus);
  const auto summary = data::prepare_brown_from_dir(corpus.path().string(), testing::brown_fixture_split(),
                                                    out.path().string(), kTrained);
  EXPECT_EQ(summary.source_files, 6);
  EXPECT_EQ(summary.splits[0].documents, 4);
  EXPECT_EQ(summary.splits[1].documents, 1);
  EXPECT_EQ(summary.splits[2].documents, 1);
  EXPECT_EQ(summary.vocab_size, kVocab);
  EXPECT_EQ(summary.dtype, "uint16");

  const TokenData d = TokenData::open(out.path().string());
  const Tokenizer tok = Tokenizer::load(d.tokenizer_path());
  EXPECT_EQ(d.eod_id(), tok.eod_id());
  EXPECT_EQ(d.vocab_size(), tok.vocab_size());
  ASSERT_EQ(d.label_channels().size(), 2u);
  EXPECT_EQ(d.label_channels()[0].name, "pos");
  const auto& genres = d.label_channels()[1].classes;
  ASSERT_EQ(genres.size(), 15u);
  EXPECT_EQ(genres[14], "humor");

  // Each split holds its files' documents in list order, each followed by end-of-document, and decodes back to
  // the reader text; every token of a document carries its genre.
  const std::vector<std::vector<std::string>> files = {{"ca01", "cb01", "cr01", "cr02"}, {"ca02"}, {"cb02"}};
  for (int s = 0; s < 3; ++s) {
    const std::string split(data::kSplitNames[s]);
    const auto tokens = split_tokens(d, split);
    EXPECT_EQ(summary.splits[s].tokens, static_cast<int64_t>(tokens.size()));
    const auto docs = documents_of(tokens, d.eod_id());
    ASSERT_EQ(docs.size(), files[s].size()) << split;
    const uint8_t* pos = d.labels(split, 0);
    const uint8_t* genre = d.labels(split, 1);
    size_t at = 0;
    for (size_t k = 0; k < docs.size(); ++k) {
      const auto doc = data::parse_brown_file(corpus.file(files[s][k]));
      EXPECT_EQ(tok.decode(docs[k]), lines_joined(doc.text)) << files[s][k];
      const int genre_id = static_cast<int>(std::find(genres.begin(), genres.end(), doc.labels.at(0)) - genres.begin());
      EXPECT_EQ(genre_id, data::brown_genre_of_letter(files[s][k][1])) << files[s][k];
      for (size_t i = 0; i <= docs[k].size(); ++i) EXPECT_EQ(genre[at + i], genre_id) << files[s][k];
      EXPECT_EQ(pos[at + docs[k].size()], data::kNoLabel) << "end-of-document has no word";
      at += docs[k].size() + 1;
    }
  }
}

TEST(PrepareBrown, TokenPosLabelsComeFromTheWordOfTheirFirstByte) {
  TempDir corpus;
  testing::write_brown_fixture(corpus);
  std::vector<std::string> sentences;
  for (const auto& [name, content] : testing::brown_fixture_files()) {
    const auto doc = data::parse_brown_file(corpus.file(name));
    for (size_t a = 0; a < doc.text.size();) {
      const size_t b = doc.text.find('\n', a);  // every line of a parsed document ends in '\n'
      sentences.push_back(doc.text.substr(a, b - a));
      a = b + 1;
    }
  }
  const Tokenizer tok = Tokenizer::train(sentences, kVocab);
  for (const auto& [name, content] : testing::brown_fixture_files()) {
    SCOPED_TRACE(name);
    const auto doc = data::parse_brown_file(corpus.file(name));
    std::vector<uint32_t> tokens;
    const data::LabelChannel genre_channel{"genre", data::LabelScope::document, {"press", doc.labels.at(0)}};
    std::vector<std::vector<uint8_t>> labels(2);  // [pos, genre][tokens]
    data::append_document_tokens(tok, doc, {{"pos", data::LabelScope::word, {}}, genre_channel}, tokens, labels);
    const auto& pos = labels[0];
    const auto& genre = labels[1];
    std::vector<data::TokenSpan> spans;
    tok.encode(doc.text, spans);
    ASSERT_EQ(tokens.size(), spans.size() + 1);
    ASSERT_EQ(pos.size(), tokens.size());
    EXPECT_EQ(tokens.back(), static_cast<uint32_t>(tok.eod_id()));
    EXPECT_EQ(pos.back(), data::kNoLabel);
    // Reference: scan the words for the one holding the token's first non-space byte.
    for (size_t i = 0; i < spans.size(); ++i) {
      uint8_t want = data::kNoLabel;
      for (uint32_t b = spans[i].begin; b < std::max(spans[i].end, spans[i].begin + 1); ++b) {
        if (doc.text[b] == ' ' || doc.text[b] == '\n') continue;
        for (const auto& w : doc.words)
          if (w.begin <= b && b < w.end) want = w.pos;
        break;
      }
      EXPECT_EQ(pos[i], want) << "token " << i;
    }
    // Every word's first byte starts (after its space) exactly one token, and that token carries the word's class.
    for (const auto& w : doc.words) {
      int holders = 0;
      for (size_t i = 0; i < spans.size(); ++i) {
        if (spans[i].begin <= w.begin && w.begin < spans[i].end) {
          ++holders;
          EXPECT_EQ(pos[i], w.pos);
        }
      }
      EXPECT_EQ(holders, 1);
    }
    EXPECT_EQ(genre, std::vector<uint8_t>(tokens.size(), 1)) << "the document's class, end-of-document included";
  }
}

TEST(PrepareBrown, MetaJsonDescribesTheFolder) {
  TempDir corpus, out;
  testing::write_brown_fixture(corpus);
  data::prepare_brown_from_dir(corpus.path().string(), testing::brown_fixture_split(), out.path().string(), kTrained);
  const json meta = json::parse(testing::read_all(out.file("meta.json")));
  EXPECT_EQ(meta["format_version"], 2);
  EXPECT_EQ(meta["corpus"], "brown");
  EXPECT_EQ(meta["vocab_size"], kVocab);
  EXPECT_EQ(meta["dtype"], "uint16");
  EXPECT_EQ(meta["eod_id"], 2);
  EXPECT_EQ(meta["tokenizer"], "tokenizer.model");
  ASSERT_EQ(meta["labels"].size(), 2u);
  EXPECT_EQ(meta["labels"][0]["name"], "pos");
  EXPECT_EQ(meta["labels"][0]["per"], "word");
  EXPECT_EQ(meta["labels"][0]["classes"],
            json({"NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", ".", "X"}));
  EXPECT_EQ(meta["labels"][1]["name"], "genre");
  EXPECT_EQ(meta["labels"][1]["per"], "document");
  EXPECT_EQ(meta["labels"][1]["classes"][6], "belles_lettres");
  for (const char* split : {"train", "val", "test"}) {
    const json& s = meta["splits"][split];
    EXPECT_EQ(s["tokens"].get<int64_t>() * 2,
              static_cast<int64_t>(fs::file_size(out.file(std::string(split) + ".bin"))));
    for (const char* channel : {".pos.u8", ".genre.u8"})
      EXPECT_EQ(s["tokens"].get<int64_t>(),
                static_cast<int64_t>(fs::file_size(out.file(std::string(split) + channel))));
  }
  EXPECT_EQ(meta["splits"]["train"]["documents"], 4);
}

TEST(PrepareBrown, SplitListMustCoverTheCorpusExactly) {
  TempDir corpus, out;
  testing::write_brown_fixture(corpus);
  const std::string full = testing::brown_fixture_split();
  auto expect_fails = [&](const std::string& tsv, const std::string& needle) {
    try {
      data::prepare_brown_from_dir(corpus.path().string(), tsv, out.path().string(), kTrained);
      ADD_FAILURE() << "must fail: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_fails(full + "cd01\ttest\n", "cd01");             // listed, not in the corpus
  expect_fails(full.substr(full.find('\n') + 1), "ca01");  // in the corpus, not listed
  expect_fails(full + "cb01\ttrain\n", "twice");           // listed twice
  expect_fails("ca01\ttrain\ncb01\ttrain\ncr01\ttrain\ncr02\ttrain\nca02\ttrain\ncb02\ttrain\n", "val split");
  EXPECT_FALSE(fs::exists(out.file("meta.json")));
}

TEST(PrepareBrown, RerunOverwritesTheFolder) {
  TempDir corpus, out;
  testing::write_brown_fixture(corpus);
  data::prepare_brown_from_dir(corpus.path().string(), testing::brown_fixture_split(), out.path().string(), kTrained);
  const auto first = testing::read_all(out.file("train.bin"));
  data::prepare_brown_from_dir(corpus.path().string(), testing::brown_fixture_split(), out.path().string(),
                               data::TokenizerChoice{500, "", ""});
  const TokenData d = TokenData::open(out.path().string());
  EXPECT_EQ(d.vocab_size(), 500);
  EXPECT_NE(testing::read_all(out.file("train.bin")), first);
  for (const auto& entry : fs::directory_iterator(out.path()))
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
}

TEST(PrepareText, FewFilesSplitByLinesWithoutLabels) {
  TempDir in, out;
  std::vector<std::string> files;
  for (int f = 0; f < 3; ++f) {
    std::string text;
    for (int i = 0; i < 30; ++i)
      text += "File " + std::to_string(f) + " says hello to line " + std::to_string(i) + ".\n";
    files.push_back(in.file("f" + std::to_string(f) + ".txt"));
    testing::write_all(files.back(), text);
  }
  const auto summary = data::prepare_text(files, out.path().string(), kVocab);
  EXPECT_EQ(summary.corpus, "text");
  EXPECT_EQ(summary.source_files, 3);
  const TokenData d = TokenData::open(out.path().string());
  EXPECT_EQ(d.corpus(), "text");
  for (const char* split : {"train", "val", "test"}) {
    EXPECT_EQ(d.split_documents(split), 3) << split;
    EXPECT_FALSE(fs::exists(out.file(std::string(split) + ".pos.u8")));
    EXPECT_FALSE(fs::exists(out.file(std::string(split) + ".genre.u8")));
  }
  EXPECT_TRUE(d.label_channels().empty());
  // A 30-line file holds out one line for val (line 28) and one for test (line 29).
  const Tokenizer tok = Tokenizer::load(d.tokenizer_path());
  const auto val_docs = documents_of(split_tokens(d, "val"), d.eod_id());
  ASSERT_EQ(val_docs.size(), 3u);
  EXPECT_EQ(tok.decode(val_docs[1]), "File 1 says hello to line 28.");
  const auto test_docs = documents_of(split_tokens(d, "test"), d.eod_id());
  EXPECT_EQ(tok.decode(test_docs[2]), "File 2 says hello to line 29.");
}

TEST(PrepareText, ManyFilesSplitByDocument) {
  TempDir in, out;
  std::vector<std::string> files;
  for (int f = 0; f < 21; ++f) {
    files.push_back(in.file("doc" + std::to_string(f) + ".txt"));
    testing::write_all(files.back(), "Document number " + std::to_string(f) + " is short.\nIt has two lines.\n");
  }
  data::prepare_text(files, out.path().string(), 360);  // this little text allows at most ~380 BPE pieces
  const TokenData d = TokenData::open(out.path().string());
  EXPECT_EQ(d.split_documents("train"), 17);
  EXPECT_EQ(d.split_documents("val"), 2);
  EXPECT_EQ(d.split_documents("test"), 2);
  const Tokenizer tok = Tokenizer::load(d.tokenizer_path());
  const auto test_docs = documents_of(split_tokens(d, "test"), d.eod_id());
  ASSERT_EQ(test_docs.size(), 2u);
  EXPECT_EQ(tok.decode(test_docs[0]), "Document number 9 is short. It has two lines.");
  EXPECT_EQ(tok.decode(test_docs[1]), "Document number 19 is short. It has two lines.");
  EXPECT_THROW(data::prepare_text({in.file("absent.txt")}, out.path().string(), kVocab), Error);
  EXPECT_THROW(data::prepare_text({}, out.path().string(), kVocab), Error);
}

// A JSONL corpus with two label fields and a split field: each field becomes a document channel named after it,
// its classes the field's distinct values (a document without the field has none); the manifest says where each
// document went and its labels; a second folder reusing the first's tokenizer has the same token ids.
TEST(PrepareText, JsonlWithLabelsSplitFieldManifestAndAReusedTokenizer) {
  TempDir in, out, again;
  std::string jsonl;
  const char* parties[] = {"green", "blue", "red"};
  for (int i = 0; i < 30; ++i) {
    const char* split = i % 10 == 3 ? "val" : i % 10 == 7 ? "test" : "train";
    const std::string year = i == 13 ? "" : ", \"year\": " + std::to_string(1990 + i % 2);
    jsonl += "{\"id\": \"speech-" + std::to_string(i) + "\", \"party\": \"" + parties[i % 3] + "\"" + year +
             ", \"part\": \"" + split + "\", \"text\": \"Speech " + std::to_string(i) +
             " says the budget is fine.\"}\n";
  }
  testing::write_all(in.file("speeches.jsonl"), jsonl);
  data::TextCorpusOptions options;
  options.read = {{"party", "year"}, "part"};
  options.split.by_field = true;
  data::prepare_text({in.file("speeches.jsonl")}, out.path().string(), 300, options);
  const TokenData d = TokenData::open(out.path().string());
  ASSERT_EQ(d.label_channels().size(), 2u);
  EXPECT_EQ(d.label_channels()[0].name, "party");
  EXPECT_EQ(d.label_channels()[0].scope, data::LabelScope::document);
  EXPECT_EQ(d.label_channels()[0].classes, (std::vector<std::string>{"blue", "green", "red"}));
  EXPECT_EQ(d.label_channels()[1].name, "year");
  EXPECT_EQ(d.label_channels()[1].classes, (std::vector<std::string>{"1990", "1991"}));
  EXPECT_EQ(d.split_documents("train"), 24);
  EXPECT_EQ(d.split_documents("val"), 3);
  EXPECT_EQ(d.split_documents("test"), 3);
  // Val holds speech-3 (green: class 1; 1991), speech-13 (blue: 0; no year) and speech-23 (red: 2; 1991): their
  // tokens carry their labels.
  const int64_t n_val = d.split_tokens("val");
  EXPECT_EQ(d.labels("val", 0)[0], 1);
  EXPECT_EQ(d.labels("val", 0)[n_val - 1], 2);
  const auto val_docs = documents_of(split_tokens(d, "val"), d.eod_id());
  ASSERT_EQ(val_docs.size(), 3u);
  const int64_t first_end = static_cast<int64_t>(val_docs[0].size()) + 1;  // with its end-of-document
  const int64_t second_end = first_end + static_cast<int64_t>(val_docs[1].size()) + 1;
  for (int64_t i = 0; i < n_val; ++i)
    EXPECT_EQ(d.labels("val", 1)[i], i >= first_end && i < second_end ? data::kNoLabel : 1) << i;
  const std::string manifest = testing::read_all(out.file("manifest.tsv"));
  EXPECT_EQ(manifest.substr(0, manifest.find('\n')), "document\tsplit\ttokens\tparty\tyear");
  EXPECT_NE(manifest.find("speech-3\tval\t"), std::string::npos) << manifest;
  EXPECT_NE(manifest.find("\tred\t1991\n"), std::string::npos) << manifest;
  EXPECT_NE(manifest.find("\tblue\t\n"), std::string::npos) << manifest;

  // A field that cannot name a channel, or one given twice, is refused before anything is written.
  data::TextCorpusOptions bad = options;
  bad.read.label_fields = {"party", "party"};
  EXPECT_CONTAINS(
      testing::error_of([&] { data::prepare_text({in.file("speeches.jsonl")}, again.file("x"), 300, bad); }),
      "--label \"party\": given twice");
  bad.read.label_fields = {"party/leader"};
  EXPECT_CONTAINS(
      testing::error_of([&] { data::prepare_text({in.file("speeches.jsonl")}, again.file("x"), 300, bad); }),
      "letters, digits");
  EXPECT_FALSE(fs::exists(again.file("x")));

  data::TextCorpusOptions reuse = options;
  reuse.tokenizer = d.tokenizer_path();
  data::prepare_text({in.file("speeches.jsonl")}, again.path().string(), 9999, reuse);
  const TokenData e = TokenData::open(again.path().string());
  EXPECT_EQ(e.vocab_size(), d.vocab_size());
  EXPECT_EQ(testing::read_all(again.file("tokenizer.model")), testing::read_all(out.file("tokenizer.model")));
  EXPECT_EQ(testing::read_all(again.file("train.bin")), testing::read_all(out.file("train.bin")));
}

TEST(PrepareText, TextThatIsNotUtf8IsRefusedNamingTheFileAndTheByte) {
  TempDir in, out;
  testing::write_all(in.file("latin1.txt"), "Caf\xe9 au lait.\nSecond line.\nThird line.\n");
  const std::string message =
      testing::error_of([&] { data::prepare_text({in.file("latin1.txt")}, out.path().string(), kVocab); });
  EXPECT_CONTAINS(message, in.file("latin1.txt"));
  EXPECT_CONTAINS(message, "not UTF-8 (byte 3");
  EXPECT_CONTAINS(message, "iconv");
}

}  // namespace
}  // namespace moelab
