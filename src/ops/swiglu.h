// SwiGLU activation, elementwise over n values (the gated half of a SwiGLU MLP or expert):
//   forward:  h = silu(gate) * up,   silu(g) = g * sigmoid(g)
//   backward: d_up = d_h * silu(gate);   d_gate = d_h * up * sigmoid(g) * (1 + g * (1 - sigmoid(g)))   (both assigned)
// sigmoid is evaluated from exp(-|g|) <= 1, so no intermediate overflows: finite for any finite gate.
#pragma once

#include <cstdint>

namespace moelab::ops {

template <typename T>
void swiglu_forward(T* h /*[n]*/, const T* gate /*[n]*/, const T* up /*[n]*/, int64_t n);

template <typename T>
void swiglu_backward(T* d_gate /*[n] assigned*/, T* d_up /*[n] assigned*/, const T* d_h /*[n]*/, const T* gate /*[n]*/,
                     const T* up /*[n]*/, int64_t n);

}  // namespace moelab::ops
