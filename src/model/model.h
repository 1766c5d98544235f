// The MoE language model: token embedding; L blocks of pre-RMSNorm causal attention (RoPE) and a feed-forward
// sublayer (MoE or dense SwiGLU); final RMSNorm; LM head (untied by default). Hand-written forward and backward.
//
// Parameters and their gradients live in two flat f32 buffers laid out by the ParamTable, so the optimizer,
// clipping and checkpoints treat the model as one vector. Activations are kept per layer in named buffers,
// sized on first use for a (B, T) and reused across steps.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/compute_context.h"
#include "model/attention_block.h"
#include "model/grad_square_tally.h"
#include "model/moe_ffn.h"
#include "model/param_table.h"
#include "moelab/config.h"

namespace moelab {

struct Losses {
  double ce = 0;            // mean cross-entropy over the valid targets of the batch
  double load_balance = 0;  // mean over MoE layers, before its coefficient
  double z_loss = 0;        // mean over MoE layers, before its coefficient
  double entropy = 0;       // mean routing entropy over MoE layers (paper 2's dynamic loss), before its coefficient
  double total = 0;         // ce + coefficients x aux losses: what backward differentiates
  int64_t n_targets = 0;    // targets that counted (target >= 0)
};

// What a model is built for: training (weights and their gradients) or only forwards (evaluation, generation,
// traces, analyses: the weights alone, half the memory of an f32 model).
enum class ModelUse { Training, Inference };

class Model {
 public:
  // cfg must be validated and have model.vocab_size resolved (> 0). A model built for inference has no gradients:
  // backward, grads(), zero_grads() and optimizer_access() are not for it; it packs its weights for inference only
  // where the packed copy fits in memory.
  explicit Model(const Config& cfg, ModelUse use = ModelUse::Training);
  ~Model();

  // While one is alive, the model only runs forwards (an evaluation, a generation, a benchmark, an analysis): no
  // backward follows them and the weights do not change. Forward then keeps nothing for backward (attention's
  // probabilities, the experts' SwiGLU intermediates), and an f32 model reads its weights from copies packed for
  // oneDNN (packed_weights.h; see set_pack_weights_for_inference), made at first use and dropped when the
  // outermost scope ends. Scopes nest; backward and the calls below that change the weights refuse to run inside
  // one.
  class InferenceMode {
   public:
    explicit InferenceMode(Model& model);
    ~InferenceMode();
    InferenceMode(const InferenceMode&) = delete;
    InferenceMode& operator=(const InferenceMode&) = delete;

   private:
    Model& model_;
  };

  const Config& config() const { return cfg_; }
  const ParamTable& table() const { return table_; }
  const std::vector<float>& params() const { return params_; }
  // The weights, to change (a checkpoint, a test): the call marks the model's bf16 and packed copies of them stale.
  // A write through the reference made after the next forward is not seen by a bf16 model: call again.
  std::vector<float>& mutable_params();
  std::vector<float>& grads();
  const std::vector<float>& grads() const { return grads_; }
  // ||grads()||_2, for clipping: reads only the gradients whose squares the last backwards did not sum as they
  // wrote them (GradSquareTally).
  double grad_norm() const;
  const GradSquareTally& grad_squares() const { return grad_squares_; }
  const float* param(const std::string& name) const { return params_.data() + table_.find(name).offset; }
  // Whether an f32 model packs its weights inside InferenceMode (on by default): faster forwards for one more f32
  // copy of the weights while the scope lives.
  void set_pack_weights_for_inference(bool on) { pack_for_inference_ = on; }
  // Weight matrices an f32 model holds packed for oneDNN: those its forwards inside InferenceMode have read so
  // far; 0 outside it and in bf16.
  int64_t packed_weight_matrices() const { return compute_caches_.packed_matrices(); }

