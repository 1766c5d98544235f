// Fuzzes the Hugging Face config.json mapping: either the file maps onto a validated moelab Config, or it is
// refused with moelab::Error. Seeds: Mixtral-8x7B's config and a tiny Mixtral in transformers v5's style.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "fuzz_input_file.h"
#include "hf/hf_config.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string seeds = moelab::fuzz::seeds_dir();
  if (seeds.empty()) return 0;
  const std::string mixtral = R"({"architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0,
    "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mixtral", "num_attention_heads": 32,
    "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 8,
    "output_router_logits": false, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.02,
    "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true,
    "vocab_size": 32000})";
  const std::string tiny = R"({"model_type": "mixtral", "vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 24, "num_local_experts": 4,
    "head_dim": 4, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}})";
  moelab::fuzz::write_bytes(seeds + "/mixtral.json", mixtral.data(), mixtral.size());
  moelab::fuzz::write_bytes(seeds + "/tiny.json", tiny.data(), tiny.size());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    moelab::hf::read_hf_config(moelab::fuzz::input_file("config.json", data, size));
  } catch (const moelab::Error&) {
  }
  return 0;
}
