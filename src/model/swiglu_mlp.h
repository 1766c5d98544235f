// The SwiGLU feed-forward network over a block of rows: out = down(silu(gate · x) ⊙ up · x).
// One primitive for both a dense FFN layer (all tokens) and one expert (the tokens routed to it).
#pragma once

#include <cstdint>

#include "backend/cpu/compute_context.h"
#include "model/grad_square_tally.h"

namespace moelab {

template <typename T>
struct SwigluMlpWeights {
  const T* gate;  // [h,d]  (Mixtral w1)
  const T* up;    // [h,d]  (Mixtral w3)
  const T* down;  // [d,h]  (Mixtral w2)
};

template <typename T>
struct SwigluMlpGrads {  // accumulated; all null for a frozen MLP
  T* gate;               // [h,d]
  T* up;                 // [h,d]
  T* down;               // [d,h]
};

// The GEMMs run as ctx says, each bf16 operand converted once for all the GEMMs of the call that read it.
// Saves g = gate·x, u = up·x and act = silu(g) ⊙ u for backward.
// act_bf16 (float in a bf16 model only; else null): receives act rounded to bf16 as the down projection reads it,
// [cpu::bf16_padded_rows(n), h] with the padding rows zero (cpu::Bf16Rows). Its only reader in backward is a bf16
// GEMM too, so a caller can keep this instead of act, in half the memory, and spare backward the rounding.
template <typename T>
void swiglu_mlp_forward(const cpu::ComputeContext& ctx, T* out /*[n,d]*/, T* g /*[n,h]*/, T* u /*[n,h]*/,
                        T* act /*[n,h]*/, const T* x /*[n,d]*/, const SwigluMlpWeights<T>& w, int64_t n, int64_t d,
                        int64_t h, uint16_t* act_bf16 = nullptr);

// How the weight gradients reach grads: by the GEMMs themselves (rows null), or made in `rows` first and then
// added, or written when grads hold zeros (ops::linear_weight_grad_staged; the bf16 expert backward). Staged
// float gradients also leave the sums of their squares in the tally, when there is one.
template <typename T>
struct SwigluGradStaging {
  T* rows = nullptr;        // [h*d] scratch, or null
  bool grads_zero = false;  // grads hold zeros: write them, do not add
  GradSquareTally* tally = nullptr;
};

// What the forward kept for the backward, over the same n rows.
template <typename T>
struct SwigluSaved {
  const T* x;                          // [n,d] the input
  const T* g;                          // [n,h] gate · x
  const T* u;                          // [n,h] up · x
  const T* act;                        // [n,h] silu(g) ⊙ u; not read when act_bf16 holds it
  const uint16_t* act_bf16 = nullptr;  // [cpu::bf16_padded_rows(n),h] the forward's act_bf16, or null
};

// The backward's scratch, caller-provided so that the training step allocates nothing.
template <typename T>
struct SwigluBackwardScratch {
  T* d_act;  // [n,h]
  T* d_g;    // [n,h]
  T* d_u;    // [n,h]
};

struct SwigluShape {
  int64_t n, d, h;  // rows, model width, hidden size
};

// d_x is assigned. With saved.act_bf16 (act is then not read) the down projection's weight gradient is staged, so
// staging.rows must be set.
template <typename T>
void swiglu_mlp_backward(const cpu::ComputeContext& ctx, T* d_x /*[n,d]*/, const SwigluMlpGrads<T>& grads,
                         const SwigluBackwardScratch<T>& scratch, const T* d_out /*[n,d]*/, const SwigluSaved<T>& saved,
                         const SwigluMlpWeights<T>& w, SwigluShape shape, const SwigluGradStaging<T>& staging = {});

}  // namespace moelab
