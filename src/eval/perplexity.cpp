#include "eval/perplexity.h"

#include <cmath>

#include "core/error.h"
#include "data/loader.h"
#include "eval/routing_tally.h"

namespace moelab {

void check_scorable(const data::TokenStream& stream, int64_t max_tokens) {
  const int64_t n = static_cast<int64_t>(stream.tokens.size());
  if (max_tokens == 1 && n >= 2)
    throw_error("evaluating ", stream.description, ": a limit of ", max_tokens,
                " token scores none; a target needs the token before it, so the limit must be at least 2");
  if (n < 2)
    throw_error(stream.description, " has ", n, n == 1 ? " token" : " tokens",
                ": too few to evaluate (a target needs the token before it, so at least 2)");
}

EvalResult evaluate_perplexity(Model& model, const data::TokenStream& stream, int64_t seq_len, int64_t batch_size,
                               int64_t max_tokens, const std::vector<int32_t>& piece_bytes, int64_t stride) {
  const Model::InferenceMode inference(model);
  check_scorable(stream, max_tokens);
  MOELAB_ASSERT(piece_bytes.empty() || static_cast<int64_t>(piece_bytes.size()) == model.config().model.vocab_size,
                "one byte count per token id");
  MOELAB_ASSERT(stride >= 0 && stride <= seq_len, "a window stride between 1 and the window (0: the window)");
  const int64_t n_windows =
      data::count_eval_windows(static_cast<int64_t>(stream.tokens.size()), seq_len, max_tokens, stride);
  std::vector<ClassLossTally> by_label;  // [channels]
  for (const auto& channel : stream.channels) by_label.emplace_back(channel);
  double sum = 0;
  int64_t count = 0, bytes = 0;

  std::vector<int32_t> inputs, targets;  // [B,T]
  std::vector<data::EvalWindow> windows(batch_size);
  RoutingTally routing;
  for (int64_t first = 0; first < n_windows; first += batch_size) {
    const int64_t B = std::min(batch_size, n_windows - first);
    inputs.resize(B * seq_len), targets.resize(B * seq_len);
    for (int64_t b = 0; b < B; ++b) {
      data::eval_window(stream, seq_len, first + b, windows[b], stride);
      std::copy_n(windows[b].tokens.begin(), seq_len, inputs.begin() + b * seq_len);
      std::copy_n(windows[b].targets.begin(), seq_len, targets.begin() + b * seq_len);
    }
    model.forward(inputs.data(), targets.data(), B, seq_len);
    routing.add(model);
    const auto& rows = model.row_losses();  // [B*T]
    for (int64_t i = 0; i < B * seq_len; ++i) {
      if (targets[i] < 0) continue;
      sum += rows[i], ++count;
      if (!piece_bytes.empty()) bytes += piece_bytes[targets[i]];
      const auto& window = windows[i / seq_len];
      for (size_t c = 0; c < by_label.size(); ++c) by_label[c].add(window.target_labels[c][i % seq_len], rows[i]);
    }
  }
  EvalResult r;
  r.source = stream.description;
  r.split = stream.split;
  r.window = seq_len;
  r.stride = stride > 0 ? stride : seq_len;
  r.tokens = count;
  r.loss = count ? sum / count : 0.0;
  r.perplexity = std::exp(r.loss);
  r.bytes = bytes;
  r.bits_per_byte = bytes ? sum / std::log(2.0) / static_cast<double>(bytes) : std::nan("");
  r.routing = routing.to_json(model.config().routing.top_k);
  for (const auto& tally : by_label) r.per_label.push_back(tally.result());
  return r;
}

nlohmann::json to_json(const EvalResult& r) {
  nlohmann::json j = {{"source", r.source}, {"loss", r.loss},     {"perplexity", r.perplexity},
                      {"tokens", r.tokens}, {"window", r.window}, {"stride", r.stride}};
  if (r.bytes > 0) j["bytes"] = r.bytes, j["bits_per_byte"] = r.bits_per_byte;
  if (!r.split.empty()) j["split"] = r.split;
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& channel : r.per_label) labels[channel.channel] = to_json(channel);
  j["per_label"] = labels;
  j["routing"] = r.routing;
  return j;
}

}  // namespace moelab
