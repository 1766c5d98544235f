// A Hugging Face model folder opened by eval, generate and the analyses as a moelab checkpoint is: a tiny Mixtral
// with a tokenizer.model made as Llama's is. Text is framed as the model's tokenizer frames it (each document after
// <s>, newlines as byte pieces), eval's loss is the independent PyTorch reference's on the same tokens, and every
// mistake (a split for a model without a data folder, a data folder of another tokenizer, a missing or unreadable
// tokenizer, a malformed tokenizer_config.json, a tokenizer larger than the model's vocabulary) is an error naming
// what is wrong. Brown encoded with the model's tokenizer carries its POS and genre labels onto the model's tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/fixtures/brown_fixture.h"
#include "data/prepare.h"
#include "eval/model_source.h"
#include "hf/hf_config.h"
#include "hf/hf_oracle.h"
#include "hf/tiny_mixtral.h"
#include "support/errors.h"
#include "support/run_moelab.h"
#include "support/temp_dir.h"

namespace moelab::hf {
namespace {

constexpr int64_t kModelVocab = 320, kTokenizerVocab = 300;  // the model's vocabulary has padding rows

// A tiny Mixtral folder (per-expert BF16 shards) with its tokenizer.
void write_model(const testing::TempDir& dir) {
  testing::write_all(dir.file("config.json"), tiny_mixtral::config_text(kModelVocab));
  const Model shape_of(read_hf_config(dir.file("config.json")).config);
  tiny_mixtral::write_per_expert(dir, shape_of, tiny_mixtral::random_weights(shape_of));
  testing::write_all(dir.file("config.json"), tiny_mixtral::config_text(kModelVocab));  // write_per_expert's is 40
  testing::write_all(dir.file("tokenizer.model"), tiny_mixtral::llama_like_tokenizer_model(kTokenizerVocab));
}

const testing::TempDir& model_dir() {
  static const testing::TempDir dir;
  [[maybe_unused]] static const bool written = (write_model(dir), true);
  return dir;
}

std::string path() { return model_dir().path().string(); }

TEST(HfCommands, TextIsFramedAsThePretrainedTokenizerFramesIt) {
  const ModelSource source = open_model_source(path(), "");
  EXPECT_TRUE(source.is_hf());
  EXPECT_EQ(source.hf_model_type, "mixtral");
  EXPECT_FALSE(source.data.has_value());
  EXPECT_EQ(source.config.model.vocab_size, kModelVocab);
  const data::Tokenizer& tok = source.tokenizer;
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eod_id(), 2);

