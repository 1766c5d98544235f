#include "eval/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace moelab {

int32_t sample_token(const float* logits, int64_t V, const SamplingOptions& opt, Rng& rng) {
  if (opt.temperature <= 0) return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
  std::vector<int32_t> ids(V);
  std::iota(ids.begin(), ids.end(), 0);
  int64_t k = opt.top_k > 0 ? std::min(opt.top_k, V) : V;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  const double top = logits[ids[0]];
  std::vector<double> weights(k);
  double total = 0;
  for (int64_t i = 0; i < k; ++i) total += weights[i] = std::exp((logits[ids[i]] - top) / opt.temperature);
  double r = rng.uniform() * total;
  for (int64_t i = 0; i < k; ++i) {
    r -= weights[i];
    if (r < 0) return ids[i];
  }
  return ids[k - 1];
}

std::vector<int32_t> generate(Model& model, const std::vector<int32_t>& prompt, const SamplingOptions& opt) {
  if (prompt.empty()) throw_error("generate: the prompt encodes to no tokens");
  const Model::InferenceMode inference(model);
  const int64_t V = model.config().model.vocab_size, max_ctx = model.config().model.max_seq_len;
  const int64_t drawn = opt.vocab_limit > 0 ? std::min(opt.vocab_limit, V) : V;  // ids [0, drawn) can come out
  std::vector<int32_t> context = prompt, produced;
  Rng rng(opt.seed, /*stream=*/0x6E6572617465ull);
  for (int64_t i = 0; i < opt.max_new_tokens; ++i) {
    const int64_t start = std::max<int64_t>(0, static_cast<int64_t>(context.size()) - max_ctx);
    const int64_t T = static_cast<int64_t>(context.size()) - start;
    model.forward(context.data() + start, nullptr, 1, T);
    const int32_t next = sample_token(model.logits() + (T - 1) * V, drawn, opt, rng);
    produced.push_back(next);
    context.push_back(next);
    if (next == opt.stop_token) break;
  }
  return produced;
}

}  // namespace moelab
