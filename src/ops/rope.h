// Rotary position embedding, Hugging Face "rotate_half" convention (what LLaMA / Mixtral checkpoints expect).
// For head dimension D (even) and i < D/2, the pair (x[i], x[i + D/2]) of the vector at position t (0-based) is
// rotated by the angle t * theta^(-2i/D):
//   forward:  y[i] = x[i] cos - x[i+D/2] sin;     y[i+D/2] = x[i+D/2] cos + x[i] sin
//   backward: the transposed (inverse) rotation,
//             d_x[i] = d_y[i] cos + d_y[i+D/2] sin;  d_x[i+D/2] = d_y[i+D/2] cos - d_y[i] sin
// Both work in place. Angles, cosines and sines are computed in double (positions reach thousands, where a float
// angle would be off by ~1e-4 rad) once per (t, i) and applied across every batch row and head.
// (The template parameter is Real because T names the sequence length.)
#pragma once

#include <cstdint>

namespace moelab::ops {

template <typename Real>
void rope_forward(Real* x /*[B,T,H,D] rotated in place*/, int64_t B, int64_t T, int64_t H, int64_t D, double theta);

// Holds the gradient w.r.t. the output on entry and the gradient w.r.t. the input on return.
template <typename Real>
void rope_backward(Real* d_x /*[B,T,H,D] in place*/, int64_t B, int64_t T, int64_t H, int64_t D, double theta);

}  // namespace moelab::ops
