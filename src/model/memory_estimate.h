// How much memory a configuration needs, estimated from its sizes alone (no allocation), and the check that refuses
// a configuration which cannot fit in this machine before anything is allocated: a mistyped size (moe.n_experts =
// 1e11, train.seq_len = 1e9) then ends in a message naming the sizes, not in std::bad_alloc or the OOM killer.
//
// The estimate is rough on purpose: every parameter with the bytes the use keeps per parameter, the parameter
// table's bookkeeping per tensor, and the activations of one forward (and backward) of batch_size x seq_len tokens,
// counted from the buffers src/model/model.cpp sizes. On the default shape it comes within a few percent of the
// peak resident memory `moelab bench` measures. Everything is computed in double, so absurd sizes do not overflow.
#pragma once

#include <cstdint>
#include <string>

#include "moelab/config.h"

namespace moelab {

enum class MemoryUse {
  Count,           // the parameter table alone (`moelab params`)
  Model,           // what the Model constructor allocates: weights, gradients (and a bf16 model's rounded weights)
  InferenceModel,  // what it allocates for ModelUse::Inference: the weights (and a bf16 model's rounded weights)
  Inference,       // an inference model and one forward of batch_size x seq_len tokens (evaluation, traces,
                   // analyses), its weights read as they are (inference_packing_fits says whether packed copies fit)
  Training,        // a model, the AdamW moments and one training step's activations
};

struct MemoryEstimate {
  double params = 0;              // parameters of the model
  double tensors = 0;             // entries of its parameter table
  double bytes_per_param = 0;     // what the use keeps per parameter
  double table_bytes = 0;         // the parameter table's names and shapes
  double activation_bytes = 0;    // one pass over batch_size x seq_len tokens; 0 for Count and Model
  std::string per_param_meaning;  // "weights, gradients, two AdamW moments"

  double total_bytes() const { return params * bytes_per_param + table_bytes + activation_bytes; }
};

// cfg: checked by validate() up to its size rules (this is what they use); model.vocab_size 0 counts the
// embedding, LM head and logits as empty.
MemoryEstimate estimate_memory(const Config& cfg, MemoryUse use);

// MemTotal from /proc/meminfo, in bytes; 0 when it cannot be read (then nothing is refused).
int64_t machine_memory_bytes();

// Whether an f32 inference model's packed copy of its weights (Model::set_pack_weights_for_inference) fits in this
// machine's memory beside what MemoryUse::Inference counts: faster forwards when it does.
bool inference_packing_fits(const Config& cfg);

// Throws moelab::Error naming cfg.source, what the config needs and what the machine has, when the estimate for
// `use` exceeds the machine's memory.
void check_memory_fits(const Config& cfg, MemoryUse use);

// "12.3 GB", "3.5e+09 GB": bytes in decimal gigabytes, for messages.
std::string format_gigabytes(double bytes);

}  // namespace moelab
