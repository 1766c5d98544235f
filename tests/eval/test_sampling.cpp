// Sampling the next token (greedy, temperature, top-k) against the distribution it should draw from, and
// generation against a plain loop of full forwards.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "eval/generate.h"
#include "model/model.h"
#include "support/small_model.h"

namespace moelab {
namespace {

// Draw frequencies of each token over n draws.
std::vector<double> frequencies(const std::vector<float>& logits, const SamplingOptions& opt, int n) {
  Rng rng(opt.seed, 3);
  std::vector<double> freq(logits.size(), 0);
  for (int i = 0; i < n; ++i) freq[sample_token(logits.data(), std::ssize(logits), opt, rng)] += 1.0 / n;
  return freq;
}

// Each frequency within 5 standard errors of its probability (a false alarm about once in 10^6 runs per token).
void expect_distribution(const std::vector<double>& freq, const std::vector<double>& probs, int n) {
  for (size_t i = 0; i < probs.size(); ++i)
    EXPECT_NEAR(freq[i], probs[i], 5 * std::sqrt(probs[i] * (1 - probs[i]) / n) + 1e-12) << "token " << i;
}

TEST(Sampling, GreedyTakesTheFirstLargestLogit) {
  Rng rng(1, 0);
  const SamplingOptions greedy{.temperature = 0};
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(sample_token(logits.data(), 4, greedy, rng), 1);
  // top_k = 1 at any temperature is greedy too.
  const SamplingOptions top1{.temperature = 1.5, .top_k = 1};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_token(logits.data(), 4, top1, rng), 1);
}

TEST(Sampling, DrawsFromTheSoftmaxOfTheLogitsOverTheTemperature) {
  constexpr int n = 60000;
  const std::vector<float> logits = {0.0f, static_cast<float>(std::log(2.0)), static_cast<float>(std::log(4.0))};
  // Temperature 1: probabilities 1/7, 2/7, 4/7.
  expect_distribution(frequencies(logits, {.temperature = 1, .top_k = 0}, n), {1 / 7.0, 2 / 7.0, 4 / 7.0}, n);
  // Temperature 2: weights exp(l / 2) = 1, sqrt 2, 2.
  const double z = 1 + std::sqrt(2.0) + 2;
  expect_distribution(frequencies(logits, {.temperature = 2, .top_k = 0, .seed = 7}, n),
                      {1 / z, std::sqrt(2.0) / z, 2 / z}, n);
}

TEST(Sampling, TopKKeepsTheKLargestTiesByLowerIdAndRenormalises) {
  constexpr int n = 60000;
  // Equal logits: top_k 2 keeps tokens 0 and 1, each half the time; token 2 never.
  expect_distribution(frequencies({1.0f, 1.0f, 1.0f}, {.temperature = 1, .top_k = 2}, n), {0.5, 0.5, 0}, n);
  // Logits 0, ln 2, ln 4, ln 8 with top_k 2: tokens 2 and 3 in the ratio 1 : 2.
  std::vector<float> logits;
  for (double w : {1.0, 2.0, 4.0, 8.0}) logits.push_back(static_cast<float>(std::log(w)));
  expect_distribution(frequencies(logits, {.temperature = 1, .top_k = 2, .seed = 9}, n), {0, 0, 1 / 3.0, 2 / 3.0}, n);
}

TEST(Sampling, TheSameSeedDrawsTheSameTokens) {
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(std::sin(i * 1.7));
  const SamplingOptions opt{.temperature = 1.2, .top_k = 20, .seed = 4};
  Rng a(opt.seed, 0), b(opt.seed, 0), c(opt.seed + 1, 0);
  std::vector<int32_t> da, db, dc;
  for (int i = 0; i < 40; ++i) {
    da.push_back(sample_token(logits.data(), 50, opt, a));
    db.push_back(sample_token(logits.data(), 50, opt, b));
    dc.push_back(sample_token(logits.data(), 50, opt, c));
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

// Greedy generation against the reference: a full forward of the whole (truncated) context per new token.
TEST(Generate, GreedyMatchesAFullForwardPerTokenAndTruncatesToTheContext) {
  const Config cfg = testing::small_model_config("f32", 8, 1);
  Model model(cfg);
  model.init_params(3);
  const int64_t V = cfg.model.vocab_size, max_ctx = cfg.model.max_seq_len;
  const std::vector<int32_t> prompt = {5, 17, 3, 44, 9, 60, 2, 11, 31, 7};  // longer than the context of 8
  const SamplingOptions opt{.temperature = 0, .max_new_tokens = 6};
  const std::vector<int32_t> produced = generate(model, prompt, opt);
  ASSERT_EQ(produced.size(), 6u);

  std::vector<int32_t> context = prompt;
  for (int32_t got : produced) {
    const std::vector<int32_t> window(context.end() - max_ctx, context.end());
    model.forward(window.data(), nullptr, 1, max_ctx);
    const float* last = model.logits() + (max_ctx - 1) * V;
    const int32_t want = static_cast<int32_t>(std::max_element(last, last + V) - last);
    EXPECT_EQ(got, want);
    context.push_back(want);
  }
}

TEST(Generate, StopsAfterTheStopTokenAndRefusesAnEmptyPrompt) {
  const Config cfg = testing::small_model_config("f32", 8, 1);
  Model model(cfg);
  model.init_params(3);
  const std::vector<int32_t> prompt = {5, 17, 3};
  const std::vector<int32_t> free = generate(model, prompt, {.temperature = 0, .max_new_tokens = 4});
  ASSERT_EQ(free.size(), 4u);
  // Stopping at the token greedy decoding produces second: two tokens, the stop token last.
  const std::vector<int32_t> stopped =
      generate(model, prompt, {.temperature = 0, .max_new_tokens = 4, .stop_token = free[1]});
  const auto first_stop = std::find(free.begin(), free.end(), free[1]) - free.begin();
  EXPECT_EQ(stopped, std::vector<int32_t>(free.begin(), free.begin() + first_stop + 1));
  EXPECT_THROW(generate(model, {}, {}), Error);
}

// A vocabulary limit below the model's: every token drawn is below it, greedy or sampled, and greedy takes the
// largest logit among those ids.
TEST(Generate, DrawsOnlyIdsBelowTheVocabularyLimit) {
  const Config cfg = testing::small_model_config("f32", 8, 1);
  Model model(cfg);
  model.init_params(3);
  const int64_t V = cfg.model.vocab_size;
  const std::vector<int32_t> prompt = {5, 17, 3};
  model.forward(prompt.data(), nullptr, 1, 3);
  const std::vector<float> last(model.logits() + 2 * V, model.logits() + 3 * V);  // [V]
  // The limit excludes the overall most likely id, so that greedy must choose another.
  const int64_t limit = std::max_element(last.begin(), last.end()) - last.begin();
  ASSERT_GT(limit, 1);
  const std::vector<int32_t> first =
      generate(model, prompt, {.temperature = 0, .max_new_tokens = 1, .vocab_limit = limit});
  EXPECT_EQ(first[0], std::max_element(last.begin(), last.begin() + limit) - last.begin());
  const std::vector<int32_t> sampled =
      generate(model, prompt, {.temperature = 2.0, .top_k = 0, .max_new_tokens = 40, .vocab_limit = limit});
  for (int32_t id : sampled) EXPECT_LT(id, limit);
}

}  // namespace
}  // namespace moelab
