// A Hugging Face model's weights read into a moelab Model whose Config read_hf_config made.
//
// moelab's tensor names are Mixtral's, so most tensors are found under the model's own names; the MoE layers of the
// original DeepSeekMoE, OLMoE and Qwen-MoE use their own (mlp.gate, mlp.experts.{j}.{gate,up,down}_proj,
// mlp.shared_experts.* in DeepSeekMoE, mlp.shared_expert.* and mlp.shared_expert_gate in Qwen2-MoE).
// The layouts a checkpoint may use for the same weights instead are converted exactly:
//   - transformers v5 may write the experts fused, without ".weight": mlp.experts.gate_up_proj [E, 2I, H] (the
//     gate projections of all experts, then their up projections, along dim 1) and mlp.experts.down_proj [E, H, I],
//     with the router as mlp.gate.weight;
//   - weights in F32, F16, BF16, F8_E4M3 or F8_E5M2 are decoded to f32.
// Every tensor of the model must be found with its shape, and every tensor of the folder must be used: a missing,
// misshapen or left-over tensor is an error naming it and its file.
#pragma once

#include <string>

#include "io/safetensors_folder.h"
#include "model/model.h"

namespace moelab::hf {

void load_hf_weights(const SafetensorsFolder& folder, const std::string& model_type, Model& model);

}  // namespace moelab::hf
