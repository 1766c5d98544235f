#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/resources.h"
#include "data/brown_corpus.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

using data::Document;
using testing::TempDir;
using testing::write_all;

// Class ids in the order of data/brown_corpus.h: NOUN VERB ADJ ADV PRON DET ADP NUM CONJ PRT . X
enum { NOUN, VERB, ADJ, ADV, PRON, DET, ADP, NUM, CONJ, PRT, PUNCT, X };

struct ExpectedWord {
  std::string word, tag;
  int pos;
};

std::string word_text(const Document& doc, size_t i) {
  return doc.text.substr(doc.words[i].begin, doc.words[i].end - doc.words[i].begin);
}

void expect_words(const Document& doc, const std::vector<ExpectedWord>& expected) {
  ASSERT_EQ(doc.words.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(word_text(doc, i), expected[i].word) << "word " << i;
    EXPECT_EQ(doc.words[i].tag, expected[i].tag) << "word " << i;
    EXPECT_EQ(doc.words[i].pos, expected[i].pos) << "word " << i << " (" << expected[i].word << ")";
  }
}

TEST(BrownCorpus, ParsesWordsTagsClassesAndGenre) {
  TempDir dir;
  write_all(dir.file("cb07"),
            "\n\n\tThe/at Fulton/np-tl Jury/nn-tl said/vbd ``/`` I'm/ppss+bem paid/vbn 1-1/2/cd ''/'' on/in "
            "Friday/nr-tl ./.\n\n\n\tDid/dod he/pps NOT/*-hl go/vb ?/. ?/.\n\tA/at coup/fw-nn d'etat/fw-nn "
            "on/in-hl Monday/nr-tl-hl !/.-hl !/.-hl\n");
  const Document doc = data::parse_brown_file(dir.file("cb07"));
  EXPECT_EQ(doc.name, "cb07");
  EXPECT_EQ(doc.labels, std::vector<std::string>{"editorial"});  // genre letter b
  expect_words(doc, {{"The", "at", DET},        {"Fulton", "np-tl", NOUN},
                     {"Jury", "nn-tl", NOUN},   {"said", "vbd", VERB},
                     {"\"", "``", PUNCT},       {"I'm", "ppss+bem", PRT},
                     {"paid", "vbn", VERB},     {"1-1/2", "cd", NUM},
                     {"\"", "''", PUNCT},       {"on", "in", ADP},
                     {"Friday", "nr-tl", NOUN}, {".", ".", PUNCT},
                     {"Did", "dod", VERB},      {"he", "pps", PRON},
                     {"NOT", "*-hl", ADV},      {"go", "vb", VERB},
                     {"?", ".", PUNCT},         {"A", "at", DET},
                     {"coup", "fw-nn", X},      {"d'etat", "fw-nn", X},
                     {"on", "in-hl", ADP},      {"Monday", "nr-tl-hl", NOUN},
                     {"!", ".-hl", PUNCT}});
}

TEST(BrownCorpus, BuildsReaderTextWithByteRanges) {
  const Document doc = data::parse_brown_document(
      "\n\n\tIt/pps said/vbd ``/`` no/at ''/'' ./.\n\n\n\tWhy/wrb ?/. ?/.\n\tA/at  b/nn\t;/. ;/.\n", "mem", 3);
  EXPECT_EQ(doc.labels, std::vector<std::string>{"religion"});
  EXPECT_EQ(doc.text, "It said \" no \" .\nWhy ?\nA b ;\n");
  // Hand-computed byte ranges of every word in that text.
  const std::vector<std::pair<uint32_t, uint32_t>> ranges = {{0, 2},   {3, 7},   {8, 9},   {10, 12}, {13, 14}, {15, 16},
                                                             {17, 20}, {21, 22}, {23, 24}, {25, 26}, {27, 28}};
  ASSERT_EQ(doc.words.size(), ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    EXPECT_EQ(doc.words[i].begin, ranges[i].first) << i;
    EXPECT_EQ(doc.words[i].end, ranges[i].second) << i;
  }
}

TEST(BrownCorpus, KeepsRepeatedTokensThatAreNotTheSentenceFinalQuirk) {
  // Only a duplicated ? ! ; : tagged '.' at the end of a line is the quirk; other repeats are real text.
  const Document doc =
      data::parse_brown_document("He/pps said/vbd ?/. ?/. so/rb\nNo/rb ,/, ,/,\nWell/rb ./. ./.\n", "mem", 0);
  EXPECT_EQ(doc.text, "He said ? ? so\nNo , ,\nWell . .\n");
  EXPECT_EQ(doc.words.size(), 11u);
}

