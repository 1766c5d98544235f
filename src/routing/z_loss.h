// The router z-loss (ST-MoE): L = mean over tokens of logsumexp(logits[t,:])^2. It keeps router logits small,
// which keeps the softmax out of the range where float rounding changes routing decisions.
//   backward: d L / d logits[t,i] = (2 / N) * logsumexp(logits[t,:]) * softmax(logits[t,:])_i, scaled by coef and
//             ADDED into d_logits (the router's backward takes it as its extra logit gradient).
// The forward's value is computed in double whatever T is: it is a reported scalar.
#pragma once

#include <cstdint>

namespace moelab::routing {

template <typename T>
double z_loss_forward(const T* logits /*[N,E]*/, int64_t N, int64_t E);

template <typename T>
void z_loss_backward(T* d_logits /*[N,E] added to*/, double coef, const T* logits /*[N,E]*/, int64_t N, int64_t E);

}  // namespace moelab::routing
