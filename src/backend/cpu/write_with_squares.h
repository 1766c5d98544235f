// Writing a gradient and its sum of squares in one pass. The backward pass writes each bf16 expert weight gradient
// from rows still in cache; summing the squares of the values while they are in registers spares the gradient norm
// (clipping) a read of those gradients from memory, 96% of all gradients on the large shape.
// The sums follow ordered_sum's blocks and lanes exactly: the result equals
// ordered_sum(n, ..., [&](i) { return double(dst[i]) * dst[i]; }) over the new dst, bit for bit, for any thread count.
#pragma once

#include <cstdint>

namespace moelab::cpu {

// dst[i] = src[i]; returns the sum of dst[i]^2. Streaming stores (dst is not read): for a destination in memory.
double copy_with_squares(float* dst /*[n]*/, const float* src /*[n]*/, int64_t n);
// dst[i] += src[i]; returns the sum of the new dst[i]^2.
double add_with_squares(float* dst /*[n]*/, const float* src /*[n]*/, int64_t n);
// The double path of the model (tests): the same sums, plain stores, one thread.
double copy_with_squares(double* dst /*[n]*/, const double* src /*[n]*/, int64_t n);
double add_with_squares(double* dst /*[n]*/, const double* src /*[n]*/, int64_t n);

}  // namespace moelab::cpu
