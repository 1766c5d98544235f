// evaluate_perplexity against a reference built independently of its windowing: each target's loss from a forward
// of only the tokens its window lets it see (the window's start up to the target's predecessor), averaged overall
// and by class of each label channel; bits per byte from byte counts given by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "data/token_stream.h"
#include "eval/perplexity.h"
#include "model/config.h"
#include "model/model.h"
#include "support/errors.h"

namespace moelab {
namespace {

constexpr int64_t kVocab = 40, kT = 8;

std::unique_ptr<Model> tiny_model() {
  Config cfg;
  cfg.model.vocab_size = kVocab, cfg.model.d_model = 16, cfg.model.n_layers = 2, cfg.model.n_heads = 2;
  cfg.model.max_seq_len = kT, cfg.train.seq_len = kT;
  cfg.moe.n_experts = 4, cfg.moe.expert_hidden = 8;
  validate(cfg);
  auto m = std::make_unique<Model>(cfg);
  m->init_params(11);
  return m;
}

// 29 tokens (3 whole windows of 8 targets and one of 4), two channels: "pos" by token, "genre" by document, and
// a class ("c", id 2) that no target has.
data::TokenStream labelled_stream() {
  data::TokenStream s;
  s.description = "synthetic stream";
  s.eod_id = 2;
  s.channels = {{"pos", data::LabelScope::word, {"a", "b", "c"}}, {"genre", data::LabelScope::document, {"x", "y"}}};
  s.labels.resize(2);
  for (int64_t i = 0; i < 29; ++i) {
    s.tokens.push_back(static_cast<int32_t>(3 + (i * 13 + i * i) % (kVocab - 3)));
    s.labels[0].push_back(i % 5 == 4 ? data::kNoLabel : static_cast<uint8_t>(i % 2));
    s.labels[1].push_back(static_cast<uint8_t>(i < 15 ? 0 : 1));
  }
  return s;
}

TEST(Perplexity, MatchesTargetByTargetForwardsOverallByClassAndPerByte) {
  auto model = tiny_model();
  const data::TokenStream stream = labelled_stream();
  std::vector<int32_t> piece_bytes(kVocab);
  for (int64_t id = 0; id < kVocab; ++id) piece_bytes[id] = static_cast<int32_t>(id % 4);

  // Reference: target p (tokens 1..n-1) lies in window (p-1)/T, which starts at token w*T.
  const int64_t n = static_cast<int64_t>(stream.tokens.size());
  double sum = 0, bytes = 0;
  double class_sum[2][3] = {}, class_count[2][3] = {};
  for (int64_t p = 1; p < n; ++p) {
    const int64_t start = (p - 1) / kT * kT, len = p - start;  // the inputs the target sees: [start, p)
    std::vector<int32_t> inputs(stream.tokens.begin() + start, stream.tokens.begin() + p);
    std::vector<int32_t> targets(len, -1);
    targets[len - 1] = stream.tokens[p];
    model->forward(inputs.data(), targets.data(), 1, len);
    const double loss = model->row_losses()[len - 1];
    sum += loss, bytes += piece_bytes[stream.tokens[p]];
    for (int c = 0; c < 2; ++c) {
      const uint8_t label = stream.labels[c][p];
      if (label != data::kNoLabel) class_sum[c][label] += loss, ++class_count[c][label];
    }
  }

  const EvalResult r = evaluate_perplexity(*model, stream, kT, 3, 0, piece_bytes);
  EXPECT_EQ(r.source, "synthetic stream");
  EXPECT_EQ(r.tokens, n - 1);
  EXPECT_NEAR(r.loss, sum / (n - 1), 1e-5);
  EXPECT_NEAR(r.perplexity, std::exp(sum / (n - 1)), 1e-3);
  EXPECT_EQ(r.bytes, static_cast<int64_t>(bytes));
  EXPECT_NEAR(r.bits_per_byte, sum / std::log(2.0) / bytes, 1e-5);
  ASSERT_EQ(r.per_label.size(), 2u);
  for (int c = 0; c < 2; ++c) {
    SCOPED_TRACE(r.per_label[c].channel);
    EXPECT_EQ(r.per_label[c].channel, stream.channels[c].name);
    ASSERT_EQ(r.per_label[c].classes.size(), 2u) << "the class no target has is left out";
    for (int k = 0; k < 2; ++k) {
      const ClassLoss& got = r.per_label[c].classes[k];
      EXPECT_EQ(got.name, stream.channels[c].classes[k]);
      EXPECT_EQ(got.tokens, static_cast<int64_t>(class_count[c][k]));
      EXPECT_NEAR(got.loss, class_sum[c][k] / class_count[c][k], 1e-5);
    }
  }
  const nlohmann::json j = to_json(r);
  EXPECT_EQ(j["per_label"]["genre"]["y"]["tokens"], r.per_label[1].classes[1].tokens);
  EXPECT_EQ(j["bytes"], r.bytes);
  EXPECT_FALSE(j.contains("split")) << "a stream that is no split names none";

  // The batch size and the limit change what is scored only by whole windows.
  const EvalResult one_by_one = evaluate_perplexity(*model, stream, kT, 1, 0, piece_bytes);
  EXPECT_NEAR(one_by_one.loss, r.loss, 1e-6);
  const EvalResult head = evaluate_perplexity(*model, stream, kT, 2, 10, {});
  EXPECT_EQ(head.tokens, 2 * kT) << "10 tokens need 2 windows, scored whole";
  EXPECT_EQ(head.bytes, 0);
  EXPECT_TRUE(std::isnan(head.bits_per_byte));
  EXPECT_FALSE(to_json(head).contains("bits_per_byte")) << "no byte counts, no bits per byte";
}

// A sliding context: windows every `stride` tokens, each target scored once, by the first window that has it, with
// the inputs from that window's start. The reference finds that window by its own rule: the first k whose targets
// (tokens k*S+1 .. k*S+T) reach p.
TEST(Perplexity, ASlidingContextScoresEachTargetOnceFromItsFirstWindow) {
  auto model = tiny_model();
  const data::TokenStream stream = labelled_stream();
  const int64_t n = static_cast<int64_t>(stream.tokens.size());
  for (const int64_t S : {int64_t{1}, int64_t{3}, int64_t{5}}) {
    SCOPED_TRACE("stride " + std::to_string(S));
    double sum = 0;
    for (int64_t p = 1; p < n; ++p) {
      int64_t k = 0;
      while (k * S + kT < p) ++k;
      const int64_t start = k * S, len = p - start;
      ASSERT_TRUE(k == 0 || len >= kT - S) << "a target after the first window sees at least T - S tokens";
      std::vector<int32_t> inputs(stream.tokens.begin() + start, stream.tokens.begin() + p);
      std::vector<int32_t> targets(len, -1);
      targets[len - 1] = stream.tokens[p];
      model->forward(inputs.data(), targets.data(), 1, len);
      sum += model->row_losses()[len - 1];
    }
    const EvalResult r = evaluate_perplexity(*model, stream, kT, 2, 0, {}, S);
    EXPECT_EQ(r.tokens, n - 1);
    EXPECT_NEAR(r.loss, sum / (n - 1), 1e-5);
    EXPECT_EQ(r.window, kT);
    EXPECT_EQ(r.stride, S);
    EXPECT_EQ(to_json(r)["stride"], S);
  }
  EXPECT_EQ(evaluate_perplexity(*model, stream, kT, 2, 0, {}, kT).loss,
            evaluate_perplexity(*model, stream, kT, 2, 0, {}).loss)
      << "a stride of the window is the disjoint windows";
}

TEST(Perplexity, RefusesStreamsWithNothingToScore) {
  auto model = tiny_model();
  data::TokenStream one = labelled_stream();
  one.tokens.resize(1);
  for (auto& l : one.labels) l.resize(1);
  EXPECT_CONTAINS(testing::error_of([&] { evaluate_perplexity(*model, one, kT, 2, 0, {}); }),
                  "synthetic stream has 1 token: too few to evaluate");
  EXPECT_CONTAINS(testing::error_of([&] { evaluate_perplexity(*model, labelled_stream(), kT, 2, 1, {}); }),
                  "evaluating synthetic stream: a limit of 1 token scores none");
}

}  // namespace
}  // namespace moelab