  // For an optimizer that updates every trainable weight in one pass (optimizer_step): the weights, their
  // gradients and, in bf16 mode, the weights' rounded copy (null in f32). The caller must write to_bf16 of each
  // weight it changes into that copy and leave every gradient at 0; the next forward then rounds nothing and the
  // next zero_grads() clears nothing, which saves two passes over all parameters.
  struct OptimizerAccess {
    float* params;          // [table().total_numel()]
    float* grads;           // [table().total_numel()]
    uint16_t* params_bf16;  // [table().total_numel()] or null
  };
  OptimizerAccess optimizer_access();

  // Draws every parameter from its ParamInit: a pure function of (seed, tensor name).
  void init_params(uint64_t seed);
  void zero_grads();  // nothing to do when nothing was added since the last zeroing
  // routing.router = resampled: redraws every router from its initial distribution, a pure function of (seed,
  // step) (paper 1's random-router baseline). Does nothing for other router kinds.
  void resample_routers(uint64_t seed, int64_t step);
  // routing.bias_update_rate > 0 (loss-free balancing): after an optimizer step, moves each MoE layer's selection
  // bias by the rate against its experts' load error in the last forward pass. Does nothing otherwise.
  void update_selection_bias();

  // Runs inputs [B,T] through the model; with targets [B,T] (-1 = ignore) computes the losses. Saves what
  // backward needs. logits() and row_losses() are valid until the next forward or backward.
  Losses forward(const int32_t* inputs, const int32_t* targets, int64_t B, int64_t T);
  // Accumulates d(scale * losses.total)/d(params) into grads(). Requires a forward with targets just before,
  // outside InferenceMode.
  void backward(double scale);

  const float* logits() const;                   // [B*T, V]
  const std::vector<float>& row_losses() const;  // [B*T] cross-entropy per position (0 where ignored)
  // What the routing of one MoE layer decided in the last forward, for statistics, traces and analyses: the plan
  // over the router's rows (tokens; sequences under sequence granularity, whose tokens share their sequence's
  // slots), the same decision per token, the router probabilities of the router's rows (null for a hash router),
  // the slots the capacity limit dropped, and the normalised rows the layer's router and experts read.
  struct LayerRouting {
    int64_t layer;
    const routing::DispatchPlan<float>* plan;        // over router rows
    const routing::DispatchPlan<float>* token_plan;  // over the B*T tokens (the same plan unless sequence)
    const float* probs;                              // [rows, E] or null
    int64_t dropped;
    const float* ffn_input;  // [B*T, d]
  };
  std::vector<LayerRouting> layer_routing() const;

 private:
  struct Layer;
  struct Workspace;

  Config cfg_;
  ModelUse use_;
  ParamTable table_;
  std::vector<float> params_;  // [table_.total_numel()]
  std::vector<float> grads_;   // [table_.total_numel()], empty for ModelUse::Inference
  // The copies of params_ the GEMMs read: rounded to bf16 (train.precision = bf16; made again by a pass only after
  // the weights changed outside optimizer_access()), packed for oneDNN (an f32 model inside InferenceMode; dropped
  // when it ends). Every call that changes the weights, or lets a caller change them, tells it.
  cpu::ComputeCaches compute_caches_;
  int inference_depth_ = 0;         // InferenceMode scopes alive
  bool pack_for_inference_ = true;  // built for inference: where the packed copy fits (inference_packing_fits)
  // Every gradient is 0: set by zero_grads() and optimizer_access(); cleared by backward() and grads().
  bool grads_zero_ = true;
  // Filled by backward(); forgotten by zero_grads(), optimizer_access() and grads().
  GradSquareTally grad_squares_;
  std::vector<std::unique_ptr<Layer>> layers_;
  int64_t n_moe_layers_ = 0;
  std::unique_ptr<Workspace> ws_;

  void check_weights_may_change() const;  // refuses inside InferenceMode
  void check_trains() const;              // refuses in a model built for inference
  // The context of one forward (forward_only: inside InferenceMode) or backward over params_.
  cpu::ComputeContext compute_context(bool forward_only);
};

}  // namespace moelab
