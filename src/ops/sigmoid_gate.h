// A per-row sigmoid gate on a branch's output, added to a sum (Qwen2-MoE's gated shared expert):
//   forward:  gate[n] = sigmoid(x[n,:] . w);   out[n,:] += gate[n] * y[n,:]
//   backward: d_y[n,:] = gate[n] d_out[n,:]                                       (assigned)
//             a[n] = gate[n] (1 - gate[n]) (d_out[n,:] . y[n,:])
//             d_x[n,:] += a[n] w                                                   (added: x feeds other branches)
//             d_w += sum_n a[n] x[n,:]                                             (accumulated, rows in order)
// Forward saves gate for backward.
#pragma once

#include <cstdint>

namespace moelab::ops {

template <typename T>
struct SigmoidGateInputs {
  const T* x;     // [N,D] what the gate reads
  const T* w;     // [D]   the gate's weight
  const T* y;     // [N,D] the branch output it scales
  const T* gate;  // [N]   saved by forward (read by backward only)
};

template <typename T>
struct SigmoidGateGrads {
  T* d_y;  // [N,D] assigned
  T* d_x;  // [N,D] added to
  T* d_w;  // [D]   accumulated
};

template <typename T>
void sigmoid_gate_forward(T* out /*[N,D] added to*/, T* gate /*[N] saved for backward*/, const SigmoidGateInputs<T>& in,
                          int64_t N, int64_t D);

template <typename T>
void sigmoid_gate_backward(const SigmoidGateGrads<T>& grads, const T* d_out /*[N,D]*/, const SigmoidGateInputs<T>& in,
                           int64_t N, int64_t D);

}  // namespace moelab::ops
