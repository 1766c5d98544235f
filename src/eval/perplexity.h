// Perplexity of a model on a split of a token folder: mean cross-entropy over every target token (the split cut
// into consecutive windows of the training context), overall and per genre when the corpus has genre labels.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/loader.h"
#include "model/model.h"

namespace moelab {

struct GenreLoss {
  std::string genre;
  double loss = 0;
  double perplexity = 0;
  int64_t tokens = 0;
};

struct EvalResult {
  std::string split;
  double loss = 0;                   // mean cross-entropy in nats per token
  double perplexity = 0;             // exp(loss)
  int64_t tokens = 0;                // targets scored
  std::vector<GenreLoss> per_genre;  // empty for unlabelled corpora
  nlohmann::json routing;            // per MoE layer routing statistics over the scored tokens (RoutingTally)
};

// Throws moelab::Error naming the split and the data folder when an evaluation of it (of its first max_tokens
// tokens, when max_tokens > 0) would score no token: a mean over none would read as loss 0, perplexity 1.
void check_scorable(const data::TokenData& data, const std::string& split, int64_t max_tokens);

// Scores the split in windows of seq_len tokens, batch_size windows per forward pass. max_tokens > 0 scores only
// the first windows covering that many tokens (quick evaluations during training).
EvalResult evaluate_perplexity(Model& model, const data::TokenData& data, const std::string& split, int64_t seq_len,
                               int64_t batch_size, int64_t max_tokens);

nlohmann::json to_json(const EvalResult& r);

}  // namespace moelab
