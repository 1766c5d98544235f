// The router of learned, frozen and resampled routers: logits[N,E] = x[N,d] · W[E,d]^T (no bias), then scores
// probs = softmax(logits) over the experts, or sigmoid(logits) per expert (Gating). A hash router has none.
// Forward writes both logits (the z-loss reads them) and probs (the selection rule, the load-balance loss and the
// backward read them) into buffers the caller owns.
//
// Backward: the gradient reaching probs (the selection rule's backward, plus the load-balance loss) goes back
// through the softmax or sigmoid; the gradient reaching the logits directly (the z-loss) is added after it; then
// through the linear map. d_x is assigned; d_weight accumulates, and is null for a router that is not trained
// (frozen, resampled). d_logits is caller scratch [N,E] that holds the total logit gradient on return.
#pragma once

#include <cstdint>

#include "backend/cpu/compute_context.h"
#include "moelab/designs.h"

namespace moelab::routing {

// How router logits become scores: softmax over the experts (a distribution), or a sigmoid per expert (each
// expert scored on its own, as in DeepSeek-V3; scores need not sum to 1).
using moelab::Gating;

// The logits are f32 products whatever ctx's precision (router.cpp says why); ctx's packed weights are read.
template <typename T>
void router_forward(const cpu::ComputeContext& ctx, T* logits /*[N,E]*/, T* probs /*[N,E]*/, const T* x /*[N,d]*/,
                    const T* weight /*[E,d]*/, int64_t N, int64_t d, int64_t E, Gating gating = Gating::Softmax);

// The gradients reaching the router from above: through the scores, and straight to the logits.
template <typename T>
struct RouterUpstream {
  const T* d_probs;         // [N,E]
  const T* d_logits_extra;  // [N,E] added after the gating's backward (the z-loss, a rule reading logits), or null
};

// What backward reads of the forward.
template <typename T>
struct RouterSaved {
  const T* x;       // [N,d] the router's input
  const T* weight;  // [E,d]
  const T* probs;   // [N,E] the scores
};

struct RouterDims {
  int64_t N, d, E;  // rows, input width, experts
};

// d_logits_extra must not alias d_logits.
template <typename T>
void router_backward(T* d_x /*[N,d] assigned, nullable*/, T* d_weight /*[E,d] accumulated, nullable*/,
                     T* d_logits /*[N,E] scratch*/, const RouterUpstream<T>& upstream, const RouterSaved<T>& saved,
                     const RouterDims& dims, Gating gating = Gating::Softmax);

}  // namespace moelab::routing
