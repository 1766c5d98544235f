// A Hugging Face model's config.json mapped onto moelab's own Config: the moelab model that computes exactly what
// the Hugging Face model does, with its routing as a configuration of moelab's router (no per-architecture code in
// the MoE layer).
//
// Every field of the file is accounted for: mapped onto a setting, checked to hold the one value moelab computes
// (hidden_act "silu", no RoPE scaling, ...), or known to have no effect on the forward pass (token ids, dtype,
// training-only switches, transformers' bookkeeping), which is listed in `unused`. A field that is none of these,
// or an architecture moelab does not implement, is refused with a message naming it: nothing is silently ignored.
// Supported architectures: mixtral, deepseek (the original DeepSeekMoE), olmoe, qwen2_moe, qwen3_moe; docs/import.md.
#pragma once

#include <string>
#include <vector>

#include "moelab/config.h"

namespace moelab::hf {

struct HfConfig {
  std::string model_type;           // "mixtral", "deepseek", "olmoe", ...
  Config config;                    // validated; train.* at their defaults
  std::vector<std::string> unused;  // fields present that do not change the forward pass, sorted
};

// The architectures read_hf_config maps.
const std::vector<std::string>& supported_model_types();

// Reads and maps `path` (a config.json); throws moelab::Error naming the file and the field.
HfConfig read_hf_config(const std::string& path);

// Whether `dir` holds a Hugging Face model: a config.json with a "model_type" (a moelab checkpoint's config.json
// has none).
bool is_hf_model_dir(const std::string& dir);

}  // namespace moelab::hf
