#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/token_file.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

namespace fs = std::filesystem;
using data::SplitTokens;
using data::TokenData;
using nlohmann::json;
using testing::read_all;
using testing::TempDir;
using testing::write_all;

constexpr int32_t kEod = 2;

// A split of `docs` documents with lengths 1..: token ids derived from position (never eod), each document closed
// by eod; labels when asked, in the channels "pos" (cycles through 0..11, 255 on eod) and "genre" (document
// index % n_genres).
SplitTokens make_split(int docs, int64_t vocab, bool labels, int n_genres = 15, uint32_t salt = 0) {
  SplitTokens s;
  if (labels) s.labels.resize(2);
  for (int d = 0; d < docs; ++d) {
    for (int i = 0; i < 3 + 7 * d; ++i) {
      s.tokens.push_back(3 + (salt + 7919u * static_cast<uint32_t>(s.tokens.size())) % (vocab - 3));
      if (labels) {
        s.labels[0].push_back(static_cast<uint8_t>(i % 12));
        s.labels[1].push_back(static_cast<uint8_t>(d % n_genres));
      }
    }
    s.tokens.push_back(kEod);
    if (labels) {
      s.labels[0].push_back(data::kNoLabel);
      s.labels[1].push_back(static_cast<uint8_t>(d % n_genres));
    }
  }
  s.documents = docs;
  return s;
}

data::DataDescription description(int64_t vocab, bool labels) {
  data::DataDescription d;
  d.corpus = labels ? "brown" : "text";
  d.vocab_size = vocab;
  d.eod_id = kEod;
  if (labels) {
    d.labels = {{"pos", data::LabelScope::word, {}}, {"genre", data::LabelScope::document, {}}};
    for (int p = 0; p < 12; ++p) d.labels[0].classes.push_back("pos" + std::to_string(p));
    for (int g = 0; g < 15; ++g) d.labels[1].classes.push_back("genre" + std::to_string(g));
  }
  return d;
}

std::array<SplitTokens, 3> make_splits(int64_t vocab, bool labels) {
  return {make_split(9, vocab, labels, 15, 0), make_split(2, vocab, labels, 15, 1),
          make_split(3, vocab, labels, 15, 2)};
}

void write_folder(const TempDir& dir, int64_t vocab, bool labels) {
  data::write_data_folder(dir.path().string(), description(vocab, labels), make_splits(vocab, labels), "MODEL");
}

// A labelled folder (vocab 1000) written once, and a working copy that each corruption case damages. Copying is
// much cheaper than rewriting: the writer syncs every file to disk.
class Damageable {
 public:
  Damageable() {
    write_folder(pristine_, 1000, true);
    restore();
  }
  void restore() const {
    for (const auto& entry : fs::directory_iterator(dir.path())) fs::remove_all(entry.path());
    for (const auto& entry : fs::directory_iterator(pristine_.path()))
      fs::copy_file(entry.path(), dir.path() / entry.path().filename());
  }
  TempDir dir;

 private:
  TempDir pristine_;
};

std::vector<int32_t> all_tokens(const TokenData& d, const std::string& split) {
  std::vector<int32_t> out(d.split_tokens(split));
  d.copy_tokens(split, 0, static_cast<int64_t>(out.size()), out.data());
  return out;
}

