// Softmax cross-entropy over rows of logits [N, V] against integer targets; rows with target < 0 are ignored.
//   forward:  loss_n = logsumexp(logits[n,:]) - logits[n, target_n]   (0 for an ignored row)
//             returns sum_n loss_n in double; row_loss (if not null) receives every loss_n
//   backward: d_logits[n,:] = scale * (softmax(logits[n,:]) - onehot(target_n))   (assigned; 0 for ignored rows)
// Both subtract the row maximum first, so logits of any finite size give finite results. d_logits may alias
// logits (in place), which saves an N x V buffer. A target is negative (ignored) or in [0, V): the caller checks.
// The returned sum is deterministic for any thread count: rows are summed sequentially in row order.
#pragma once

#include <cstdint>

namespace moelab::ops {

template <typename T>
double cross_entropy_forward(T* row_loss /*[N] or null*/, const T* logits /*[N,V]*/, const int32_t* targets /*[N]*/,
                             int64_t N, int64_t V);

template <typename T>
void cross_entropy_backward(T* d_logits /*[N,V] assigned, may alias logits*/, const T* logits /*[N,V]*/,
                            const int32_t* targets /*[N]*/, int64_t N, int64_t V, double scale);

}  // namespace moelab::ops
