// Causal scaled-dot-product attention, applied after RoPE has rotated q and k.
//   q [B,T,H,D]; k, v [B,T,Hkv,D] with H % Hkv == 0: query head h reads key/value head h / (H / Hkv)
//   (grouped-query attention; Hkv == H is plain multi-head, Hkv == 1 multi-query).
//   s[b,h,t,j] = q[b,t,h,:] · k[b,j,g,:] / sqrt(D) for j <= t,   lse[b,h,t] = log sum_j<=t exp(s[b,h,t,j])
//   probs[b,h,t,:] = exp(s[b,h,t,:] - lse[b,h,t]),   out[b,t,h,:] = sum_j<=t probs[b,h,t,j] v[b,j,g,:]
// No [B,H,T,T] matrix is kept (flash-attention style): query rows go in blocks of 64, and each block's
// probabilities live in a per-thread [64,T] buffer. A forward that a backward follows keeps only lse [B,H,T];
// backward computes each block's probabilities again from q, k and lse (one more q·kᵀ product) and adds the
// block's share of d_k and d_v, instead of writing B·H·T² probabilities per layer and reading them back twice.
// Backward assigns all three input gradients (they are activation gradients); for GQA the gradient of a shared
// key/value head is the sum over the query heads that read it.
// The element type is named Real because T is the sequence length throughout the model.
#pragma once

#include <cstdint>

namespace moelab::ops {

template <typename Real>
void attention_forward(Real* out /*[B,T,H,D]*/, Real* lse /*[B,H,T] or null*/, const Real* q /*[B,T,H,D]*/,
                       const Real* k /*[B,T,Hkv,D]*/, const Real* v /*[B,T,Hkv,D]*/, int64_t B, int64_t T, int64_t H,
                       int64_t Hkv, int64_t D);

// The gradients backward assigns.
template <typename Real>
struct AttentionInputGrads {
  Real* d_q;  // [B,T,H,D]
  Real* d_k;  // [B,T,Hkv,D]
  Real* d_v;  // [B,T,Hkv,D]
};

// What backward reads of the forward: its inputs and the lse it kept.
template <typename Real>
struct AttentionSaved {
  const Real* q;    // [B,T,H,D]
  const Real* k;    // [B,T,Hkv,D]
  const Real* v;    // [B,T,Hkv,D]
  const Real* lse;  // [B,H,T]
};

struct AttentionDims {
  int64_t B, T, H, Hkv, D;  // sequences, positions, query heads, key/value heads, head size
};

template <typename Real>
void attention_backward(const AttentionInputGrads<Real>& grads, const Real* d_out /*[B,T,H,D]*/,
                        const AttentionSaved<Real>& saved, const AttentionDims& dims);

}  // namespace moelab::ops
