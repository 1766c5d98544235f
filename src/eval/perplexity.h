// Perplexity of a model on a token stream (a data folder's split or a text file, token_stream.h): mean
// cross-entropy over every target token (the stream cut into consecutive windows of the training context),
// overall and by class of each label channel the stream has; and bits per byte, which unlike perplexity compares
// models whose tokenizers differ.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/token_stream.h"
#include "eval/class_loss.h"
#include "model/model.h"

namespace moelab {

struct EvalResult {
  std::string source;                  // the stream's description ("the val split of data/brown")
  std::string split;                   // the split scored; empty for a text file
  int64_t window = 0;                  // tokens per window
  int64_t stride = 0;                  // tokens between window starts (= window: disjoint windows)
  double loss = 0;                     // mean cross-entropy in nats per token
  double perplexity = 0;               // exp(loss)
  int64_t tokens = 0;                  // targets scored
  int64_t bytes = 0;                   // UTF-8 bytes the targets stand for (piece_bytes); 0 without piece_bytes
  double bits_per_byte = 0;            // loss * tokens / ln 2 / bytes; NaN without piece_bytes
  std::vector<ChannelLoss> per_label;  // one per label channel of the stream
  nlohmann::json routing;              // per MoE layer routing statistics (RoutingTally) over every position of every
                                       // window forwarded: with a stride below the window, a token counts once per
                                       // window that reads it
};

// Throws moelab::Error naming the stream when an evaluation of it (of its first max_tokens tokens, when
// max_tokens > 0) would score no token: a mean over none would read as loss 0, perplexity 1.
void check_scorable(const data::TokenStream& stream, int64_t max_tokens);

// Scores the stream in windows of seq_len tokens, batch_size windows per forward pass; a window starts every
// stride tokens (0: seq_len, disjoint windows; less: a sliding context, data::count_eval_windows). max_tokens > 0
// scores only the first windows covering that many tokens (quick evaluations during training). piece_bytes
// [vocab] gives the bytes each token id stands for (Tokenizer::piece_bytes); empty leaves bits per byte out.
EvalResult evaluate_perplexity(Model& model, const data::TokenStream& stream, int64_t seq_len, int64_t batch_size,
                               int64_t max_tokens, const std::vector<int32_t>& piece_bytes, int64_t stride = 0);

// {"source", "split" (for a split), "loss", "perplexity", "tokens", "bytes" and "bits_per_byte" (when computed),
//  "per_label": {"<channel>": {"<class>":
//  {"loss", "perplexity", "tokens"}}}, "routing"}
nlohmann::json to_json(const EvalResult& r);

}  // namespace moelab
