// The attention sublayer of a transformer block: RMSNorm -> q/k/v projections -> RoPE -> causal attention ->
// output projection. Returns the sublayer output; the caller adds it to the residual stream.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cpu/compute_context.h"

namespace moelab {

struct AttentionShape {
  int64_t B, T;    // sequences, positions per sequence (N = B*T rows)
  int64_t d;       // model width
  int64_t H, Hkv;  // query heads, key/value heads
  int64_t D;       // head dimension
  double rope_theta;
  double rms_eps;
  int64_t rows() const { return B * T; }
};

template <typename T>
struct AttentionWeights {
  const T* norm;  // [d]
  const T* wq;    // [H*D, d]
  const T* wk;    // [Hkv*D, d]
  const T* wv;    // [Hkv*D, d]
  const T* wo;    // [d, H*D]
};

template <typename T>
struct AttentionGrads {  // accumulated
  T* norm;
  T* wq;
  T* wk;
  T* wv;
  T* wo;
};

// What forward saves for backward.
template <typename T>
struct AttentionActivations {
  std::vector<T> normed;  // [N,d]
  std::vector<T> rstd;    // [N]
  std::vector<T> q;       // [N,H*D]   after RoPE
  std::vector<T> k;       // [N,Hkv*D] after RoPE
  std::vector<T> v;       // [N,Hkv*D]
  std::vector<T> lse;     // [B,H,T]   log-sum-exp of each row's scores, only when kept for backward
  std::vector<T> ctx;     // [N,H*D]   attention output before o_proj
  void resize(const AttentionShape& s, bool for_backward);
};

// Backward scratch, shared by all layers (only one layer's backward runs at a time).
template <typename T>
struct AttentionScratch {
  std::vector<T> d_ctx;     // [N,H*D]
  std::vector<T> d_q;       // [N,H*D]
  std::vector<T> d_k;       // [N,Hkv*D]
  std::vector<T> d_v;       // [N,Hkv*D]
  std::vector<T> d_normed;  // [N,d]
  void resize(const AttentionShape& s);
};

// The projections run as ctx says; attention's own products are f32 (ops/attention.h).
// for_backward = false (inference): the attention probabilities are not kept, and backward must not follow.
template <typename T>
void attention_block_forward(const cpu::ComputeContext& ctx, T* out /*[N,d]*/, AttentionActivations<T>& act,
                             const T* x /*[N,d]*/, const AttentionWeights<T>& w, const AttentionShape& s,
                             bool for_backward);

// d_x is assigned (the gradient through this sublayer only; the caller adds the residual path).
template <typename T>
void attention_block_backward(const cpu::ComputeContext& ctx, T* d_x /*[N,d]*/, const AttentionGrads<T>& grads,
                              AttentionScratch<T>& scratch, const T* d_out /*[N,d]*/, const T* x /*[N,d]*/,
                              const AttentionActivations<T>& act, const AttentionWeights<T>& w,
                              const AttentionShape& s);

}  // namespace moelab