void expect_open_fails(const TempDir& dir, const std::vector<std::string>& needles) {
  try {
    TokenData::open(dir.path().string());
    ADD_FAILURE() << "open must fail (expected a message with '" << needles[0] << "')";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

void edit_meta(const TempDir& dir, const std::function<void(json&)>& edit) {
  json meta = json::parse(read_all(dir.file("meta.json")));
  edit(meta);
  write_all(dir.file("meta.json"), meta.dump());
}

TEST(TokenFile, RoundTripsTokensAndAlignedLabels) {
  TempDir dir;
  const int64_t vocab = 1000;
  write_folder(dir, vocab, true);
  const auto splits = make_splits(vocab, true);
  const TokenData d = TokenData::open(dir.path().string());
  EXPECT_EQ(d.vocab_size(), vocab);
  EXPECT_EQ(d.eod_id(), kEod);
  EXPECT_EQ(d.corpus(), "brown");
  EXPECT_EQ(d.tokenizer_path(), dir.file("tokenizer.model"));
  EXPECT_EQ(read_all(dir.file("tokenizer.model")), "MODEL");
  ASSERT_EQ(d.label_channels().size(), 2u);
  EXPECT_EQ(d.label_channels()[0].name, "pos");
  EXPECT_EQ(d.label_channels()[0].scope, data::LabelScope::word);
  EXPECT_EQ(d.label_channels()[0].classes[11], "pos11");
  EXPECT_EQ(d.label_channels()[1].scope, data::LabelScope::document);
  EXPECT_EQ(d.label_channels()[1].classes.size(), 15u);
  for (int s = 0; s < 3; ++s) {
    const std::string name(data::kSplitNames[s]);
    const auto& want = splits[s];
    EXPECT_EQ(d.split_tokens(name), static_cast<int64_t>(want.tokens.size())) << name;
    EXPECT_EQ(d.split_documents(name), want.documents) << name;
    EXPECT_EQ(fs::file_size(dir.file(name + ".bin")), 2 * want.tokens.size()) << "uint16 on disk";
    const auto got = all_tokens(d, name);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.tokens.begin(), want.tokens.end())) << name;
    for (size_t c = 0; c < 2; ++c)
      EXPECT_EQ(std::vector<uint8_t>(d.labels(name, c), d.labels(name, c) + got.size()), want.labels[c]) << name;
  }
  // A window from the middle, widened.
  std::vector<int32_t> part(5);
  d.copy_tokens("train", 7, 5, part.data());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(part[i], static_cast<int32_t>(splits[0].tokens[7 + i]));
  EXPECT_THROW(d.split_tokens("validation"), Error);
}

TEST(TokenFile, MetaJsonContents) {
  TempDir dir;
  write_folder(dir, 1000, true);
  const json meta = json::parse(read_all(dir.file("meta.json")));
  EXPECT_EQ(meta["format_version"], 2);
  EXPECT_EQ(meta["corpus"], "brown");
  EXPECT_EQ(meta["vocab_size"], 1000);
  EXPECT_EQ(meta["dtype"], "uint16");
  EXPECT_EQ(meta["eod_id"], kEod);
  EXPECT_EQ(meta["tokenizer"], "tokenizer.model");
  ASSERT_EQ(meta["labels"].size(), 2u);
  EXPECT_EQ(meta["labels"][0]["name"], "pos");
  EXPECT_EQ(meta["labels"][0]["per"], "word");
  EXPECT_EQ(meta["labels"][0]["classes"].size(), 12u);
  EXPECT_EQ(meta["labels"][1]["name"], "genre");
  EXPECT_EQ(meta["labels"][1]["per"], "document");
  EXPECT_EQ(meta["labels"][1]["classes"].size(), 15u);
  const auto splits = make_splits(1000, true);
  for (int s = 0; s < 3; ++s) {
    const json& sp = meta["splits"][std::string(data::kSplitNames[s])];
    EXPECT_EQ(sp["tokens"], splits[s].tokens.size());
    EXPECT_EQ(sp["documents"], splits[s].documents);
  }
  EXPECT_FALSE(fs::exists(dir.file("meta.json.tmp")));
}

TEST(TokenFile, WideVocabularyUsesUint32) {
  TempDir dir;
  const int64_t vocab = 70000;
  EXPECT_EQ(data::token_dtype(65535), "uint16");
  EXPECT_EQ(data::token_dtype(65536), "uint32");
  write_folder(dir, vocab, false);
  const auto splits = make_splits(vocab, false);
  const TokenData d = TokenData::open(dir.path().string());
  EXPECT_EQ(json::parse(read_all(dir.file("meta.json")))["dtype"], "uint32");
  EXPECT_EQ(fs::file_size(dir.file("train.bin")), 4 * splits[0].tokens.size());
  const auto got = all_tokens(d, "train");
  EXPECT_TRUE(std::equal(got.begin(), got.end(), splits[0].tokens.begin(), splits[0].tokens.end()));
  EXPECT_GT(*std::max_element(got.begin(), got.end()), 65535) << "the test must exercise ids above uint16";
}

TEST(TokenFile, UnlabelledCorpusWritesNoSideFilesAndRemovesStaleOnes) {
  TempDir dir;
  write_folder(dir, 1000, true);
  ASSERT_TRUE(fs::exists(dir.file("val.pos.u8")));
  write_folder(dir, 1000, false);  // re-run over the same folder with a plain-text corpus
  for (const char* f : {"train.pos.u8", "val.pos.u8", "test.pos.u8", "train.genre.u8", "test.genre.u8"})
    EXPECT_FALSE(fs::exists(dir.file(f))) << f;
  const TokenData d = TokenData::open(dir.path().string());
  EXPECT_EQ(d.corpus(), "text");
  EXPECT_TRUE(d.label_channels().empty());
  EXPECT_EQ(json::parse(read_all(dir.file("meta.json")))["labels"], json::array());
}

