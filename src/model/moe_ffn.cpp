#include "model/moe_ffn.h"

#include <algorithm>
#include <type_traits>

#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/stream_copy.h"
#include "core/error.h"
#include "core/grow.h"
#include "core/op_profile.h"
#include "ops/sigmoid_gate.h"
#include "routing/capacity.h"
#include "routing/combine.h"
#include "routing/dispatch.h"
#include "routing/entropy_loss.h"
#include "routing/granularity.h"
#include "routing/hash_router.h"
#include "routing/load_balance_loss.h"
#include "routing/router.h"
#include "routing/z_loss.h"

namespace moelab {

namespace {

// The rule of the shape over R router rows (routing/selection_rule.h): scores [R,E] (the probabilities, or under
// loss-free balancing the biased scores) and logits [R,E] -> a plan over those rows.
template <typename T>
void select(routing::DispatchPlan<T>& plan, const T* scores, const T* logits, int64_t R, const MoeFfnShape& s) {
  routing::selection_rule(s.rule).ops<T>().forward(plan, {scores, logits, R, s.E}, s.rule_settings());
}

// Sets every slot's weight to its row's probability of its expert, renormalised over the row's slots if asked:
// the weights top_k_forward would have given had it chosen this set from these probabilities.
template <typename T>
void reweight_by(routing::DispatchPlan<T>& plan, const T* probs /*[R,E]*/, bool renormalize) {
  const int64_t E = plan.n_experts;
  for (int64_t t = 0; t < plan.n_tokens; ++t) {
    T sum = 0;
    for (int32_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s)
      sum += plan.slot_weight[s] = probs[t * E + plan.slot_expert[s]];
    if (renormalize && sum > 0)
      for (int32_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s) plan.slot_weight[s] /= sum;
  }
}

// Rows of MoeFfnActivations::act_bf16: every expert's rows padded to a whole bf16 block.
template <typename T>
int64_t bf16_act_rows(const routing::DispatchPlan<T>& plan) {
  int64_t rows = 0;
  for (int64_t e = 0; e < plan.n_experts; ++e) rows += cpu::bf16_padded_rows(plan.expert_rows(e));
  return rows;
}

// Rows to size the expert-row scratch for (MoeFfnScratch: one expert's rows at a time, shared by the layers):
// the most any expert can get, one per token, so that the scratch reaches its size in the first step and no later
// step grows it (each layer's largest expert differs, and routing drifts while training). `rows`, this call's
// largest expert, keeps the bound safe for a rule that would give an expert a token twice.
int64_t expert_row_capacity(const MoeFfnShape& s, int64_t rows) { return std::max(s.N(), rows); }

// A bf16 model keeps each expert's activation in bf16 (MoeFfnActivations::act_bf16) and stages its expert weight
// gradients (SwigluGradStaging); an f32 one does neither.
template <typename T>
bool bf16_experts(const cpu::ComputeContext& ctx) {
  return std::is_same_v<T, float> && ctx.precision == cpu::GemmPrecision::Bf16;
}

}  // namespace

template <typename T>
MoeAuxLosses moe_ffn_forward(const cpu::ComputeContext& ctx, T* out, MoeFfnActivations<T>& act, MoeFfnScratch<T>& sc,
                             const T* x, const int32_t* token_ids, const MoeFfnWeights<T>& w, const MoeFfnShape& s,
                             bool for_backward) {
  const int64_t N = s.N(), R = s.route_rows();
  MoeAuxLosses aux;
  {
    profile::Scope p("fwd moe.routing", s.hash_router ? 0.0 : 2.0 * R * s.d * s.E);
    if (s.hash_router) {
      routing::hash_route(act.plan, token_ids, N, s.E, s.top_k, s.hash_seed);
    } else {
      // The router sees each token (token), the sequence mean (sequence) or the running mean (prefix).
      const T* route_in = x;
      if (s.granularity != Granularity::Token) {
        act.route_in.resize(R * s.d);
        if (s.granularity == Granularity::Sequence)
          routing::sequence_mean_forward(act.route_in.data(), x, s.B, s.T, s.d);
        else
          routing::prefix_mean_forward(act.route_in.data(), x, s.B, s.T, s.d);
        route_in = act.route_in.data();
      }
      act.router_logits.resize(R * s.E);
      act.router_probs.resize(R * s.E);
      routing::router_forward(ctx, act.router_logits.data(), act.router_probs.data(), route_in, w.router, R, s.d, s.E,
                              s.gating);
      auto& route_plan = s.granularity == Granularity::Sequence ? act.route_plan : act.plan;
      if (w.selection_bias) {
        // Loss-free balancing: choose by biased scores, weight by the unbiased probabilities.
        act.biased_scores.resize(R * s.E);
        for (int64_t i = 0; i < R * s.E; ++i) act.biased_scores[i] = act.router_probs[i] + w.selection_bias[i % s.E];
        select(route_plan, act.biased_scores.data(), act.router_logits.data(), R, s);
        reweight_by(route_plan, act.router_probs.data(), s.renormalize);
      } else {
        select(route_plan, act.router_probs.data(), act.router_logits.data(), R, s);
      }
      if (s.granularity == Granularity::Sequence) routing::expand_sequence_plan(act.plan, act.route_plan, s.T);
      if (s.capacity_factor > 0 && routing::selection_rule(s.rule).capacity == routing::CapacityUse::Drops) {
        // Validation allows capacity with top-k and token or prefix granularity only: the plan's rows are then the
        // probabilities' rows, and k slots per token is what the capacity formula assumes.
        aux.dropped = routing::apply_capacity(act.plan, act.router_probs.data(),
                                              routing::expert_capacity(s.capacity_factor, N, s.top_k, s.E));
      }
      aux.load_balance = routing::load_balance_forward(act.router_probs.data(), route_plan, s.load_balance_divisor());
      aux.z_loss = routing::z_loss_forward(act.router_logits.data(), R, s.E);
      aux.entropy = routing::entropy_loss_forward(act.router_probs.data(), R, s.E);
    }
  }

  const int64_t S = act.plan.n_slots(), rows = act.plan.max_expert_rows();
  act.x_grouped.resize(S * s.d);
  // Each expert's SwiGLU intermediates are made in rows every expert reuses, so they stay in cache between the
  // GEMMs that write them and the pass and GEMM that read them. What backward needs of them is then streamed out:
  // GEMMs writing straight into the large saved arrays spent much of their time waiting on memory.
  // A bf16 model rounds act to bf16 (act_bf16_rows), the only form its GEMMs read, and keeps it so.
  const bool bf16 = bf16_experts<T>(ctx);
  const int64_t row_capacity = expert_row_capacity(s, rows);
  grow_to(sc.g_rows, row_capacity * s.h), grow_to(sc.u_rows, row_capacity * s.h);
  grow_to(sc.act_rows, row_capacity * s.h);
  if (bf16) grow_to(sc.act_bf16_rows, cpu::bf16_padded_rows(row_capacity) * s.h);
  if (for_backward) {
    act.g.resize(S * s.h), act.u.resize(S * s.h);
    if (bf16)  // sized for the most padding any routing needs, so that no step refills it
      grow_to(act.act_bf16, (S + s.E * (cpu::kBf16RowBlock - 1)) * s.h);
    else
      act.act.resize(S * s.h);
  }
  act.y_grouped.resize(S * s.d);
  {
    profile::Scope p("fwd moe.dispatch", 0);
    routing::dispatch_forward(act.x_grouped.data(), x, act.plan, s.d);
  }
  for (int64_t e = 0, r_bf16 = 0; e < s.E; ++e) {  // r_bf16: the expert's first row in act_bf16
    const int64_t r = act.plan.expert_offsets[e], n = act.plan.expert_rows(e), n_bf16 = cpu::bf16_padded_rows(n);
    swiglu_mlp_forward(ctx, act.y_grouped.data() + r * s.d, sc.g_rows.data(), sc.u_rows.data(), sc.act_rows.data(),
                       act.x_grouped.data() + r * s.d, w.experts[e], n, s.d, s.h,
                       bf16 ? sc.act_bf16_rows.data() : nullptr);
    if (!for_backward || n == 0) continue;
    profile::Scope p("fwd ffn.save_for_backward", 0);
    cpu::stream_copy(act.g.data() + r * s.h, sc.g_rows.data(), n * s.h);
    cpu::stream_copy(act.u.data() + r * s.h, sc.u_rows.data(), n * s.h);
    if (bf16)  // with its zero padding rows, as backward's GEMM reads it
      cpu::stream_copy(act.act_bf16.data() + r_bf16 * s.h, sc.act_bf16_rows.data(), n_bf16 * s.h);
    else
      cpu::stream_copy(act.act.data() + r * s.h, sc.act_rows.data(), n * s.h);
    r_bf16 += n_bf16;
  }
  {
    profile::Scope p("fwd moe.combine", 0);
    routing::combine_forward(out, act.y_grouped.data(), act.plan, s.d);
  }
  if (s.shared_hidden > 0) {  // every token also runs the shared experts; their output adds to the routed one
    const int64_t hs = s.shared_hidden;
    act.shared_g.resize(N * hs), act.shared_u.resize(N * hs), act.shared_act.resize(N * hs);
    act.shared_out.resize(N * s.d);
    swiglu_mlp_forward(ctx, act.shared_out.data(), act.shared_g.data(), act.shared_u.data(), act.shared_act.data(), x,
                       w.shared, N, s.d, hs);
    if (s.shared_gate) {
      act.shared_gate.resize(N);
      ops::sigmoid_gate_forward(out, act.shared_gate.data(), {x, w.shared_gate, act.shared_out.data(), nullptr}, N,
                                s.d);
    } else {
      const T* so = act.shared_out.data();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < N * s.d; ++i) out[i] += so[i];
    }
  }
  return aux;
}

