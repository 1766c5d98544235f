#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "data/loader.h"
#include "data/token_stream.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

using data::TokenData;
using testing::TempDir;

constexpr int32_t kEod = 2;

// Train tokens are 3 + position (unique, so a window reveals where it starts), with a document boundary every
// 100 tokens; val has genre labels (document index) and uneven documents.
struct Folder {
  TempDir dir;
  std::array<data::SplitTokens, 3> splits;
  explicit Folder(int64_t train_tokens, int64_t vocab = 65535) {
    auto& train = splits[0];
    for (int64_t p = 0; p < train_tokens; ++p) {
      const bool last = p + 1 == train_tokens || p % 100 == 99;
      train.tokens.push_back(last ? kEod : static_cast<uint32_t>(3 + p));
      train.documents += last;
    }
    for (auto& sp : splits) sp.labels.resize(1);
    for (int s = 1; s < 3; ++s) {
      for (int d = 0; d < 4; ++d) {
        for (int i = 0; i < 5 + 11 * d + s; ++i) {
          splits[s].tokens.push_back(static_cast<uint32_t>(10 + 3 * i + d));
          splits[s].labels[0].push_back(static_cast<uint8_t>(d));
        }
        splits[s].tokens.push_back(kEod);
        splits[s].labels[0].push_back(static_cast<uint8_t>(d));
      }
      splits[s].documents = 4;
    }
    splits[0].labels[0].assign(splits[0].tokens.size(), 0);
    data::DataDescription desc;
    desc.corpus = "synthetic";
    desc.vocab_size = vocab;
    desc.eod_id = kEod;
    desc.labels = {{"genre", data::LabelScope::document, {"g0", "g1", "g2", "g3"}}};
    data::write_data_folder(dir.path().string(), desc, splits, "MODEL");
  }
  TokenData open() const { return TokenData::open(dir.path().string()); }
};

std::vector<int32_t> batch(const TokenData& d, uint64_t seed, int64_t step, int64_t micro, int64_t B, int64_t T) {
  std::vector<int32_t> out(B * (T + 1), -7);
  data::sample_train_batch(d, seed, step, micro, B, T, out.data());
  return out;
}

TEST(Loader, TrainBatchesArePureFunctionsOfSeedStepMicro) {
  const Folder f(5000);
  const TokenData d = f.open();
  const int64_t B = 4, T = 33;
  const auto a = batch(d, 7, 12, 1, B, T);
  EXPECT_EQ(a, batch(d, 7, 12, 1, B, T));
  batch(d, 7, 3, 0, B, T);  // drawing other batches in between changes nothing
  EXPECT_EQ(a, batch(d, 7, 12, 1, B, T));
  EXPECT_NE(a, batch(d, 7, 13, 1, B, T));
  EXPECT_NE(a, batch(d, 7, 12, 0, B, T));
  EXPECT_NE(a, batch(d, 8, 12, 1, B, T));
  // The documented stream: window b starts at Rng(seed, step * 1'000'003 + micro).below(n - T), b-th draw.
  Rng rng(7, 12 * 1'000'003ull + 1);
  const int64_t n = d.split_tokens("train");
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = static_cast<int64_t>(rng.below(n - T));
    for (int64_t t = 0; t <= T; ++t)
      EXPECT_EQ(a[b * (T + 1) + t], static_cast<int32_t>(f.splits[0].tokens[start + t])) << b << "," << t;
  }
}

