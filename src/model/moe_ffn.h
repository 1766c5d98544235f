// The MoE feed-forward sublayer on already-normalised rows:
//   [pooling: sequence mean | prefix mean] -> router (logits; softmax | sigmoid scores) -> selection rule (top-k |
//   top-p | expert choice; under loss-free balancing, top-k on the scores plus a per-expert bias) -> [sequence
//   plan expanded to tokens] -> [capacity: overflow dropped] -> dispatch plan -> gather rows by expert -> each
//   expert's SwiGLU on its rows as dense GEMMs -> weighted combine back to token order -> [+ shared experts, on
//   every token, optionally scaled per token by a sigmoid gate].
// A hash router replaces the router and the rule by a fixed token-id table. The auxiliary losses of the layer
// (load balance, z-loss, dynamic/entropy loss) are returned and their gradients added in backward. The dispatch
// plan in the activations is what statistics and traces read.
#pragma once

#include <cstdint>
#include <vector>

#include "model/swiglu_mlp.h"
#include "moelab/designs.h"
#include "routing/dispatch_plan.h"
#include "routing/router.h"
#include "routing/selection_rule.h"

namespace moelab {

struct MoeFfnShape {
  int64_t B, T;  // sequences and positions: N = B*T tokens
  int64_t d;     // model width
  int64_t E;     // experts
  int64_t h;     // expert hidden size
  routing::Gating gating = routing::Gating::Softmax;
  SelectionRule rule = SelectionRule::TopK;
  int64_t top_k = 2;
  bool renormalize = true;
  double top_p = 0.4;
  int64_t max_k = 0;
  Granularity granularity = Granularity::Token;
  double capacity_factor = 0;  // 0: dropless; also sets expert choice's capacity (1 when 0)
  bool hash_router = false;    // no router: experts from a fixed token-id table
  uint64_t hash_seed = 0;
  int64_t shared_hidden = 0;  // hidden size of the fused shared experts every token uses; 0: none
  bool shared_gate = false;   // the shared experts' output scaled by sigmoid(x . w) per token (ops/sigmoid_gate.h)
  int64_t N() const { return B * T; }
  // Rows the router and the rule see: one per sequence under sequence granularity, else one per token.
  int64_t route_rows() const { return granularity == Granularity::Sequence ? B : B * T; }
  // What the rule reads of the settings above.
  routing::RuleSettings rule_settings() const { return {top_k, renormalize, top_p, max_k, capacity_factor}; }
  // The load-balance f divisor: slots per routed row for a rule that gives every token k (so sum f = 1); else 1,
  // as paper 2 does for top-p (sum f may exceed 1).
  double load_balance_divisor() const { return routing::selection_rule(rule).load_balance_divisor(top_k); }
};

template <typename T>
struct MoeFfnWeights {
  const T* router;                           // [E,d]; null for a hash router
  std::vector<SwigluMlpWeights<T>> experts;  // [E]
  SwigluMlpWeights<T> shared{};              // the fused shared experts, when shape.shared_hidden > 0
  const T* selection_bias = nullptr;         // [E] loss-free balancing: added to the scores to choose only
  const T* shared_gate = nullptr;            // [d] when shape.shared_gate
};

template <typename T>
struct MoeFfnGrads {                       // accumulated
  T* router;                               // [E,d]; null when the router is not trained
  std::vector<SwigluMlpGrads<T>> experts;  // [E]
  SwigluMlpGrads<T> shared{};
  T* shared_gate = nullptr;  // [d]
};

// The auxiliary losses of one layer, before their coefficients, and the slots capacity dropped.
struct MoeAuxLosses {
  double load_balance = 0;
  double z_loss = 0;
  double entropy = 0;   // paper 2's dynamic loss: mean routing entropy
  int64_t dropped = 0;  // slots removed by the capacity limit
};

// Coefficients of the aux losses in the objective being differentiated (already divided by the number of MoE
// layers and multiplied by any loss scale).
struct MoeAuxCoefficients {
  double load_balance = 0;
  double z_loss = 0;
  double entropy = 0;
};

template <typename T>
struct MoeFfnActivations {
  std::vector<T> route_in;              // [R,d] pooled router input (sequence: R = B; prefix: R = N); empty for token
  std::vector<T> router_logits;         // [R,E]
  std::vector<T> router_probs;          // [R,E]
  std::vector<T> biased_scores;         // [R,E] probs + selection bias, what the rule chooses by (loss-free balancing)
  routing::DispatchPlan<T> route_plan;  // sequence granularity: the plan of the R = B sequence rows
  routing::DispatchPlan<T> plan;        // the token plan, S = plan slots
  std::vector<T> x_grouped;             // [S,d] rows gathered in expert order
  std::vector<T> g, u, act;             // [S,h] each expert's SwiGLU intermediates, written by a forward for backward
  // A bf16 model's act instead of act (float only): rounded to bf16 where it is made, as both GEMMs that read it
  // take it, each expert's rows padded with zero rows to a whole block (cpu::Bf16Rows): [sum over experts of
  // cpu::bf16_padded_rows(rows of the expert), h] at its start, sized for the most padding (grown only).
  std::vector<uint16_t> act_bf16;
  std::vector<T> y_grouped;                       // [S,d] expert outputs, expert order
  std::vector<T> shared_g, shared_u, shared_act;  // [N,hs] the shared experts' SwiGLU intermediates
  std::vector<T> shared_out;                      // [N,d]
  std::vector<T> shared_gate;                     // [N] the sigmoid gate of each token, when shape.shared_gate
};

// Working memory of one MoE layer's forward and backward that no later pass reads: one per model, shared by its
// layers. The buffers whose size varies by layer are grown only (core/grow.h): each holds at least its shape below.
// The expert-row buffers are sized for the most rows an expert can get (N, one per token) on first use, so a
// training step allocates none of them after the first.
template <typename T>
struct MoeFfnScratch {
  std::vector<T> g_rows, u_rows, act_rows;  // [N, h] forward: one expert's rows at a time
  std::vector<uint16_t> act_bf16_rows;      // [N padded to 64 rows, h] a bf16 model's act, rounded
  std::vector<T> d_y_grouped;               // [S,d]
  std::vector<T> d_slot_weight;             // [S]
  std::vector<T> d_route_slot_weight;       // [S_route] sequence granularity: gradients of the sequence plan's weights
  std::vector<T> d_act, d_g, d_u;           // [N, h], one expert's rows at a time
  std::vector<T> d_weight_rows;             // [h*d] bf16: one expert weight's gradient before it reaches grads
  std::vector<T> d_x_grouped;               // [S,d]
  std::vector<T> d_probs;                   // [R,E]
  std::vector<T> d_logits;                  // [R,E]
  std::vector<T> d_logits_direct;           // [R,E] what reaches the logits directly: the z-loss, a logit rule
  std::vector<T> d_route_in;                // [R,d]
  std::vector<T> d_shared_act, d_shared_g, d_shared_u;  // [N,hs]
  std::vector<T> d_x_shared;                            // [N,d]
  std::vector<T> d_shared_out;                          // [N,d] the gradient of the gated shared experts' output
};

// The GEMMs run as ctx says (the router's in f32). token_ids [N] are read only by the hash router (may be null
// otherwise). for_backward = false (inference): the
// experts' SwiGLU intermediates are not kept, and backward must not follow.
template <typename T>
MoeAuxLosses moe_ffn_forward(const cpu::ComputeContext& ctx, T* out /*[N,d]*/, MoeFfnActivations<T>& act,
                             MoeFfnScratch<T>& scratch, const T* x /*[N,d]*/, const int32_t* token_ids /*[N]*/,
                             const MoeFfnWeights<T>& w, const MoeFfnShape& s, bool for_backward);

// What backward adds beyond the gradient from above, and how it writes the gradients.
struct MoeFfnBackwardTerms {
  MoeAuxCoefficients coef;  // the auxiliary losses' weights in the objective (0: not differentiated)
  // Every gradient in grads is 0 on entry (the first backward since they were zeroed): the bf16 expert weight
  // gradients are then written without being read.
  bool grads_zero = false;
  GradSquareTally* tally = nullptr;  // receives the sums of squares of the bf16 expert weight gradients, or null
};

// d_x assigned; gradients added to grads.
template <typename T>
void moe_ffn_backward(const cpu::ComputeContext& ctx, T* d_x /*[N,d]*/, const MoeFfnGrads<T>& grads,
                      MoeFfnScratch<T>& scratch, const T* d_out /*[N,d]*/, const T* x /*[N,d]*/,
                      const MoeFfnActivations<T>& act, const MoeFfnWeights<T>& w, const MoeFfnShape& s,
                      const MoeFfnBackwardTerms& terms = {});

}  // namespace moelab
