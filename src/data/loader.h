// Batches for training and evaluation, read from an opened data folder (TokenData, token_file.h).
//
// Training batches are a pure function of (seed, step, micro): B windows of T+1 consecutive train tokens, each
// start uniform over every position where a whole window fits, drawn from Rng(seed, step * 1'000'003 + micro). A
// resumed run therefore sees exactly the batches it would have seen. Windows may span document boundaries (the
// end-of-document token separates them).
//
// Evaluation cuts a token stream (a split, a text file: token_stream.h) into consecutive windows of T+1 tokens,
// window w starting at token w*T, so every token but the first is a target exactly once. The last window is padded
// past the stream's end: inputs with the end-of-document id, targets with -1 (ignored).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/token_file.h"
#include "data/token_stream.h"

namespace moelab::data {

// Stream multiplier for training batches: micro-batch indices below it never collide across steps.
inline constexpr uint64_t kBatchStreamStride = 1'000'003;

// Fills tokens with B windows of T+1 train tokens. Throws moelab::Error when the train split is shorter than T+1.
void sample_train_batch(const TokenData& data, uint64_t seed, int64_t step, int64_t micro, int64_t B, int64_t T,
                        int32_t* tokens /*[B, T+1]*/);

struct EvalWindow {
  std::vector<int32_t> tokens;                      // [T+1]
  std::vector<int32_t> targets;                     // [T] tokens[1..T], -1 = ignore (past the stream's end)
  std::vector<std::vector<uint8_t>> target_labels;  // [channels][T] each target's class, 255 = none
};

// Number of evaluation windows of a stream of n tokens, windows of T targets starting every `stride` tokens
// (0 or T: disjoint windows; less than T: a sliding context, each target scored once, in the first window that has
// it, with at least T - stride tokens before it but at the stream's start). max_tokens > 0 keeps only the windows
// needed to cover its first max_tokens tokens (whole windows: up to T-1 targets beyond that are evaluated too); 0
// keeps all.
int64_t count_eval_windows(int64_t n, int64_t T, int64_t max_tokens, int64_t stride = 0);
// Window `index` (< count_eval_windows(stream.tokens.size(), T, 0, stride)) of the stream: tokens from index *
// stride; its targets already scored by the window before are -1.
void eval_window(const TokenStream& stream, int64_t T, int64_t index, EvalWindow& out, int64_t stride = 0);

}  // namespace moelab::data
