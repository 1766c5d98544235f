#include "model/moe_ffn.h"

#include <algorithm>

#include "routing/combine.h"
#include "routing/dispatch.h"
#include "routing/load_balance_loss.h"
#include "routing/router.h"
#include "routing/top_k.h"
#include "routing/z_loss.h"

namespace moelab {

template <typename T>
MoeAuxLosses moe_ffn_forward(T* out, MoeFfnActivations<T>& act, const T* x, const MoeFfnWeights<T>& w,
                             const MoeFfnShape& s) {
  act.router_logits.resize(s.N * s.E);
  act.router_probs.resize(s.N * s.E);
  routing::router_forward(act.router_logits.data(), act.router_probs.data(), x, w.router, s.N, s.d, s.E);
  routing::top_k_forward(act.plan, act.router_probs.data(), s.N, s.E, s.top_k, s.renormalize);

  const int64_t S = act.plan.n_slots();
  act.x_grouped.resize(S * s.d);
  act.g.resize(S * s.h), act.u.resize(S * s.h), act.act.resize(S * s.h);
  act.y_grouped.resize(S * s.d);
  routing::dispatch_forward(act.x_grouped.data(), x, act.plan, s.d);
  for (int64_t e = 0; e < s.E; ++e) {
    const int64_t r = act.plan.expert_offsets[e], n = act.plan.expert_rows(e);
    swiglu_mlp_forward(act.y_grouped.data() + r * s.d, act.g.data() + r * s.h, act.u.data() + r * s.h,
                       act.act.data() + r * s.h, act.x_grouped.data() + r * s.d, w.experts[e], n, s.d, s.h);
  }
  routing::combine_forward(out, act.y_grouped.data(), act.plan, s.d);

  MoeAuxLosses aux;
  aux.load_balance = routing::load_balance_forward(act.router_probs.data(), act.plan, static_cast<double>(s.top_k));
  aux.z_loss = routing::z_loss_forward(act.router_logits.data(), s.N, s.E);
  return aux;
}

template <typename T>
void moe_ffn_backward(T* d_x, const MoeFfnGrads<T>& grads, MoeFfnScratch<T>& sc, const T* d_out, const T* x,
                      const MoeFfnActivations<T>& act, const MoeFfnWeights<T>& w, const MoeFfnShape& s,
                      double lb_coef, double z_coef) {
  const auto& plan = act.plan;
  const int64_t S = plan.n_slots();
  sc.d_y_grouped.resize(S * s.d), sc.d_slot_weight.resize(S), sc.d_x_grouped.resize(S * s.d);
  sc.d_act.resize(S * s.h), sc.d_g.resize(S * s.h), sc.d_u.resize(S * s.h);
  sc.d_probs.resize(s.N * s.E), sc.d_logits.resize(s.N * s.E), sc.z_grad.resize(s.N * s.E);
  sc.d_x_router.resize(s.N * s.d);

  // Expert path: combine -> experts -> dispatch gives the gradient of x through the expert outputs.
  routing::combine_backward(sc.d_y_grouped.data(), sc.d_slot_weight.data(), d_out, act.y_grouped.data(), plan, s.d);
  for (int64_t e = 0; e < s.E; ++e) {
    const int64_t r = plan.expert_offsets[e], n = plan.expert_rows(e);
    swiglu_mlp_backward(sc.d_x_grouped.data() + r * s.d, grads.experts[e], sc.d_act.data() + r * s.h,
                        sc.d_g.data() + r * s.h, sc.d_u.data() + r * s.h, sc.d_y_grouped.data() + r * s.d,
                        act.x_grouped.data() + r * s.d, act.g.data() + r * s.h, act.u.data() + r * s.h,
                        act.act.data() + r * s.h, w.experts[e], n, s.d, s.h);
  }
  routing::dispatch_backward(d_x, sc.d_x_grouped.data(), plan, s.d);

  // Router path: gate weights and load balance reach the probabilities, the z-loss reaches the logits.
  routing::top_k_backward(sc.d_probs.data(), sc.d_slot_weight.data(), act.router_probs.data(), plan, s.renormalize);
  if (lb_coef != 0.0)
    routing::load_balance_backward(sc.d_probs.data(), lb_coef, plan, static_cast<double>(s.top_k));
  const T* d_logits_extra = nullptr;
  if (z_coef != 0.0) {
    std::fill(sc.z_grad.begin(), sc.z_grad.end(), T(0));
    routing::z_loss_backward(sc.z_grad.data(), z_coef, act.router_logits.data(), s.N, s.E);
    d_logits_extra = sc.z_grad.data();
  }
  routing::router_backward(sc.d_x_router.data(), grads.router, sc.d_logits.data(), sc.d_probs.data(),
                           d_logits_extra, x, w.router, act.router_probs.data(), s.N, s.d, s.E);
  // x feeds both the router and the experts: its gradient is the sum of the two paths.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < s.N * s.d; ++i) d_x[i] += sc.d_x_router[i];
}

template MoeAuxLosses moe_ffn_forward<float>(float*, MoeFfnActivations<float>&, const float*,
                                             const MoeFfnWeights<float>&, const MoeFfnShape&);
template MoeAuxLosses moe_ffn_forward<double>(double*, MoeFfnActivations<double>&, const double*,
                                              const MoeFfnWeights<double>&, const MoeFfnShape&);
template void moe_ffn_backward<float>(float*, const MoeFfnGrads<float>&, MoeFfnScratch<float>&, const float*,
                                      const float*, const MoeFfnActivations<float>&, const MoeFfnWeights<float>&,
                                      const MoeFfnShape&, double, double);
template void moe_ffn_backward<double>(double*, const MoeFfnGrads<double>&, MoeFfnScratch<double>&, const double*,
                                       const double*, const MoeFfnActivations<double>&, const MoeFfnWeights<double>&,
                                       const MoeFfnShape&, double, double);

}  // namespace moelab
