// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_): if ||g||_2 > max_norm, scale g by
// max_norm / (||g||_2 + 1e-6). The norm is summed in double, in an order that does not depend on the threads.
#pragma once

#include <cstdint>

namespace moelab {

double global_grad_norm(const float* grads /*[n]*/, int64_t n);

// The factor clipping scales the gradients by: max_norm / (norm + 1e-6) when norm > max_norm > 0, else 1.
float clip_factor(double norm, double max_norm);

// Scales grads in place by clip_factor and returns the norm before clipping. max_norm <= 0 only measures.
double clip_grad_norm(float* grads /*[n]*/, int64_t n, double max_norm);

}  // namespace moelab