// A researcher's own channels replace Brown's: the side files of the channels a folder no longer has go, and a
// file that only looks like a side file of another split stays.
TEST(TokenFile, OwnChannelsReplaceEarlierOnesFileByFile) {
  TempDir dir;
  write_folder(dir, 1000, true);
  write_all(dir.file("notes.pos.u8"), "kept");
  auto splits = make_splits(1000, true);
  for (auto& sp : splits) sp.labels.resize(1);  // keep the document channel only, renamed
  auto desc = description(1000, true);
  desc.labels = {{"year", data::LabelScope::document, desc.labels[1].classes}};
  data::write_data_folder(dir.path().string(), desc, splits, "MODEL");
  for (const char* f : {"train.pos.u8", "val.genre.u8"}) EXPECT_FALSE(fs::exists(dir.file(f))) << f;
  EXPECT_TRUE(fs::exists(dir.file("val.year.u8")));
  EXPECT_TRUE(fs::exists(dir.file("notes.pos.u8")));
  const TokenData d = TokenData::open(dir.path().string());
  ASSERT_EQ(d.label_channels().size(), 1u);
  EXPECT_EQ(d.label_channels()[0].name, "year");
  EXPECT_EQ(d.labels("test", 0)[0], splits[2].labels[0][0]);
}

// A folder written before label channels (format 1: pos_names, genre_names, has_pos, has_genre) reads as the
// channels "pos" and "genre", from side files of the same names.
TEST(TokenFile, ReadsTheFirstFormatAsPosAndGenreChannels) {
  TempDir dir;
  write_folder(dir, 1000, true);
  const auto splits = make_splits(1000, true);
  edit_meta(dir, [](json& m) {
    m["format_version"] = 1;
    m["pos_names"] = m["labels"][0]["classes"], m["genre_names"] = m["labels"][1]["classes"];
    m.erase("labels");
    for (auto& [name, sp] : m["splits"].items()) sp["has_pos"] = true, sp["has_genre"] = true;
  });
  const TokenData d = TokenData::open(dir.path().string());
  ASSERT_EQ(d.label_channels().size(), 2u);
  EXPECT_EQ(d.label_channels()[0].name, "pos");
  EXPECT_EQ(d.label_channels()[0].scope, data::LabelScope::word);
  EXPECT_EQ(d.label_channels()[1].name, "genre");
  EXPECT_EQ(d.label_channels()[1].classes[14], "genre14");
  EXPECT_EQ(std::vector<uint8_t>(d.labels("val", 1), d.labels("val", 1) + splits[1].tokens.size()),
            splits[1].labels[1]);
  edit_meta(dir, [](json& m) { m["splits"]["val"]["has_genre"] = false; });
  expect_open_fails(dir, {"'splits.val.has_genre'", "genre_names is not empty"});
}

TEST(TokenFile, InterruptedWriteLeavesNoMetaJson) {
  TempDir dir;
  write_folder(dir, 1000, true);
  ASSERT_NO_THROW(TokenData::open(dir.path().string()));
  fs::create_directory(dir.file("val.bin.tmp"));  // the writer cannot create its temporary: fails midway
  EXPECT_THROW(write_folder(dir, 1000, true), Error);
  EXPECT_FALSE(fs::exists(dir.file("meta.json")));
  expect_open_fails(dir, {"meta.json", "not found"});
}

