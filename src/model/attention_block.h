// The attention sublayer of a transformer block: RMSNorm -> q/k/v projections [+ biases] -> [q/k RMSNorm, per head
// or over the whole projection] -> [q, k, v clamped to +-clip] -> RoPE on q and k -> causal attention -> output
// projection. Returns the sublayer output; the caller adds it to the residual stream.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cpu/compute_context.h"
#include "moelab/designs.h"

namespace moelab {

struct AttentionShape {
  int64_t B, T;    // sequences, positions per sequence (N = B*T rows)
  int64_t d;       // model width
  int64_t H, Hkv;  // query heads, key/value heads
  int64_t D;       // head dimension
  double rope_theta;
  double rms_eps;                 // of the input norm and the q/k norms
  QkNorm qk_norm = QkNorm::None;  // per head: gains [D]; whole: gains [H*D] and [Hkv*D]
  bool qkv_bias = false;          // the q, k and v projections add biases
  double clip_qkv = 0;            // > 0: q, k and v clamped to [-clip_qkv, clip_qkv]
  int64_t rows() const { return B * T; }
  // The q/k norm's rows and width for a projection of `heads` heads: one row per head (per_head) or per token.
  int64_t qk_norm_rows(int64_t heads) const { return qk_norm == QkNorm::PerHead ? rows() * heads : rows(); }
  int64_t qk_norm_width(int64_t heads) const { return qk_norm == QkNorm::PerHead ? D : heads * D; }
};

template <typename T>
struct AttentionWeights {
  const T* norm;              // [d]
  const T* wq;                // [H*D, d]
  const T* wk;                // [Hkv*D, d]
  const T* wv;                // [Hkv*D, d]
  const T* wo;                // [d, H*D]
  const T* q_norm = nullptr;  // [D] or [H*D], when shape.qk_norm is not none
  const T* k_norm = nullptr;  // [D] or [Hkv*D]
  const T* bq = nullptr;      // [H*D], when shape.qkv_bias
  const T* bk = nullptr;      // [Hkv*D]
  const T* bv = nullptr;      // [Hkv*D]
};

template <typename T>
struct AttentionGrads {  // accumulated; the same layout as AttentionWeights
  T* norm;
  T* wq;
  T* wk;
  T* wv;
  T* wo;
  T* q_norm = nullptr;
  T* k_norm = nullptr;
  T* bq = nullptr;
  T* bk = nullptr;
  T* bv = nullptr;
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
  // With a q/k norm: its inputs (the projections, with their biases) and the norm's rstd per row.
  std::vector<T> q_lin;          // [N,H*D]
  std::vector<T> k_lin;          // [N,Hkv*D]
  std::vector<T> q_rstd;         // [N*H] per head, [N] whole
  std::vector<T> k_rstd;         // [N*Hkv] per head, [N] whole
  std::vector<uint8_t> clipped;  // [N*(H*D + 2*Hkv*D)] with clip_qkv, for backward: which of q, k, v were clamped
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
  std::vector<T> d_q_lin;   // [N,H*D]   with a q/k norm: the gradient of its input
  std::vector<T> d_k_lin;   // [N,Hkv*D]
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