template <typename T>
void moe_ffn_backward(const cpu::ComputeContext& ctx, T* d_x, const MoeFfnGrads<T>& grads, MoeFfnScratch<T>& sc,
                      const T* d_out, const T* x, const MoeFfnActivations<T>& act, const MoeFfnWeights<T>& w,
                      const MoeFfnShape& s, const MoeFfnBackwardTerms& terms) {
  const MoeAuxCoefficients& coef = terms.coef;
  const auto& plan = act.plan;
  const int64_t S = plan.n_slots(), R = s.route_rows();
  // Scratch shared by the layers, whose slot counts (top-p) and largest experts differ: grown only (core/grow.h).
  grow_to(sc.d_y_grouped, S * s.d), grow_to(sc.d_slot_weight, S), grow_to(sc.d_x_grouped, S * s.d);
  // The SwiGLU gradients are needed within one expert's backward only: the same rows serve every expert and stay
  // in cache between the GEMMs and the elementwise pass that share them.
  const int64_t row_capacity = expert_row_capacity(s, plan.max_expert_rows());
  grow_to(sc.d_act, row_capacity * s.h), grow_to(sc.d_g, row_capacity * s.h), grow_to(sc.d_u, row_capacity * s.h);

  // Expert path: combine -> experts -> dispatch gives the gradient of x through the expert outputs.
  {
    profile::Scope p("bwd moe.combine", 0);
    routing::combine_backward(sc.d_y_grouped.data(), sc.d_slot_weight.data(), d_out, act.y_grouped.data(), plan, s.d);
  }
  // bf16: the expert weight gradients are made in rows that stay in cache and then reach grads (written when they
  // hold zeros), where a GEMM accumulating straight into grads waited on memory. f32 GEMMs are too slow to gain.
  // A bf16 model's expert activations were kept in bf16 by the forward (act_bf16).
  const bool bf16 = bf16_experts<T>(ctx);
  SwigluGradStaging<T> staging;
  if (bf16) {
    sc.d_weight_rows.resize(s.h * s.d);
    staging = {sc.d_weight_rows.data(), terms.grads_zero, terms.tally};
  }
  MOELAB_ASSERT(!bf16 || act.act_bf16.size() >= static_cast<size_t>(bf16_act_rows(plan) * s.h),
                "a bf16 MoE backward follows a bf16 training forward");
  for (int64_t e = 0, r_bf16 = 0; e < s.E; ++e) {  // r_bf16: the expert's first row in act_bf16
    const int64_t r = plan.expert_offsets[e], n = plan.expert_rows(e);
    const SwigluSaved<T> saved{act.x_grouped.data() + r * s.d, act.g.data() + r * s.h, act.u.data() + r * s.h,
                               bf16 ? nullptr : act.act.data() + r * s.h,
                               bf16 ? act.act_bf16.data() + r_bf16 * s.h : nullptr};
    r_bf16 += cpu::bf16_padded_rows(n);
    swiglu_mlp_backward(ctx, sc.d_x_grouped.data() + r * s.d, grads.experts[e],
                        {sc.d_act.data(), sc.d_g.data(), sc.d_u.data()}, sc.d_y_grouped.data() + r * s.d, saved,
                        w.experts[e], {n, s.d, s.h}, staging);
  }
  {
    profile::Scope p("bwd moe.dispatch", 0);
    routing::dispatch_backward(d_x, sc.d_x_grouped.data(), plan, s.d);
  }
  if (s.shared_hidden > 0) {
    const int64_t N = s.N(), hs = s.shared_hidden;
    sc.d_shared_act.resize(N * hs), sc.d_shared_g.resize(N * hs), sc.d_shared_u.resize(N * hs);
    sc.d_x_shared.resize(N * s.d);
    const T* d_shared_out = d_out;
    if (s.shared_gate) {  // the gate's own gradients, and the gradient that reaches the shared experts through it
      sc.d_shared_out.resize(N * s.d);
      ops::sigmoid_gate_backward({sc.d_shared_out.data(), d_x, grads.shared_gate}, d_out,
                                 {x, w.shared_gate, act.shared_out.data(), act.shared_gate.data()}, N, s.d);
      d_shared_out = sc.d_shared_out.data();
    }
    swiglu_mlp_backward(ctx, sc.d_x_shared.data(), grads.shared,
                        {sc.d_shared_act.data(), sc.d_shared_g.data(), sc.d_shared_u.data()}, d_shared_out,
                        {x, act.shared_g.data(), act.shared_u.data(), act.shared_act.data()}, w.shared, {N, s.d, hs});
    const T* g = sc.d_x_shared.data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < N * s.d; ++i) d_x[i] += g[i];
  }
  if (s.hash_router) return;  // no router: nothing else to differentiate
  profile::Scope p("bwd moe.routing", 4.0 * R * s.d * s.E);

  // Router path: the slot weights' gradient reaches the probabilities through the rule, or the logits directly for a
  // rule that reads them; load balance and entropy reach the probabilities, the z-loss the logits.
  sc.d_probs.resize(R * s.E), sc.d_logits.resize(R * s.E), sc.d_route_in.resize(R * s.d);
  const T* d_route_weight = sc.d_slot_weight.data();
  const auto& route_plan = s.granularity == Granularity::Sequence ? act.route_plan : plan;
  if (s.granularity == Granularity::Sequence) {
    grow_to(sc.d_route_slot_weight, route_plan.n_slots());
    routing::expand_sequence_plan_backward(sc.d_route_slot_weight.data(), sc.d_slot_weight.data(), route_plan, s.T);
    d_route_weight = sc.d_route_slot_weight.data();
  }
  const routing::SelectionRuleInfo& rule = routing::selection_rule(s.rule);
  const routing::RouterRows<T> rows{act.router_probs.data(), act.router_logits.data(), R, s.E};
  const bool direct = rule.reads_logits || coef.z_loss != 0.0;  // a gradient reaches the logits directly
  if (direct) sc.d_logits_direct.resize(R * s.E);
  if (rule.reads_logits) {
    rule.ops<T>().backward(sc.d_logits_direct.data(), d_route_weight, rows, route_plan, s.rule_settings());
    sc.d_probs.assign(R * s.E, T(0));
  } else {
    rule.ops<T>().backward(sc.d_probs.data(), d_route_weight, rows, route_plan, s.rule_settings());
    if (direct) sc.d_logits_direct.assign(R * s.E, T(0));
  }
  if (coef.load_balance != 0.0)
    routing::load_balance_backward(sc.d_probs.data(), coef.load_balance, route_plan, s.load_balance_divisor());
  if (coef.entropy != 0.0)
    routing::entropy_loss_backward(sc.d_probs.data(), coef.entropy, act.router_probs.data(), R, s.E);
  if (coef.z_loss != 0.0)
    routing::z_loss_backward(sc.d_logits_direct.data(), coef.z_loss, act.router_logits.data(), R, s.E);
  const T* d_logits_extra = direct ? sc.d_logits_direct.data() : nullptr;
  const T* route_in = s.granularity == Granularity::Token ? x : act.route_in.data();
  routing::router_backward(sc.d_route_in.data(), grads.router, sc.d_logits.data(), {sc.d_probs.data(), d_logits_extra},
                           {route_in, w.router, act.router_probs.data()}, {R, s.d, s.E}, s.gating);
  // x feeds both the router (directly or through the pooling) and the experts: the gradients add.
  switch (s.granularity) {
    case Granularity::Token: {
      const T* g = sc.d_route_in.data();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < R * s.d; ++i) d_x[i] += g[i];
      break;
    }
    case Granularity::Sequence:
      routing::sequence_mean_backward(d_x, sc.d_route_in.data(), s.B, s.T, s.d);
      break;
    case Granularity::Prefix:
      routing::prefix_mean_backward(d_x, sc.d_route_in.data(), s.B, s.T, s.d);
      break;
  }
}

