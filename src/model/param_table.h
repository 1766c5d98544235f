// The parameter table: the one list of every trainable tensor of a model (name, shape, initialisation, optimizer
// group). Allocation, initialisation, the optimizer, checkpoints and the PyTorch oracle test all derive from it.
// Names are the checkpoint keys and follow the Hugging Face Mixtral layout (docs/checkpoints.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moelab/config.h"

namespace moelab {

enum class ParamInit { Normal, Ones, Zeros };  // N(0, init_std^2), all ones (norm gains), all zeros (biases)

// Which weight-decay switch of the train config applies to a tensor.
enum class ParamGroup { Embedding, LmHead, Attention, Norm, Router, Expert, SharedExpert, DenseFfn };

struct ParamSpec {
  std::string name;            // checkpoint key, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // [out, in] for matrices, PyTorch layout
  ParamInit init;
  ParamGroup group;
  int64_t offset = 0;  // first element in the flat parameter buffer
  int64_t numel = 0;
  // False for weights that are never trained (frozen or per-step resampled routers): no gradient is computed for
  // them and the optimizer keeps no state for them.
  bool trainable = true;
};

// Whether layer i has an MoE FFN (else a dense SwiGLU): layers from first_dense_layers on, every moe_every-th,
// except those listed in dense_layers.
bool is_moe_layer(const MoeConfig& moe, int64_t layer);
// The width of one attention head: model.head_dim, or d_model / n_heads when it is 0.
int64_t attention_head_dim(const ModelConfig& model);
// Key/value heads: model.n_kv_heads, or n_heads when it is 0.
int64_t attention_kv_heads(const ModelConfig& model);
// Hidden size of a MoE layer's shared-expert SwiGLU (all shared experts fused into one); 0 when it has none.
int64_t shared_experts_hidden(const MoeConfig& moe);
// Whether router weights are trained by gradient (learned) or set otherwise (frozen at init, resampled per step).
bool router_is_trained(const RoutingConfig& routing);
// Hidden size of a dense FFN layer (dense_hidden, or expert_hidden * top_k so it matches the active MoE width).
int64_t dense_ffn_hidden(const Config& cfg);

class ParamTable {
 public:
  explicit ParamTable(const Config& cfg);

  const std::vector<ParamSpec>& specs() const { return specs_; }
  int64_t total_numel() const { return total_; }
  // Index of a tensor by name; throws moelab::Error naming the missing key.
  const ParamSpec& find(const std::string& name) const;

 private:
  void add(std::string name, std::vector<int64_t> shape, ParamInit init, ParamGroup group, bool trainable = true);

  std::vector<ParamSpec> specs_;
  int64_t total_ = 0;
};

// Whether a tensor of this group is weight-decayed under the train config.
bool decays(const TrainConfig& train, ParamGroup group);

}  // namespace moelab
