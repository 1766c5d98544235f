// Clamping to [-limit, limit] in place (OLMoE's clip_qkv), with PyTorch's gradient convention.
//   forward:  x = min(max(x, -limit), limit);  clipped[i] = 1 where |x| was > limit, else 0 (saved for backward)
//   backward: d[i] = 0 where clipped[i], unchanged elsewhere (in place: the gradient of the input)
// A value exactly at the limit is not clipped and passes its gradient, as torch.clamp's backward does.
#pragma once

#include <cstdint>

namespace moelab::ops {

template <typename T>
void clamp_forward(T* x /*[n] in place*/, uint8_t* clipped /*[n] saved for backward*/, int64_t n, double limit);

template <typename T>
void clamp_backward(T* d /*[n] in place*/, const uint8_t* clipped /*[n]*/, int64_t n);

}  // namespace moelab::ops