TEST(TokenFile, RejectsMissingOrMalformedMeta) {
  const Damageable f;
  const TempDir& dir = f.dir;
  fs::remove(dir.file("meta.json"));
  expect_open_fails(dir, {"meta.json", "not found"});
  f.restore();
  write_all(dir.file("meta.json"), "{\"format_version\": 1, \"corpus\": ");
  expect_open_fails(dir, {dir.file("meta.json"), "not valid JSON"});
  // A number no type holds (found by scripts/fuzz.sh): nlohmann's out_of_range, not a parse error.
  write_all(dir.file("meta.json"), "99999999999999999999E908");
  expect_open_fails(dir, {dir.file("meta.json"), "not valid JSON", "number overflow"});

  struct Case {
    std::function<void(json&)> edit;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](json& m) { m.erase("vocab_size"); }, "'vocab_size' is missing"},
      {[](json& m) { m["vocab_size"] = "many"; }, "'vocab_size': expected an integer"},
      {[](json& m) { m["format_version"] = 3; }, "'format_version'"},
      {[](json& m) { m["dtype"] = "int8"; }, "'dtype'"},
      {[](json& m) { m["vocab_size"] = 70000; }, "'dtype'"},  // uint16 cannot hold it
      {[](json& m) { m["eod_id"] = 1000; }, "'eod_id'"},
      {[](json& m) { m["splits"].erase("val"); }, "'splits.val' is missing"},
      {[](json& m) { m["splits"]["test"]["tokens"] = -1; }, "'splits.test.tokens'"},
      {[](json& m) { m.erase("labels"); }, "'labels' is missing"},
      {[](json& m) { m["labels"] = "pos"; }, "'labels': expected an array"},
      {[](json& m) { m["labels"][1]["name"] = "pos"; }, "'labels[1].name': expected a name no other channel has"},
      {[](json& m) { m["labels"][1]["name"] = "../x"; }, "'labels[1].name'"},
      {[](json& m) { m["labels"][0]["per"] = "sentence"; }, "'labels[0].per': expected \"word\" or \"document\""},
      {[](json& m) { m["labels"][0]["classes"] = "NOUN"; }, "'labels[0].classes'"},
      {[](json& m) { m["labels"][1].erase("classes"); }, "'labels[1].classes' is missing"},
      {[](json& m) { m["splits"]["val"] = 3; }, "'splits.val': expected an object"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.field);
    f.restore();
    edit_meta(dir, c.edit);
    expect_open_fails(dir, {dir.file("meta.json"), c.field});
  }
}

TEST(TokenFile, RejectsCorruptTokenFiles) {
  const Damageable f;
  const TempDir& dir = f.dir;
  const auto splits = make_splits(1000, true);

  fs::remove(dir.file("val.bin"));
  expect_open_fails(dir, {dir.file("val.bin"), "missing"});

  f.restore();
  write_all(dir.file("train.bin"), read_all(dir.file("train.bin")) + "x");
  expect_open_fails(dir, {dir.file("train.bin"), "not a multiple of 2"});

  f.restore();
  std::string bytes = read_all(dir.file("test.bin"));
  write_all(dir.file("test.bin"), bytes.substr(0, bytes.size() - 4));
  expect_open_fails(dir, {dir.file("test.bin"), std::to_string(splits[2].tokens.size() - 2) + " tokens",
                          std::to_string(splits[2].tokens.size()), "truncated"});

  f.restore();
  bytes = read_all(dir.file("train.bin"));
  const uint16_t big = 1000;  // == vocab_size: one past the last id
  std::memcpy(bytes.data() + 2 * 17, &big, 2);
  write_all(dir.file("train.bin"), bytes);
  expect_open_fails(dir, {dir.file("train.bin"), "token id 1000", "offset 17", "corrupt"});

  f.restore();
  bytes = read_all(dir.file("val.bin"));
  const uint16_t not_eod = 5;
  std::memcpy(bytes.data() + bytes.size() - 2, &not_eod, 2);  // the last document loses its end marker
  write_all(dir.file("val.bin"), bytes);
  expect_open_fails(dir, {dir.file("val.bin"), "end-of-document"});
}

TEST(TokenFile, RejectsBadSideFiles) {
  const Damageable f;
  const TempDir& dir = f.dir;
  write_all(dir.file("train.pos.u8"), read_all(dir.file("train.pos.u8")).substr(1));
  expect_open_fails(dir, {dir.file("train.pos.u8"), "one 'pos' label per token"});

  f.restore();
  write_all(dir.file("val.genre.u8"), read_all(dir.file("val.genre.u8")) + "\x01");
  expect_open_fails(dir, {dir.file("val.genre.u8"), "one 'genre' label per token"});

  f.restore();
  fs::remove(dir.file("test.genre.u8"));
  expect_open_fails(dir, {dir.file("test.genre.u8"), "missing"});

  f.restore();
  std::string pos = read_all(dir.file("test.pos.u8"));
  pos[4] = 12;  // one past the last POS class
  write_all(dir.file("test.pos.u8"), pos);
  expect_open_fails(dir, {dir.file("test.pos.u8"), "offset 4"});
}

}  // namespace
}  // namespace moelab
