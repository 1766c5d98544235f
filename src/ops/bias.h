// A bias added to every row of a [N, C] matrix (a linear layer's bias, kept apart from the GEMM so that every
// linear map shares one GEMM path whether it has a bias or not).
//   forward:  y[n,c] += b[c]
//   backward: d_b[c] += sum_n d_y[n,c]            (accumulated; d_y itself is the gradient of the input, unchanged)
// The sum over rows runs per column in row order: the same bits for any thread count.
#pragma once

#include <cstdint>

namespace moelab::ops {

template <typename T>
void bias_forward(T* y /*[N,C] added to in place*/, const T* b /*[C]*/, int64_t N, int64_t C);

template <typename T>
void bias_backward(T* d_b /*[C] accumulated*/, const T* d_y /*[N,C]*/, int64_t N, int64_t C);

}  // namespace moelab::ops
