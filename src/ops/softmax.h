// Row softmax over the last dimension of a [N, C] matrix.
//   forward:  probs[n,c] = exp(logits[n,c] - max_c logits[n,:]) / sum_c' exp(logits[n,c'] - max)
//   backward: d_logits[n,c] = probs[n,c] * (d_probs[n,c] - sum_c' d_probs[n,c'] * probs[n,c'])   (assigned)
// Backward needs only the forward's output, which the caller keeps. probs may alias logits (in place).
// A logit of -inf gets probability 0; a row whose logits are all -inf has no softmax (NaN).
#pragma once

#include <cstdint>

namespace moelab::ops {

template <typename T>
void softmax_forward(T* probs /*[N,C]*/, const T* logits /*[N,C]*/, int64_t N, int64_t C);

template <typename T>
void softmax_backward(T* d_logits /*[N,C] assigned*/, const T* d_probs /*[N,C]*/, const T* probs /*[N,C]*/, int64_t N,
                      int64_t C);

}  // namespace moelab::ops
