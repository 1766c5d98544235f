#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "data/text_corpus.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

using data::Document;

Document doc_of_lines(const std::string& name, int lines) {
  Document d;
  d.name = name;
  for (int i = 0; i < lines; ++i) d.text += name + " line " + std::to_string(i) + "\n";
  return d;
}

TEST(TextCorpus, SplitsByDocumentFromTwentyOn) {
  std::vector<Document> docs;
  for (int i = 0; i < 25; ++i) {
    std::string name = "d";
    name += std::to_string(i);
    docs.push_back(doc_of_lines(name, 2));
  }
  const auto splits = data::split_text_corpus(docs);
  auto names = [&](int s) {
    std::vector<std::string> n;
    for (const auto& d : splits[s]) n.push_back(d.name);
    return n;
  };
  EXPECT_EQ(names(1), (std::vector<std::string>{"d8", "d18"}));
  EXPECT_EQ(names(2), (std::vector<std::string>{"d9", "d19"}));
  ASSERT_EQ(splits[0].size(), 21u);
  EXPECT_EQ(splits[0][7].name, "d7");
  EXPECT_EQ(splits[0][8].name, "d10");  // order kept, held-out documents skipped
  EXPECT_EQ(splits[0][8].text, docs[10].text);
}

TEST(TextCorpus, SplitsFewDocumentsByContiguousLineRanges) {
  const std::vector<Document> docs = {doc_of_lines("a", 40), doc_of_lines("b", 2), doc_of_lines("c", 3),
                                      doc_of_lines("d", 101)};
  const auto splits = data::split_text_corpus(docs);
  auto line_count = [](const Document& d) { return static_cast<int>(std::count(d.text.begin(), d.text.end(), '\n')); };
  // Lines per document and split (hand-computed: held out = max(1, n/20) from 3 lines on).
  const int expected[4][3] = {{36, 2, 2}, {2, 0, 0}, {1, 1, 1}, {91, 5, 5}};
  ASSERT_EQ(splits[0].size(), 4u);
  ASSERT_EQ(splits[1].size(), 3u);  // b is too short to give up lines
  ASSERT_EQ(splits[2].size(), 3u);
  for (int i = 0, held = 0; i < 4; ++i) {
    EXPECT_EQ(line_count(splits[0][i]), expected[i][0]) << i;
    std::string joined = splits[0][i].text;
    if (expected[i][1] > 0) {
      EXPECT_EQ(line_count(splits[1][held]), expected[i][1]) << i;
      EXPECT_EQ(line_count(splits[2][held]), expected[i][2]) << i;
      joined += splits[1][held].text + splits[2][held].text;
      ++held;
    }
    EXPECT_EQ(joined, docs[i].text) << "ranges must be contiguous and cover document " << i;
  }
}

TEST(TextCorpus, ReadsFilesAndNamesMissingOnes) {
  testing::TempDir dir;
  testing::write_all(dir.file("one.txt"), "Hello there.\nSecond line");
  const Document d = data::read_text_document(dir.file("one.txt"));
  EXPECT_EQ(d.text, "Hello there.\nSecond line");
  EXPECT_EQ(d.genre, -1);
  EXPECT_TRUE(d.words.empty());
  try {
    data::read_text_document(dir.file("two.txt"));
    FAIL() << "a missing file must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("two.txt")), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moelab
