// Token embedding lookup: row ids[n] of the table [V, C] becomes row n of the output.
//   forward:  out[n,:] = table[ids[n],:]
//   backward: d_table[ids[n],:] += d_out[n,:]   (accumulated: the table is a parameter)
// The caller validates every id to lie in [0, V); V itself is not needed here.
// Backward is deterministic for any thread count: threads split the columns, and each column sums its tokens in
// token order, so repeated ids never race and never depend on scheduling.
#pragma once

#include <cstdint>

namespace moelab::ops {

template <typename T>
void embedding_forward(T* out /*[N,C]*/, const int32_t* ids /*[N]*/, const T* table /*[V,C]*/, int64_t N, int64_t C);

template <typename T>
void embedding_backward(T* d_table /*[V,C] accumulated*/, const T* d_out /*[N,C]*/, const int32_t* ids /*[N]*/,
                        int64_t N, int64_t C);

}  // namespace moelab::ops
