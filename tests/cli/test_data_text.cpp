// `moelab data text` as a researcher runs it on a JSONL corpus of their own: labels, the split it names, a reused
// tokenizer, and the manifest.
#include <gtest/gtest.h>

#include <string>

#include "support/errors.h"
#include "support/run_moelab.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

TEST(DataText, JsonlCorpusWithLabelsAndItsOwnSplit) {
  testing::TempDir dir;
  std::string jsonl;
  for (int i = 0; i < 30; ++i)
    jsonl += "{\"id\": \"s" + std::to_string(i) + "\", \"year\": " + std::to_string(1990 + i % 2) + ", \"part\": \"" +
             (i % 10 == 1   ? "val"
              : i % 10 == 2 ? "test"
                            : "train") +
             "\", \"text\": \"Sentence " + std::to_string(i) + " of the corpus.\"}\n";
  testing::write_all(dir.file("corpus.jsonl"), jsonl);
  const auto r = testing::run_moelab("data text " + dir.file("corpus.jsonl") + " --out " + dir.file("data") +
                                     " --vocab 300 --label year --split-field part");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_CONTAINS(r.output, "train          24 ");
  EXPECT_CONTAINS(r.output, "val             3 ");
  const std::string meta = testing::read_all(dir.file("data/meta.json"));
  EXPECT_CONTAINS(meta, "\"1990\"");
  EXPECT_CONTAINS(meta, "\"1991\"");
  EXPECT_CONTAINS(testing::read_all(dir.file("data/manifest.tsv")), "s1\tval\t");

  const auto reused =
      testing::run_moelab("data text " + dir.file("corpus.jsonl") + " --out " + dir.file("again") + " --tokenizer " +
                          dir.file("data/tokenizer.model") + " --val-fraction 0.2 --test-fraction 0.2 --seed 3");
  ASSERT_EQ(reused.status, 0) << reused.output;
  EXPECT_CONTAINS(reused.output, "reusing the tokenizer");
  EXPECT_EQ(testing::read_all(dir.file("again/tokenizer.model")), testing::read_all(dir.file("data/tokenizer.model")));
}

}  // namespace
}  // namespace moelab
