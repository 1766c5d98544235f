#include "eval/perplexity.h"

#include <cmath>

#include "core/error.h"
#include "eval/routing_tally.h"

namespace moelab {

void check_scorable(const data::TokenData& data, const std::string& split, int64_t max_tokens) {
  const int64_t n = data.split_tokens(split);
  if (max_tokens == 1 && n >= 2)
    throw_error("evaluating the ", split, " split of ", data.dir(), ": a limit of ", max_tokens,
                " token scores none; a target needs the token before it, so the limit must be at least 2");
  if (n < 2)
    throw_error("the ", split, " split of ", data.dir(), " has ", n, n == 1 ? " token" : " tokens",
                ": too few to evaluate (a target needs the token before it, so at least 2)");
}

EvalResult evaluate_perplexity(Model& model, const data::TokenData& data, const std::string& split, int64_t seq_len,
                               int64_t batch_size, int64_t max_tokens) {
  const Model::InferenceMode inference(model);
  check_scorable(data, split, max_tokens);
  const int64_t n_windows = data::count_eval_windows(data, split, seq_len, max_tokens);
  const auto& genres = data.genre_names();
  std::vector<double> genre_sum(genres.size(), 0.0);
  std::vector<int64_t> genre_count(genres.size(), 0);
  double sum = 0;
  int64_t count = 0;

  std::vector<int32_t> inputs, targets;  // [B,T]
  std::vector<uint8_t> target_genre;     // [B,T]
  data::EvalWindow window;
  RoutingTally routing;
  for (int64_t first = 0; first < n_windows; first += batch_size) {
    const int64_t B = std::min(batch_size, n_windows - first);
    inputs.resize(B * seq_len), targets.resize(B * seq_len), target_genre.resize(B * seq_len);
    for (int64_t b = 0; b < B; ++b) {
      data::eval_window(data, split, seq_len, first + b, window);
      std::copy_n(window.tokens.begin(), seq_len, inputs.begin() + b * seq_len);
      std::copy_n(window.targets.begin(), seq_len, targets.begin() + b * seq_len);
      std::copy_n(window.target_genre.begin(), seq_len, target_genre.begin() + b * seq_len);
    }
    model.forward(inputs.data(), targets.data(), B, seq_len);
    routing.add(model);
    const auto& rows = model.row_losses();
    for (int64_t i = 0; i < B * seq_len; ++i) {
      if (targets[i] < 0) continue;
      sum += rows[i], ++count;
      const uint8_t g = target_genre[i];
      if (g < genres.size()) genre_sum[g] += rows[i], ++genre_count[g];
    }
  }
  EvalResult r;
  r.split = split;
  r.tokens = count;
  r.loss = count ? sum / count : 0.0;
  r.perplexity = std::exp(r.loss);
  r.routing = routing.to_json(model.config().routing.top_k);
  for (size_t g = 0; g < genres.size(); ++g) {
    if (genre_count[g] == 0) continue;
    const double loss = genre_sum[g] / genre_count[g];
    r.per_genre.push_back({genres[g], loss, std::exp(loss), genre_count[g]});
  }
  return r;
}

nlohmann::json to_json(const EvalResult& r) {
  nlohmann::json j = {{"split", r.split}, {"loss", r.loss}, {"perplexity", r.perplexity}, {"tokens", r.tokens}};
  nlohmann::json genres = nlohmann::json::object();
  for (const auto& g : r.per_genre)
    genres[g.genre] = {{"loss", g.loss}, {"perplexity", g.perplexity}, {"tokens", g.tokens}};
  j["per_genre"] = genres;
  j["routing"] = r.routing;
  return j;
}

}  // namespace moelab
