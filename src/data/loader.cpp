#include "data/loader.h"

#include <algorithm>

#include "core/error.h"
#include "core/rng.h"

namespace moelab::data {

void sample_train_batch(const TokenData& data, uint64_t seed, int64_t step, int64_t micro, int64_t B, int64_t T,
                        int32_t* tokens /*[B, T+1]*/) {
  MOELAB_ASSERT(B > 0 && T > 0 && step >= 0 && micro >= 0, "batch shape must be positive, step and micro non-negative");
  const int64_t n = data.split_tokens("train");
  if (n < T + 1)
    throw_error("data folder ", data.dir(), ": the train split has ", n, " tokens, fewer than one window of ", T + 1,
                " (seq_len + 1)");
  Rng rng(seed, static_cast<uint64_t>(step) * kBatchStreamStride + static_cast<uint64_t>(micro));
  const uint64_t starts = static_cast<uint64_t>(n - T);  // window starts 0 .. n-T-1 all fit
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = static_cast<int64_t>(rng.below(starts));
    data.copy_tokens("train", start, T + 1, tokens + b * (T + 1));
  }
}

int64_t count_eval_windows(int64_t n, int64_t T, int64_t max_tokens, int64_t stride) {
  MOELAB_ASSERT(T > 0 && max_tokens >= 0 && n >= 0 && stride >= 0 && stride <= T, "window length must be positive");
  const int64_t S = stride > 0 ? stride : T;
  if (max_tokens > 0) n = std::min(n, max_tokens);
  if (n < 2) return 0;  // no token has a predecessor to predict it from
  // Window k's targets are tokens k*S+1 .. k*S+T: the last window is the first to reach token n-1.
  return n - 1 <= T ? 1 : (n - 1 - T + S - 1) / S + 1;
}

void eval_window(const TokenStream& stream, int64_t T, int64_t index, EvalWindow& out, int64_t stride) {
  const int64_t n = static_cast<int64_t>(stream.tokens.size());
  MOELAB_ASSERT(index >= 0 && index < count_eval_windows(n, T, 0, stride), "evaluation window out of range");
  const int64_t S = stride > 0 ? stride : T;
  const int64_t start = index * S;
  const int64_t have = std::min(T + 1, n - start);  // tokens of the stream in this window (>= 2)
  // The window before scored targets up to token (index-1)*S + T: this one starts after them.
  const int64_t first = index == 0 ? 0 : T - S;  // first scored target of the window
  out.tokens.assign(T + 1, stream.eod_id);
  out.targets.assign(T, -1);
  std::copy_n(stream.tokens.begin() + start, have, out.tokens.begin());
  if (have - 1 > first)
    std::copy(out.tokens.begin() + 1 + first, out.tokens.begin() + have, out.targets.begin() + first);
  out.target_labels.resize(stream.labels.size());
  for (size_t c = 0; c < stream.labels.size(); ++c) {
    out.target_labels[c].assign(T, kNoLabel);
    if (have - 1 > first)
      std::copy(stream.labels[c].begin() + start + 1 + first, stream.labels[c].begin() + start + have,
                out.target_labels[c].begin() + first);
  }
}

}  // namespace moelab::data