template MoeAuxLosses moe_ffn_forward<float>(const cpu::ComputeContext&, float*, MoeFfnActivations<float>&,
                                             MoeFfnScratch<float>&, const float*, const int32_t*,
                                             const MoeFfnWeights<float>&, const MoeFfnShape&, bool);
template MoeAuxLosses moe_ffn_forward<double>(const cpu::ComputeContext&, double*, MoeFfnActivations<double>&,
                                              MoeFfnScratch<double>&, const double*, const int32_t*,
                                              const MoeFfnWeights<double>&, const MoeFfnShape&, bool);
template void moe_ffn_backward<float>(const cpu::ComputeContext&, float*, const MoeFfnGrads<float>&,
                                      MoeFfnScratch<float>&, const float*, const float*,
                                      const MoeFfnActivations<float>&, const MoeFfnWeights<float>&, const MoeFfnShape&,
                                      const MoeFfnBackwardTerms&);
template void moe_ffn_backward<double>(const cpu::ComputeContext&, double*, const MoeFfnGrads<double>&,
                                       MoeFfnScratch<double>&, const double*, const double*,
                                       const MoeFfnActivations<double>&, const MoeFfnWeights<double>&,
                                       const MoeFfnShape&, const MoeFfnBackwardTerms&);

}  // namespace moelab