TEST(Loader, TrainWindowsAreContiguousAndInBounds) {
  const Folder f(1000);
  const TokenData d = f.open();
  const int64_t n = d.split_tokens("train");
  for (int64_t T : {1, 7, 64, 999}) {
    int64_t lowest = n, highest = -1;
    for (int64_t step = 0; step < 200; ++step) {
      const auto w = batch(d, 1, step, 0, 3, T);
      for (int64_t b = 0; b < 3; ++b) {
        // Find where the window starts from its first non-eod token (ids are 3 + position).
        int64_t start = -1;
        for (int64_t t = 0; t <= T && start < 0; ++t) {
          if (w[b * (T + 1) + t] != kEod) start = w[b * (T + 1) + t] - 3 - t;
        }
        ASSERT_GE(start, 0);
        ASSERT_LE(start + T + 1, n) << "window past the end, T=" << T;
        for (int64_t t = 0; t <= T; ++t)
          ASSERT_EQ(w[b * (T + 1) + t], static_cast<int32_t>(f.splits[0].tokens[start + t]));
        lowest = std::min(lowest, start), highest = std::max(highest, start);
      }
    }
    const int64_t range = n - T;  // number of valid starts
    EXPECT_LE(lowest, range / 20) << "starts should reach the beginning, T=" << T;
    EXPECT_GE(highest, range - 1 - range / 20) << "starts should reach the end, T=" << T;
  }
  std::vector<int32_t> out(2 * 1001);
  EXPECT_THROW(data::sample_train_batch(d, 1, 0, 0, 2, 1000, out.data()), Error);  // needs 1001 tokens
}

TEST(Loader, EvalWindowsCoverEveryTargetOnce) {
  const Folder f(500);
  const TokenData d = f.open();
  for (const std::string split : {"val", "test", "train"}) {
    const int split_index = split == "train" ? 0 : split == "val" ? 1 : 2;
    const auto& tokens = f.splits[split_index].tokens;
    const auto& genre = f.splits[split_index].labels[0];
    const int64_t n = static_cast<int64_t>(tokens.size());
    const data::TokenStream stream = data::token_stream_from_split(d, split, 0);
    for (int64_t T : {int64_t{1}, int64_t{2}, int64_t{13}, int64_t{64}, n - 1, n, n + 5}) {
      SCOPED_TRACE(split + " T=" + std::to_string(T));
      const int64_t count = data::count_eval_windows(n, T, 0);
      EXPECT_EQ(count, (n - 1 + T - 1) / T);
      std::vector<int32_t> seen_targets;
      std::vector<uint8_t> seen_genres;
      data::EvalWindow w;
      for (int64_t i = 0; i < count; ++i) {
        data::eval_window(stream, T, i, w);
        ASSERT_EQ(w.tokens.size(), size_t(T + 1));
        ASSERT_EQ(w.targets.size(), size_t(T));
        ASSERT_EQ(w.target_labels.size(), 1u);
        ASSERT_EQ(w.target_labels[0].size(), size_t(T));
        for (int64_t t = 0; t <= T; ++t) {
          const int64_t p = i * T + t;
          EXPECT_EQ(w.tokens[t], p < n ? static_cast<int32_t>(tokens[p]) : kEod) << "input " << t;
        }
        for (int64_t t = 0; t < T; ++t) {
          if (w.targets[t] < 0) {
            EXPECT_GE(i * T + t + 1, n) << "only padding past the end is ignored";
            EXPECT_EQ(w.target_labels[0][t], data::kNoLabel);
            continue;
          }
          EXPECT_EQ(w.targets[t], w.tokens[t + 1]);
          seen_targets.push_back(w.targets[t]);
          seen_genres.push_back(w.target_labels[0][t]);
        }
      }
      // Concatenated, the targets are exactly tokens 1..n-1 in order, with their genres.
      ASSERT_EQ(seen_targets.size(), size_t(n - 1));
      for (int64_t p = 1; p < n; ++p) {
        EXPECT_EQ(seen_targets[p - 1], static_cast<int32_t>(tokens[p]));
        EXPECT_EQ(seen_genres[p - 1], genre[p]);
      }
    }
  }
}

