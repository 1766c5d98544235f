// `moelab data text` as a researcher runs it on a JSONL corpus of their own: labels, the split it names, a reused
// tokenizer, and the manifest; and those labels carried through training into eval's perplexity by label and the
// report's analyses by label, with eval --text on another text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
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

TEST(DataText, OwnLabelsReachEvalAndTheReportAndEvalScoresAnyText) {
  testing::TempDir dir;
  const char* words[] = {"the", "vote", "river", "market", "council", "song", "school", "night", "road", "letter"};
  const char* parties[] = {"red", "blue", "green"};
  std::string jsonl;
  for (int i = 0; i < 60; ++i) {
    std::string text;
    for (int w = 0; w < 24; ++w) text += std::string(w ? " " : "") + words[(i * 7 + w * (1 + i % 3)) % 10];
    // Every fifth document has no party: its tokens have no class in that channel.
    jsonl += "{\"year\": " + std::to_string(1990 + i % 2) +
             (i % 5 == 4 ? std::string() : ", \"party\": \"" + std::string(parties[i % 3]) + "\"") + ", \"part\": \"" +
             (i % 6 == 1   ? "val"
              : i % 6 == 2 ? "test"
                           : "train") +
             "\", \"text\": \"" + text + ".\"}\n";
  }
  testing::write_all(dir.file("corpus.jsonl"), jsonl);
  const auto prepared = testing::run_moelab("data text " + dir.file("corpus.jsonl") + " --out " + dir.file("data") +
                                            " --vocab 300 --label year --label party --split-field part");
  ASSERT_EQ(prepared.status, 0) << prepared.output;
  testing::write_all(dir.file("run.toml"),
                     "[data]\ndir = \"data\"\n[model]\nd_model = 16\nn_layers = 2\nn_heads = 2\nmax_seq_len = 16\n"
                     "[moe]\nn_experts = 4\nexpert_hidden = 16\n[train]\nseq_len = 16\nbatch_size = 2\nsteps = 3\n"
                     "warmup_steps = 1\neval_every = 0\nlog_every = 1\nout_dir = \"run\"\n");
  const auto trained = testing::run_moelab("train " + dir.file("run.toml"));
  ASSERT_EQ(trained.status, 0) << trained.output;

  // Perplexity by each label's classes; the document without a party counts in "year" only.
  const auto evaluated = testing::run_moelab("eval " + dir.file("run") + " --json");
  ASSERT_EQ(evaluated.status, 0) << evaluated.output;
  const auto e = nlohmann::json::parse(evaluated.output);
  ASSERT_EQ(e["per_label"].size(), 2u) << e.dump(2);
  int64_t by_year = 0, by_party = 0;
  for (const auto& [name, c] : e["per_label"]["year"].items()) by_year += c["tokens"].get<int64_t>();
  for (const auto& [name, c] : e["per_label"]["party"].items()) by_party += c["tokens"].get<int64_t>();
  EXPECT_EQ(by_year, e["tokens"].get<int64_t>());
  EXPECT_GT(by_party, 0);
  EXPECT_LT(by_party, by_year);
  EXPECT_GT(e["bits_per_byte"].get<double>(), 0);
  EXPECT_GT(e["bytes"].get<int64_t>(), e["tokens"].get<int64_t>() / 4);

  // Any text, scored with the run's tokenizer: bits per byte beside perplexity, no labels.
  testing::write_all(dir.file("other.txt"), "The council sent a letter about the river road.\nA song at night.\n");
  const auto text = testing::run_moelab("eval " + dir.file("run") + " --text " + dir.file("other.txt"));
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_CONTAINS(text.output, "on text file " + dir.file("other.txt"));
  EXPECT_CONTAINS(text.output, "bits per byte");
  EXPECT_EQ(text.output.find(" by "), std::string::npos) << text.output;

  // The report runs paper 1's and paper 2's analyses against each label.
  const auto reported =
      testing::run_moelab("analyze report " + dir.file("run") + " --sample-tokens 16 --permutations 3 --no-png --out " +
                          dir.file("report"));
  ASSERT_EQ(reported.status, 0) << reported.output;
  const auto a = nlohmann::json::parse(testing::read_all(dir.file("report/analysis.json")));
  ASSERT_EQ(a["labels"].size(), 2u);
  EXPECT_EQ(a["labels"][0]["name"], "year");
  EXPECT_EQ(a["labels"][1]["name"], "party");
  EXPECT_EQ(a["labels"][1]["classes"], nlohmann::json({"blue", "green", "red"}));
  for (const auto& layer : a["layers"]) {
    EXPECT_EQ(layer["by_label"]["party"]["specialisation"]["labels"], 3);
    EXPECT_EQ(layer["by_label"]["year"]["experts_per_class"]["groups"].size(), 2u);
  }
  const std::string html = testing::read_all(dir.file("report/report.html"));
  for (const char* id : {"year-by-expert", "party-by-expert", "perplexity-by-party", "experts-by-label-year"})
    EXPECT_CONTAINS(html, id);
}

}  // namespace
}  // namespace moelab
