// A small learnable corpus for training tests: tokens from a fixed random bigram chain with 3 successors per
// token (entropy ln 3), documents of 200 tokens ending in end-of-document (id 0), two alternating "genres".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/token_file.h"
#include "data/tokenizer.h"

namespace moelab::testing {

inline data::SplitTokens bigram_split(int64_t vocab, int64_t n_tokens, uint64_t seed) {
  Rng table_rng(99, 0), rng(seed, 1);
  std::vector<int32_t> next(vocab * 3);
  for (auto& t : next) t = static_cast<int32_t>(1 + table_rng.below(vocab - 1));  // 0 is end-of-document
  data::SplitTokens s;
  s.labels.resize(1);  // the "genre" channel
  uint32_t cur = 1;
  for (int64_t i = 0; i < n_tokens; ++i) {
    const bool end = (i + 1) % 200 == 0 || i + 1 == n_tokens;
    cur = end ? 0 : static_cast<uint32_t>(next[(cur == 0 ? 1 : cur) * 3 + rng.below(3)]);
    s.tokens.push_back(cur);
    s.labels[0].push_back(static_cast<uint8_t>((i / 200) % 2));
    s.documents += end;
  }
  return s;
}

// A real SentencePiece model of exactly `vocab` pieces, trained on random lowercase words, for a data folder whose
// checkpoints are evaluated (moelab eval reads the tokenizer for bits per byte). A few seconds for 8192 pieces.
inline std::string random_words_tokenizer(int64_t vocab) {
  Rng rng(5, 0);
  std::vector<std::string> sentences(4000);
  for (auto& sentence : sentences)
    for (int w = 0; w < 12; ++w) {
      for (uint64_t len = 3 + rng.below(6), c = 0; c < len; ++c) sentence += static_cast<char>('a' + rng.below(26));
      sentence += ' ';
    }
  return data::Tokenizer::train(sentences, vocab).model_bytes();
}

// Writes a data folder (train 12000, val and test 2000 tokens) that TokenData::open accepts. The tokenizer is a
// placeholder unless `tokenizer_bytes` gives one.
inline void write_bigram_data_folder(const std::string& dir, int64_t vocab,
                                     const std::string& tokenizer_bytes = "not a tokenizer: never used to tokenize") {
  const data::DataDescription desc{"synthetic", vocab, 0, {{"genre", data::LabelScope::document, {"even", "odd"}}}};
  data::write_data_folder(dir, desc,
                          {bigram_split(vocab, 12000, 1), bigram_split(vocab, 2000, 2), bigram_split(vocab, 2000, 3)},
                          tokenizer_bytes);
}

}  // namespace moelab::testing