// Windows every S tokens: window k reads tokens from k*S, and the targets it scores are those no earlier window
// scored, at least T - S tokens into it after the first; together, tokens 1..n-1 once each, in order.
TEST(Loader, SlidingEvalWindowsScoreEveryTargetOnce) {
  data::TokenStream stream;
  stream.eod_id = kEod;
  stream.labels.resize(1);
  for (int32_t i = 0; i < 23; ++i) stream.tokens.push_back(100 + i), stream.labels[0].push_back(i % 3);
  const int64_t n = 23;
  for (const int64_t T : {int64_t{1}, int64_t{4}, int64_t{7}, int64_t{22}, int64_t{30}})
    for (int64_t S = 1; S <= T; ++S) {
      SCOPED_TRACE("T=" + std::to_string(T) + " S=" + std::to_string(S));
      const int64_t count = data::count_eval_windows(n, T, 0, S);
      std::vector<int32_t> seen;
      std::vector<uint8_t> seen_labels;
      data::EvalWindow w;
      for (int64_t k = 0; k < count; ++k) {
        data::eval_window(stream, T, k, w, S);
        for (int64_t t = 0; t <= T; ++t) EXPECT_EQ(w.tokens[t], k * S + t < n ? 100 + k * S + t : kEod);
        for (int64_t t = 0; t < T; ++t) {
          if (w.targets[t] < 0) continue;
          EXPECT_TRUE(k == 0 || t >= T - S) << "window " << k << " scores target " << t;
          EXPECT_EQ(w.targets[t], w.tokens[t + 1]);
          seen.push_back(w.targets[t]), seen_labels.push_back(w.target_labels[0][t]);
        }
      }
      ASSERT_EQ(seen.size(), size_t(n - 1));
      for (int64_t p = 1; p < n; ++p) {
        EXPECT_EQ(seen[p - 1], 100 + p);
        EXPECT_EQ(seen_labels[p - 1], p % 3);
      }
      if (S == T) {
        EXPECT_EQ(count, data::count_eval_windows(n, T, 0)) << "stride T: the disjoint windows";
      }
      EXPECT_TRUE((count - 1) * S + T >= n - 1) << "the last window reaches the last token";
      EXPECT_TRUE(count == 1 || (count - 2) * S + T < n - 1) << "and the one before it does not";
    }
}

TEST(Loader, EvalWindowCountHonoursMaxTokens) {
  EXPECT_EQ(data::count_eval_windows(500, 7, 100), 15);  // ceil(99 / 7)
  EXPECT_EQ(data::count_eval_windows(500, 7, 100000), data::count_eval_windows(500, 7, 0));
  EXPECT_EQ(data::count_eval_windows(500, 7, 0), 72);  // ceil(499 / 7)
  EXPECT_EQ(data::count_eval_windows(500, 7, 1), 0);
  EXPECT_EQ(data::count_eval_windows(1, 7, 0), 0);
}

TEST(Loader, UnlabelledSplitHasNoTargetLabels) {
  TempDir dir;
  std::array<data::SplitTokens, 3> splits;
  for (auto& s : splits) s.tokens = {5, 6, 7, kEod}, s.documents = 1;
  splits[2].tokens = {kEod};  // a single empty document: nothing to predict
  data::DataDescription desc;
  desc.corpus = "text";
  desc.vocab_size = 300;
  desc.eod_id = kEod;
  data::write_data_folder(dir.path().string(), desc, splits, "MODEL");
  const TokenData d = TokenData::open(dir.path().string());
  EXPECT_EQ(data::count_eval_windows(d.split_tokens("test"), 4, 0), 0);
  ASSERT_EQ(data::count_eval_windows(d.split_tokens("val"), 2, 0), 2);
  data::EvalWindow w;
  data::eval_window(data::token_stream_from_split(d, "val", 0), 2, 1, w);
  EXPECT_EQ(w.tokens, (std::vector<int32_t>{7, kEod, kEod}));
  EXPECT_EQ(w.targets, (std::vector<int32_t>{kEod, -1}));
  EXPECT_TRUE(w.target_labels.empty());
}

}  // namespace
}  // namespace moelab
