// One MoE layer's expert weights in owned buffers, with the ExpertWeights view the analyses read: the fixture of
// the static-analysis and expert-health tests.
#pragma once

#include <cstdint>
#include <vector>

#include "analysis/expert_weights.h"
#include "core/rng.h"

namespace moelab::testing {

// One MoE layer's weights, owned, with an ExpertWeights view over them.
struct OwnedExperts {
  int64_t E, d, h;
  std::vector<std::vector<float>> w1, w3, w2;  // [E] each [h,d], [h,d], [d,h]
  std::vector<float> router;                   // [E,d]; empty: a hash router

  OwnedExperts(int64_t E_, int64_t d_, int64_t h_)
      : E(E_), d(d_), h(h_), w1(E_, std::vector<float>(h_ * d_)), w3(w1), w2(w1), router(E_ * d_) {}

  analysis::ExpertWeights view() const {
    analysis::ExpertWeights w;
    w.layer = 3, w.E = E, w.d = d, w.h = h;
    for (int64_t e = 0; e < E; ++e) {
      w.w1.push_back(w1[e].data());
      w.w3.push_back(w3[e].data());
      w.w2.push_back(w2[e].data());
    }
    w.router = router.empty() ? nullptr : router.data();
    return w;
  }
};

inline void fill_normal(std::vector<float>& v, Rng& rng) {
  for (float& x : v) x = static_cast<float>(rng.normal());
}

// Every weight (expert by expert: w1, w3, w2; then the router) from one seeded normal stream.
inline OwnedExperts random_experts(int64_t E, int64_t d, int64_t h, uint64_t seed) {
  OwnedExperts L(E, d, h);
  Rng rng(seed, 0);
  for (int64_t e = 0; e < E; ++e) fill_normal(L.w1[e], rng), fill_normal(L.w3[e], rng), fill_normal(L.w2[e], rng);
  fill_normal(L.router, rng);
  return L;
}

}  // namespace moelab::testing