TEST(BrownCorpus, ErrorsNameFileLineAndToken) {
  TempDir dir;
  write_all(dir.file("ca01"), "\n\tThe/at cat/nn ./.\n\n\tA/at dog/xyz-tl ./.\n");
  try {
    data::parse_brown_file(dir.file("ca01"));
    FAIL() << "an unknown tag must be an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(dir.file("ca01")), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 4"), std::string::npos) << msg;
    EXPECT_NE(msg.find("xyz-tl"), std::string::npos) << msg;
  }
  for (const char* bad : {"cat ./.\n", "cat/ ./.\n", "/nn ./.\n"}) {
    try {
      data::parse_brown_document(std::string("The/at dog/nn\n") + bad, "somefile", 0);
      FAIL() << "'" << bad << "' must be an error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("somefile"), std::string::npos) << msg;
      EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
    }
  }
  write_all(dir.file("cz01"), "The/at\n");
  EXPECT_THROW(data::parse_brown_file(dir.file("cz01")), Error);  // z is no genre letter
  EXPECT_THROW(data::parse_brown_file(dir.file("missing")), Error);
}

TEST(BrownCorpus, GenreLettersAndNames) {
  const std::string letters = "abcdefghjklmnpr";
  for (size_t i = 0; i < letters.size(); ++i) EXPECT_EQ(data::brown_genre_of_letter(letters[i]), int(i));
  for (char c : std::string("ioqsz")) EXPECT_EQ(data::brown_genre_of_letter(c), -1) << c;
  EXPECT_EQ(data::brown_genre_names()[0], "news");
  EXPECT_EQ(data::brown_genre_names()[6], "belles_lettres");
  EXPECT_EQ(data::brown_genre_names()[11], "science_fiction");
  EXPECT_EQ(data::brown_genre_names()[14], "humor");
  EXPECT_EQ(data::pos_class_names()[10], ".");
  EXPECT_EQ(data::pos_class_names()[11], "X");
  EXPECT_TRUE(data::is_brown_file_name("cr09"));
  EXPECT_FALSE(data::is_brown_file_name("ci01"));
  EXPECT_FALSE(data::is_brown_file_name("ca1"));
  EXPECT_FALSE(data::is_brown_file_name("README"));
}

TEST(BrownCorpus, UniversalTagLookup) {
  EXPECT_EQ(data::universal_pos_class("nn"), NOUN);
  EXPECT_EQ(data::universal_pos_class("NN-TL"), NOUN);
  EXPECT_EQ(data::universal_pos_class("nr-tl"), NOUN);
  EXPECT_EQ(data::universal_pos_class("NR-TL-HL"), NOUN);
  EXPECT_EQ(data::universal_pos_class("vbd"), VERB);
  EXPECT_EQ(data::universal_pos_class("Jj"), ADJ);
  EXPECT_EQ(data::universal_pos_class("cc"), CONJ);
  EXPECT_EQ(data::universal_pos_class("to"), PRT);
  EXPECT_EQ(data::universal_pos_class("''"), PUNCT);
  EXPECT_EQ(data::universal_pos_class("nn-zz"), -1);
  EXPECT_EQ(data::universal_pos_class(""), -1);
}

TEST(BrownCorpus, SplitListParsing) {
  const auto list = data::parse_brown_split_list("ca01\ttrain\nca02\tvalid\n\nca03 test\ncb01\tval\n", "mine");
  const std::vector<std::pair<std::string, int>> expected = {{"ca01", 0}, {"ca02", 1}, {"ca03", 2}, {"cb01", 1}};
  EXPECT_EQ(list, expected);
  try {
    data::parse_brown_split_list("ca01\ttrain\nca02\tdev\n", "mine");
    FAIL() << "an unknown split must be an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("mine line 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("dev"), std::string::npos) << msg;
  }
  EXPECT_THROW(data::parse_brown_split_list("ca01\n", "mine"), Error);
}

TEST(BrownCorpus, ShippedSplitListCoversTheCorpusOnce) {
  const auto tsv = find_resource("brown/split.tsv");
  ASSERT_TRUE(tsv.has_value());
  const auto list = data::parse_brown_split_list(*tsv, "brown/split.tsv");
  ASSERT_EQ(list.size(), 500u);
  std::set<std::string> names;
  int per_split[3] = {0, 0, 0};
  for (const auto& [name, split] : list) {
    EXPECT_TRUE(data::is_brown_file_name(name)) << name;
    names.insert(name);
    ++per_split[split];
  }
  EXPECT_EQ(names.size(), 500u);
  EXPECT_EQ(per_split[0], 392);
  EXPECT_EQ(per_split[1], 54);
  EXPECT_EQ(per_split[2], 54);
}

}  // namespace
}  // namespace moelab
