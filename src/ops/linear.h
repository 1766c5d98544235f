// Linear layer without bias, weight in the PyTorch / Hugging Face layout [out, in].
//   forward:  out[N,O] = in[N,I] · W[O,I]^T
//   backward: d_in[N,I] = d_out[N,O] · W[O,I]        (assigned)
//             d_W[O,I] += d_out[N,O]^T · in[N,I]      (accumulated: parameter gradients always accumulate)
// Either gradient pointer may be null to skip it (a frozen weight, or an input that needs no gradient).
#pragma once

#include <cstdint>

namespace moelab::ops {

template <typename T>
void linear_forward(T* out, const T* in, const T* weight, int64_t N, int64_t in_features, int64_t out_features);

template <typename T>
void linear_backward(T* d_in, T* d_weight, const T* d_out, const T* in, const T* weight, int64_t N,
                     int64_t in_features, int64_t out_features);

}  // namespace moelab::ops