  // Two documents: each starts with <s>; a newline inside one is the byte piece <0x0A>, not a line break of the
  // encoding; no </s> follows a document (add_eos_token defaults to false).
  testing::TempDir texts;
  testing::write_all(texts.file("two.jsonl"),
                     "{\"text\": \"The jury said it.\\nWho will pay?\"}\n{\"text\": \"My dog ate the pie.\"}\n");
  const data::TokenStream s = source.text_stream(texts.file("two.jsonl"), 0);
  std::vector<int32_t> second_doc = {1};
  for (int32_t id : tok.encode_ids("My dog ate the pie.")) second_doc.push_back(id);
  ASSERT_GT(s.tokens.size(), second_doc.size() + 2);
  EXPECT_EQ(s.tokens.front(), 1);
  EXPECT_EQ(std::vector<int32_t>(s.tokens.end() - static_cast<std::ptrdiff_t>(second_doc.size()), s.tokens.end()),
            second_doc);
  std::vector<std::string> pieces;
  for (int32_t id : s.tokens) pieces.push_back(tok.piece(id));
  EXPECT_EQ(std::count(pieces.begin(), pieces.end(), "<0x0A>"), 1);
  EXPECT_EQ(std::count(pieces.begin(), pieces.end(), "<s>"), 2);
  EXPECT_EQ(std::count(pieces.begin(), pieces.end(), "</s>"), 0);
  // The first document decodes back to its text, the newline included.
  const std::vector<int32_t> first(s.tokens.begin(), s.tokens.end() - static_cast<std::ptrdiff_t>(second_doc.size()));
  EXPECT_EQ(tok.decode(first), "The jury said it.\nWho will pay?");
  EXPECT_EQ(tok.encode_prompt("Who").front(), 1);
  EXPECT_TRUE(tok.encode_document("").empty());
}

TEST(HfCommands, TokenizerConfigDecidesTheFraming) {
  testing::TempDir dir;
  write_model(dir);
  testing::write_all(dir.file("tokenizer_config.json"), R"({"add_bos_token": false, "add_eos_token": true})");
  const ModelSource source = open_model_source(dir.path().string(), "");
  const std::vector<int32_t> ids = source.tokenizer.encode_document("The jury said it.");
  ASSERT_GE(ids.size(), 2u);
  EXPECT_NE(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(ids, [&] {
    std::vector<int32_t> want = source.tokenizer.encode_ids("The jury said it.");
    want.push_back(2);
    return want;
  }());
}

// eval's loss on a text is the mean next-token cross-entropy the PyTorch reference gives on the same tokens (one
// window: the text is shorter than the context).
TEST(HfCommands, EvalOfATextMatchesTheReference) {
  testing::TempDir dir;
  testing::write_all(dir.file("notes.txt"), "The House passed the bill.\nWho will pay for it?");
  const auto r = testing::run_moelab("eval " + path() + " --text " + dir.file("notes.txt") + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j["hf_model_type"], "mixtral");

  const ModelSource source = open_model_source(path(), "");
  const std::vector<int32_t> tokens = source.text_stream(dir.file("notes.txt"), 0).tokens;
  ASSERT_LT(static_cast<int64_t>(tokens.size()), source.config.train.seq_len);
  EXPECT_EQ(j["tokens"], static_cast<int64_t>(tokens.size()) - 1);
  testing::TempDir out;
  const std::vector<double> logits = read_f64(run_hf_oracle(path(), tokens, out), "logits");  // [T, V]
  double sum = 0;
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    const double* row = logits.data() + t * kModelVocab;
    double max = row[0], z = 0;
    for (int64_t v = 1; v < kModelVocab; ++v) max = std::max(max, row[v]);
    for (int64_t v = 0; v < kModelVocab; ++v) z += std::exp(row[v] - max);
    sum += max + std::log(z) - row[tokens[t + 1]];
  }
  const double want = sum / static_cast<double>(tokens.size() - 1);
  EXPECT_NEAR(j["loss"].get<double>(), want, 1e-4 * want);

  // Shorter windows: the same targets, each seen with less context, so another loss; a window longer than the
  // model's context is refused.
  const auto short_windows =
      testing::run_moelab("eval " + path() + " --text " + dir.file("notes.txt") + " --seq-len 4 --json");
  ASSERT_EQ(short_windows.status, 0) << short_windows.output;
  const nlohmann::json k = nlohmann::json::parse(short_windows.output.substr(short_windows.output.find('{')));
  EXPECT_EQ(k["tokens"], j["tokens"]);
  EXPECT_GT(std::abs(k["loss"].get<double>() - want), 1e-3);
  const auto too_long = testing::run_moelab("eval " + path() + " --text " + dir.file("notes.txt") + " --seq-len 65");
  EXPECT_EQ(too_long.status, 1);
  EXPECT_CONTAINS(too_long.output, "--seq-len 65: expected a window of 1 to 64 tokens");
}

TEST(HfCommands, GenerateTraceAndReportRunOnTheFolder) {
  const auto gen = testing::run_moelab("generate " + path() + " --prompt 'The jury' --max-tokens 4 --temperature 0");
  ASSERT_EQ(gen.status, 0) << gen.output;
  EXPECT_EQ(gen.output.rfind("The jury", 0), 0u) << gen.output;

  testing::TempDir dir;
  testing::write_all(dir.file("notes.txt"), "The House passed the bill on Sunday.\nThe jury said it did find that.");
  const auto trace = testing::run_moelab("analyze trace " + path() + " --text " + dir.file("notes.txt") + " --out " +
                                         dir.file("trace"));
  ASSERT_EQ(trace.status, 0) << trace.output;
  const nlohmann::json index = nlohmann::json::parse(testing::read_all(dir.file("trace/trace.json")));
  EXPECT_EQ(index["hf_model_type"], "mixtral");
  const ModelSource source = open_model_source(path(), "");
  EXPECT_EQ(index["n_tokens"], static_cast<int64_t>(source.text_stream(dir.file("notes.txt"), 0).tokens.size()));
  EXPECT_EQ(index["n_layers"], 2);

  const auto report = testing::run_moelab(
      "analyze report " + path() + " --text " + dir.file("notes.txt") +
      " --sample-tokens 16 --permutations 4 --no-png --prompt 'Who will pay' --out " + dir.file("report"));
  ASSERT_EQ(report.status, 0) << report.output;
  const nlohmann::json a = nlohmann::json::parse(testing::read_all(dir.file("report/analysis.json")));
  EXPECT_EQ(a["hf_model_type"], "mixtral");
  EXPECT_EQ(a["checkpoint"], path());
  EXPECT_TRUE(a["labels"].empty());
  EXPECT_EQ(a["prompt_tokens"][0], "<s>");  // the prompt is framed as a document
  EXPECT_TRUE(std::filesystem::exists(dir.file("report/report.html")));
}

// Brown encoded with the model's own tokenizer: each document framed as the model frames it (<s> first, whole text,
// then the data folder's end-of-document), each word's POS class on the tokens that start it, and the model
// evaluated on it by class; a data folder of another tokenizer is refused.
TEST(HfCommands, BrownEncodedWithTheModelsTokenizerCarriesItsLabels) {
  testing::TempDir corpus, out, moelab_out;
  testing::write_brown_fixture(corpus);
  data::prepare_brown_from_dir(corpus.path().string(), testing::brown_fixture_split(), out.path().string(),
                               data::TokenizerChoice{0, "", path()});
  const data::TokenData d = data::TokenData::open(out.path().string());
  EXPECT_TRUE(d.whole_text());
  EXPECT_EQ(d.bos_id(), 1);
  EXPECT_EQ(d.eod_id(), 2);
  EXPECT_EQ(d.vocab_size(), kTokenizerVocab);
  EXPECT_EQ(testing::read_all(d.tokenizer_path()), testing::read_all(model_dir().file("tokenizer.model")));
  const ModelSource source = open_model_source(path(), out.path().string());
  const data::TokenStream val = source.split_stream("val", 0);
  ASSERT_EQ(val.channels.size(), 2u);  // pos, genre
  const data::Tokenizer& tok = source.tokenizer;
  // The val split is one document: <s>, its tokens, </s>; the POS labels of its tokens are those of the words
  // their first non-space byte is in, here checked on the decoded text: the start and end ids have none.
  ASSERT_GT(val.tokens.size(), 3u);
  EXPECT_EQ(val.tokens.front(), 1);
  EXPECT_EQ(val.tokens.back(), 2);
  EXPECT_EQ(std::count(val.tokens.begin(), val.tokens.end(), 1), 1);
  EXPECT_EQ(val.labels[0].front(), data::kNoLabel);
  EXPECT_EQ(val.labels[0].back(), data::kNoLabel);
  const std::vector<int32_t> body(val.tokens.begin() + 1, val.tokens.end() - 1);
  EXPECT_EQ(tok.encode_ids(tok.decode(body)), body) << "the document was encoded whole, as one text";
  int64_t labelled = 0;
  for (size_t i = 1; i + 1 < val.tokens.size(); ++i) labelled += val.labels[0][i] != data::kNoLabel;
  EXPECT_GT(labelled, static_cast<int64_t>(body.size()) / 2);
  EXPECT_EQ(std::count(val.labels[1].begin(), val.labels[1].end(), val.labels[1].front()),
            static_cast<std::ptrdiff_t>(val.labels[1].size()))
      << "one genre over the whole document, start and end ids included";

  const auto eval = testing::run_moelab("eval " + path() + " --data " + out.path().string() + " --json");
  ASSERT_EQ(eval.status, 0) << eval.output;
  const nlohmann::json j = nlohmann::json::parse(eval.output.substr(eval.output.find('{')));
  EXPECT_TRUE(j["per_label"].contains("pos") && j["per_label"].contains("genre")) << j.dump();
  const auto report = testing::run_moelab("analyze report " + path() + " --data " + out.path().string() +
                                          " --sample-tokens 16 --permutations 4 --no-png --out " + out.file("report"));
  ASSERT_EQ(report.status, 0) << report.output;
  const nlohmann::json a = nlohmann::json::parse(testing::read_all(out.file("report/analysis.json")));
  ASSERT_EQ(a["labels"].size(), 2u);  // paper 1's specialisation by POS and by genre, on the model's experts
  EXPECT_EQ(a["labels"][0]["name"], "pos");
  EXPECT_CONTAINS(testing::read_all(out.file("report/report.html")), "Hugging Face model " + path() + " (mixtral)");

  data::prepare_brown_from_dir(corpus.path().string(), testing::brown_fixture_split(), moelab_out.path().string(),
                               data::TokenizerChoice{400, "", ""});
  EXPECT_CONTAINS(testing::error_of([&] { open_model_source(path(), moelab_out.path().string()); }),
                  "not encoded with the tokenizer of " + path());
}

TEST(HfCommands, AnalysesOfAFolderGoUnderTheCurrentFolderByDefault) {
  EXPECT_EQ(default_analysis_folder(path(), "report"),
            (std::filesystem::path("analysis") / model_dir().path().filename() / "report").string());
  EXPECT_EQ(default_analysis_folder(path() + "/", "trace-val"),
            (std::filesystem::path("analysis") / model_dir().path().filename() / "trace-val").string());
}

TEST(HfCommands, MistakesAreNamed) {
  testing::TempDir dir;
  testing::write_all(dir.file("notes.txt"), "Some text.");
  // No data folder, so no split.
  const auto split = testing::run_moelab("eval " + path());
  EXPECT_NE(split.status, 0);
  EXPECT_CONTAINS(split.output, "has no data folder of its own");
  EXPECT_CONTAINS(split.output, "--text");

  testing::TempDir bad;
  write_model(bad);
  const std::string bad_dir = bad.path().string();
  testing::write_all(bad.file("tokenizer_config.json"), R"({"add_bos_token": "yes"})");
  EXPECT_CONTAINS(testing::error_of([&] { open_model_source(bad_dir, ""); }),
                  bad.file("tokenizer_config.json") + ": field 'add_bos_token': expected true or false");
  std::filesystem::remove(bad.file("tokenizer_config.json"));
  testing::write_all(bad.file("config.json"), tiny_mixtral::config_text(kTokenizerVocab - 10));
  EXPECT_CONTAINS(testing::error_of([&] { open_model_source(bad_dir, ""); }),
                  "the tokenizer has 300 ids but the model's vocab_size (config.json) is 290");
  std::filesystem::rename(bad.file("tokenizer.model"), bad.file("tokenizer.json"));  // read first when present
  EXPECT_CONTAINS(testing::error_of([&] { open_model_source(bad_dir, ""); }),
                  bad.file("tokenizer.json") + ": not valid JSON");
  std::filesystem::remove(bad.file("tokenizer.json"));
  EXPECT_CONTAINS(testing::error_of([&] { open_model_source(bad_dir, ""); }), "no tokenizer.json or tokenizer.model");
}

}  // namespace
}  // namespace moelab::hf
