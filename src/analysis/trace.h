// Routing traces: what every MoE layer decided for every token of a stream (a data split or a text file), with the
// token's id, position, labels and loss; the raw material of the specialisation and dynamic-routing analyses and of
// `moelab analyze trace`, which writes it as .npy arrays plus a JSON index for numpy/pandas users
// (docs/traces.md describes the files).
//
// The stream is cut into windows of seq_len tokens, window w holding tokens [w*T, w*T+T) and predicting each
// token's successor, so every token is traced exactly once, at the position it has in its window. The last
// window is padded with the end-of-document id; the padding is run but not recorded. Under sequence granularity
// the padding takes part in the last window's routing, and under expert choice or a capacity limit the batch's
// other windows do: the trace records what the model decided for these batches.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/token_stream.h"
#include "model/model.h"

namespace moelab::analysis {

struct TraceOptions {
  int64_t seq_len;            // T: window length
  int64_t batch_size;         // windows per forward
  bool with_probs = false;    // record the full router probabilities
  int64_t sample_tokens = 0;  // record each MoE layer's input and probabilities for the first this many tokens
};

struct RoutingTrace {
  int64_t n_tokens = 0, n_experts = 0, max_slots = 0, d_model = 0;  // N, E, K, d
  std::vector<int64_t> layers;                                      // [L] model layer index of each MoE layer
  std::vector<int32_t> token_id;                                    // [N]
  std::vector<int32_t> position;                                    // [N] position inside its window (0..T-1)
  std::vector<data::LabelChannel> channels;                         // the source's label channels
  std::vector<std::vector<uint8_t>> labels;                         // [channels][N] class ids, 255 = none
  std::vector<float> loss;          // [N] cross-entropy of predicting token t+1 at position t; NaN: no next token
  std::vector<int16_t> experts;     // [L,N,K] selected experts in slot order, -1 padding
  std::vector<float> weights;       // [L,N,K] their combine weights, 0 padding
  std::vector<uint8_t> n_selected;  // [L,N] experts each token used
  // [L,N,E] router probabilities (with_probs; sequence granularity repeats the sequence's row; empty for hash
  // routers)
  std::vector<float> probs;
  int64_t sample_tokens = 0;        // S = min(options.sample_tokens, N): the first S tokens
  std::vector<float> sample_input;  // [L,S,d] each MoE layer's input (ffn_input) for the sample
  std::vector<float> sample_probs;  // [L,S,E] router probabilities of the sample (empty for hash routers)
};

// Runs the model over the source in windows of seq_len (batch_size windows per forward, last window padded with
// the end-of-document id and its padding not recorded). on_progress(done_tokens, total_tokens) after each batch
// (may be empty). K = the most slots any token used in any layer (at least 1). Throws moelab::Error for an empty
// source, a token id outside the model's vocabulary, a model without MoE layers, or non-positive seq_len/batch_size.
RoutingTrace collect_trace(Model& model, const data::TokenStream& source, const TraceOptions& options,
                           const std::function<void(int64_t, int64_t)>& on_progress);

// Writes <dir>/trace.json (index: format, every array's file name, dtype, shape and meaning; layers; the label
// channels; `about` merged in: checkpoint, source, config summary) and one .npy per array (experts.npy,
// weights.npy, n_selected.npy, token_id.npy, position.npy, loss.npy, label_<channel>.npy per label channel,
// probs.npy when present; not the sample arrays). The folder is created if missing; trace.json is removed first and
// written last, and array files of an earlier trace that this one lacks are removed, so a trace.json always describes
// the arrays beside it.
void write_trace(const std::string& dir, const RoutingTrace& trace, const nlohmann::json& about);

}  // namespace moelab::analysis
