// Causal scaled-dot-product attention, applied after RoPE has rotated q and k.
//   q [B,T,H,D]; k, v [B,T,Hkv,D] with H % Hkv == 0: query head h reads key/value head h / (H / Hkv)
//   (grouped-query attention; Hkv == H is plain multi-head, Hkv == 1 multi-query).
//   probs[b,h,t,:] = softmax_j<=t(q[b,t,h,:] · k[b,j,g,:] / sqrt(D)),   out[b,t,h,:] = sum_j probs[b,h,t,j] v[b,j,g,:]
// probs [B,H,T,T] is saved by forward for backward. Query rows go in blocks of kAttentionRowBlock, and row t is
// written up to the end of its block: its probabilities over columns 0..t, then exact zeros. Columns past the block
// are never read and are left as they were, which spares the memory traffic of almost half the matrix. A forward
// that no backward follows passes null and keeps one block of probabilities per thread instead.
// Backward assigns all three input gradients (they are activation gradients); for GQA the gradient of a shared
// key/value head is the sum over the query heads that read it.
// The element type is named Real because T is the sequence length throughout the model.
#pragma once

#include <cstdint>

namespace moelab::ops {

inline constexpr int64_t kAttentionRowBlock = 64;

template <typename Real>
void attention_forward(Real* out /*[B,T,H,D]*/, Real* probs /*[B,H,T,T] or null*/, const Real* q /*[B,T,H,D]*/,
                       const Real* k /*[B,T,Hkv,D]*/, const Real* v /*[B,T,Hkv,D]*/, int64_t B, int64_t T, int64_t H,
                       int64_t Hkv, int64_t D);

template <typename Real>
void attention_backward(Real* d_q /*[B,T,H,D]*/, Real* d_k /*[B,T,Hkv,D]*/, Real* d_v /*[B,T,Hkv,D]*/,
                        const Real* d_out /*[B,T,H,D]*/, const Real* q /*[B,T,H,D]*/, const Real* k /*[B,T,Hkv,D]*/,
                        const Real* v /*[B,T,Hkv,D]*/, const Real* probs /*[B,H,T,T]*/, int64_t B, int64_t T,
                        int64_t H, int64_t Hkv, int64_t D);

}  // namespace moelab::ops
