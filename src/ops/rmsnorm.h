// RMSNorm over the last dimension of a [N, C] matrix (Hugging Face LlamaRMSNorm, computed in T = float/double).
//   forward:  rstd[n] = 1 / sqrt(mean_c x[n,c]^2 + eps);   out[n,c] = x[n,c] * rstd[n] * weight[c]
//   backward: d_x[n,c] = rstd[n] weight[c] d_out[n,c] - x[n,c] rstd[n]^3 / C * sum_c' d_out[n,c'] weight[c'] x[n,c']
//                                                                                            (assigned)
//             d_weight[c] += sum_n d_out[n,c] x[n,c] rstd[n]                                 (accumulated)
// Forward saves rstd for backward. d_weight may be null (a frozen gain). The sum over rows for d_weight is
// deterministic for any thread count: fixed blocks of rows make partial sums that are added in block order.
#pragma once

#include <cstdint>

namespace moelab::ops {

template <typename T>
void rmsnorm_forward(T* out /*[N,C]*/, T* rstd /*[N] saved for backward*/, const T* x /*[N,C]*/,
                     const T* weight /*[C]*/, int64_t N, int64_t C, double eps);

template <typename T>
void rmsnorm_backward(T* d_x /*[N,C] assigned*/, T* d_weight /*[C] accumulated, or null*/, const T* d_out /*[N,C]*/,
                      const T* x /*[N,C]*/, const T* weight /*[C]*/, const T* rstd /*[N]*/, int64_t N, int64_t C);

}  // namespace moelab::ops
