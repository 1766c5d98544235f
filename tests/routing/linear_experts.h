// The expert half of an MoE layer with one fixed linear map per expert, for routing tests that check gradients
// end to end through the routing ops without SwiGLU experts: dispatch -> per-expert linear -> combine, and back.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/linear.h"
#include "routing/combine.h"
#include "routing/dispatch.h"
#include "routing/dispatch_plan.h"

namespace moelab::testing {

struct LinearExperts {
  std::vector<double> w;          // [E,d,d] expert e maps a row by w[e]
  std::vector<double> x_grouped;  // [S,d]
  std::vector<double> y_grouped;  // [S,d]

  // out [N,d] assigned.
  void forward(std::vector<double>& out, const std::vector<double>& x, const routing::DispatchPlan<double>& plan,
               int64_t d) {
    x_grouped.resize(plan.n_slots() * d);
    y_grouped.resize(plan.n_slots() * d);
    out.resize(plan.n_tokens * d);
    routing::dispatch_forward(x_grouped.data(), x.data(), plan, d);
    for (int64_t e = 0; e < plan.n_experts; ++e) {
      const int64_t row = plan.expert_offsets[e];
      ops::linear_forward(cpu::ComputeContext{}, y_grouped.data() + row * d, x_grouped.data() + row * d,
                          w.data() + e * d * d, plan.expert_rows(e), d, d);
    }
    routing::combine_forward(out.data(), y_grouped.data(), plan, d);
  }

  // From d_out [N,d]: d_x [N,d] through the experts and d_slot_weight [S], both assigned.
  void backward(std::vector<double>& d_x, std::vector<double>& d_slot_weight, const std::vector<double>& d_out,
                const routing::DispatchPlan<double>& plan, int64_t d) const {
    const int64_t S = plan.n_slots();
    std::vector<double> d_y(S * d), d_xg(S * d);
    d_slot_weight.resize(S);
    routing::combine_backward(d_y.data(), d_slot_weight.data(), d_out.data(), y_grouped.data(), plan, d);
    for (int64_t e = 0; e < plan.n_experts; ++e) {
      const int64_t row = plan.expert_offsets[e];
      ops::linear_backward<double>(cpu::ComputeContext{}, d_xg.data() + row * d, nullptr, d_y.data() + row * d,
                                   x_grouped.data() + row * d, w.data() + e * d * d, plan.expert_rows(e), d, d);
    }
    d_x.resize(plan.n_tokens * d);
    routing::dispatch_backward(d_x.data(), d_xg.data(), plan, d);
  }
};

}  // namespace moelab::testing
