// The MoE feed-forward sublayer on already-normalised rows:
//   router (logits, softmax) -> selection rule -> dispatch plan -> gather rows by expert -> each expert's SwiGLU
//   on its rows as dense GEMMs -> weighted combine back to token order.
// Plus the auxiliary losses of the layer (load balance, z-loss), whose values are returned and whose gradients
// are added in backward. The dispatch plan in the activations is what statistics and traces read.
#pragma once

#include <cstdint>
#include <vector>

#include "model/swiglu_mlp.h"
#include "routing/dispatch_plan.h"

namespace moelab {

struct MoeFfnShape {
  int64_t N;         // tokens
  int64_t d;         // model width
  int64_t E;         // experts
  int64_t h;         // expert hidden size
  int64_t top_k;
  bool renormalize;
};

template <typename T>
struct MoeFfnWeights {
  const T* router;                             // [E,d]
  std::vector<SwigluMlpWeights<T>> experts;    // [E]
};

template <typename T>
struct MoeFfnGrads {  // accumulated
  T* router;                                   // [E,d]
  std::vector<SwigluMlpGrads<T>> experts;      // [E]
};

// The auxiliary losses of one layer, before their coefficients.
struct MoeAuxLosses {
  double load_balance = 0;
  double z_loss = 0;
};

template <typename T>
struct MoeFfnActivations {
  std::vector<T> router_logits;   // [N,E]
  std::vector<T> router_probs;    // [N,E]
  routing::DispatchPlan<T> plan;  // S = plan slots
  std::vector<T> x_grouped;       // [S,d] rows gathered in expert order
  std::vector<T> g, u, act;       // [S,h] each expert's SwiGLU intermediates
  std::vector<T> y_grouped;       // [S,d] expert outputs, expert order
};

template <typename T>
struct MoeFfnScratch {
  std::vector<T> d_y_grouped;     // [S,d]
  std::vector<T> d_slot_weight;   // [S]
  std::vector<T> d_act, d_g, d_u; // [S,h]
  std::vector<T> d_x_grouped;     // [S,d]
  std::vector<T> d_probs;         // [N,E]
  std::vector<T> d_logits;        // [N,E]
  std::vector<T> z_grad;          // [N,E] the z-loss gradient w.r.t. the logits
  std::vector<T> d_x_router;      // [N,d]
};

template <typename T>
MoeAuxLosses moe_ffn_forward(T* out /*[N,d]*/, MoeFfnActivations<T>& act, const T* x /*[N,d]*/,
                             const MoeFfnWeights<T>& w, const MoeFfnShape& s);

// d_x assigned. lb_coef and z_coef are the effective coefficients of this layer's aux losses in the objective
// being differentiated (already divided by the number of MoE layers and multiplied by any loss scale).
template <typename T>
void moe_ffn_backward(T* d_x /*[N,d]*/, const MoeFfnGrads<T>& grads, MoeFfnScratch<T>& scratch,
                      const T* d_out /*[N,d]*/, const T* x /*[N,d]*/, const MoeFfnActivations<T>& act,
                      const MoeFfnWeights<T>& w, const MoeFfnShape& s, double lb_coef, double z_coef);

}  // namespace moelab
