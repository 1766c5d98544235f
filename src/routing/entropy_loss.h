// Paper 2's dynamic loss: L = mean over tokens of the entropy H_t = -sum_e p[t,e] log p[t,e] of the full routing
// distribution (0 log 0 = 0). Minimising it makes the router confident, so that top-p keeps fewer experts.
//   backward: d L / d p[t,e] = -(log p[t,e] + 1) / N, scaled by coef and ADDED into d_probs (it follows the
//             selection rule's backward, which assigned d_probs; the router's softmax backward takes the sum).
// At p = 0 the derivative is +infinity; the backward clamps p to kEntropyLogFloor (the smallest normal float,
// log = -87.3) so the gradient stays finite. The softmax backward multiplies a probability's gradient by the
// probability itself, so the clamp changes nothing upstream where p is 0 and only bounds d_probs.
// The forward's value is computed in double whatever T is: it is a reported scalar.
#pragma once

#include <cstdint>
#include <limits>

namespace moelab::routing {

inline constexpr double kEntropyLogFloor = std::numeric_limits<float>::min();

template <typename T>
double entropy_loss_forward(const T* probs /*[N,E]*/, int64_t N, int64_t E);

template <typename T>
void entropy_loss_backward(T* d_probs /*[N,E] added to*/, double coef, const T* probs /*[N,E]*/, int64_t N, int64_t E);

}  // namespace moelab::routing
