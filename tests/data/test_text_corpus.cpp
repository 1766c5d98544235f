#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/text_corpus.h"
#include "support/errors.h"
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
  const auto read = data::read_text_documents(dir.file("one.txt"));
  ASSERT_EQ(read.size(), 1u);
  const Document& d = read[0];
  EXPECT_EQ(d.name, dir.file("one.txt"));
  EXPECT_EQ(d.text, "Hello there.\nSecond line");
  EXPECT_TRUE(d.labels.empty());
  EXPECT_TRUE(d.words.empty());
  try {
    data::read_text_documents(dir.file("two.txt"));
    FAIL() << "a missing file must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("two.txt")), std::string::npos) << e.what();
  }
}

TEST(TextCorpus, FractionsSplitEachDocumentByItsNameWhateverTheOrder) {
  std::vector<Document> docs;
  for (int i = 0; i < 400; ++i) docs.push_back(doc_of_lines("doc" + std::to_string(i), 1));
  data::TextSplitRule rule;
  rule.val_fraction = 0.1, rule.test_fraction = 0.2, rule.seed = 5;
  const auto splits = data::split_text_corpus(docs, rule);
  EXPECT_NEAR(splits[1].size(), 40, 20);
  EXPECT_NEAR(splits[2].size(), 80, 25);
  std::vector<Document> reversed(docs.rbegin(), docs.rend());
  const auto again = data::split_text_corpus(reversed, rule);
  for (int s = 0; s < 3; ++s) {
    std::vector<std::string> a, b;
    for (const auto& d : splits[s]) a.push_back(d.name);
    for (const auto& d : again[s]) b.push_back(d.name);
    std::sort(a.begin(), a.end()), std::sort(b.begin(), b.end());
    EXPECT_EQ(a, b) << "split " << s;
  }
  rule.seed = 6;
  EXPECT_NE(data::split_text_corpus(docs, rule)[1].size() + 1000 * data::split_text_corpus(docs, rule)[2].size(),
            splits[1].size() + 1000 * splits[2].size());
}

TEST(TextCorpus, ASplitListNamesEveryDocumentOnce) {
  testing::TempDir dir;
  std::vector<Document> docs = {doc_of_lines("a.txt", 1), doc_of_lines("b.txt", 1), doc_of_lines("c.txt", 1)};
  data::TextSplitRule rule;
  rule.list_file = dir.file("split.tsv");
  testing::write_all(rule.list_file, "a.txt\ttrain\nb.txt\ttest\nc.txt\tval\n");
  const auto splits = data::split_text_corpus(docs, rule);
  EXPECT_EQ(splits[0][0].name, "a.txt");
  EXPECT_EQ(splits[1][0].name, "c.txt");
  EXPECT_EQ(splits[2][0].name, "b.txt");
  const std::pair<std::string, std::string> bad[] = {
      {"a.txt\ttrain\nb.txt\ttest\n", "'c.txt' is not listed"},
      {"a.txt\ttrain\nb.txt\ttest\nc.txt\tval\nd.txt\tval\n", "split.tsv:4: no document is named 'd.txt'"},
      {"a.txt\ttrain\nb.txt\ttest\nc.txt\tdev\n", "split.tsv:3: split 'dev' is not train, val or test"},
      {"a.txt\ttrain\na.txt\ttest\n", "split.tsv:2: document 'a.txt' is listed twice"},
      {"a.txt train\n", "split.tsv:1: expected DOCUMENT<TAB>SPLIT"}};
  for (const auto& [list, fragment] : bad) {
    testing::write_all(rule.list_file, list);
    EXPECT_CONTAINS(testing::error_of([&] { data::split_text_corpus(docs, rule); }), fragment);
  }
}

TEST(TextCorpus, JsonlLinesThatAreNotDocumentsAreRefusedByLine) {
  testing::TempDir dir;
  const std::pair<std::string, std::string> bad[] = {
      {"{\"text\": \"fine\", \"part\": \"val\"}\n[1, 2]\n",
       "bad.jsonl:2: expected a JSON object with a string field \"text\""},
      {"{\"body\": \"no text\"}\n", "bad.jsonl:1: expected a JSON object"},
      {"{\"text\": \"x\", \"part\": \"dev\"}\n", "bad.jsonl:1: field \"part\" must be \"train\", \"val\" or \"test\""},
      {"{\"text\": \"x\", \"party\": [1]}\n", "bad.jsonl:1: field \"party\" must be a string"}};
  for (const auto& [text, fragment] : bad) {
    testing::write_all(dir.file("bad.jsonl"), text);
    EXPECT_CONTAINS(testing::error_of([&] {
                      data::read_text_documents(dir.file("bad.jsonl"), {{"party"}, "part"});
                    }),
                    fragment);
  }
  testing::write_all(dir.file("plain.txt"), "text\n");
  EXPECT_CONTAINS(testing::error_of([&] {
                    data::read_text_documents(dir.file("plain.txt"), {{"party"}, ""});
                  }),
                  "JSONL files");
}

}  // namespace
}  // namespace moelab
