#include "routing/selection_rule.h"

#include <array>

#include "core/error.h"
#include "routing/capacity.h"
#include "routing/expert_choice.h"
#include "routing/top_k.h"
#include "routing/top_k_then_softmax.h"
#include "routing/top_p.h"

namespace moelab::routing {
namespace {

template <typename T>
RuleOps<T> top_k_ops() {
  return {[](DispatchPlan<T>& plan, const RouterRows<T>& rows, const RuleSettings& s) {
            top_k_forward(plan, rows.probs, rows.R, rows.E, s.top_k, s.renormalize);
          },
          [](T* d_probs, const T* d_slot_weight, const RouterRows<T>& rows, const DispatchPlan<T>& plan,
             const RuleSettings& s) { top_k_backward(d_probs, d_slot_weight, rows.probs, plan, s.renormalize); }};
}

template <typename T>
RuleOps<T> top_p_ops() {
  return {[](DispatchPlan<T>& plan, const RouterRows<T>& rows, const RuleSettings& s) {
            top_p_forward(plan, rows.probs, rows.R, rows.E, s.top_p, s.max_k);
          },
          [](T* d_probs, const T* d_slot_weight, const RouterRows<T>&, const DispatchPlan<T>& plan,
             const RuleSettings&) { top_p_backward(d_probs, d_slot_weight, plan); }};
}

template <typename T>
RuleOps<T> expert_choice_ops() {
  return {[](DispatchPlan<T>& plan, const RouterRows<T>& rows, const RuleSettings& s) {
            const double cf = s.capacity_factor > 0 ? s.capacity_factor : 1.0;
            expert_choice_forward(plan, rows.probs, rows.R, rows.E,
                                  expert_capacity(cf, rows.R, static_cast<double>(s.top_k), rows.E));
          },
          [](T* d_probs, const T* d_slot_weight, const RouterRows<T>&, const DispatchPlan<T>& plan,
             const RuleSettings&) { expert_choice_backward(d_probs, d_slot_weight, plan); }};
}

template <typename T>
RuleOps<T> top_k_then_softmax_ops() {
  return {[](DispatchPlan<T>& plan, const RouterRows<T>& rows, const RuleSettings& s) {
            top_k_then_softmax_forward(plan, rows.logits, rows.R, rows.E, s.top_k);
          },
          [](T* d_logits, const T* d_slot_weight, const RouterRows<T>&, const DispatchPlan<T>& plan,
             const RuleSettings&) { top_k_then_softmax_backward(d_logits, d_slot_weight, plan); }};
}

const std::vector<Granularity> kEveryGranularity = {Granularity::Token, Granularity::Sequence, Granularity::Prefix};
const std::vector<Gating> kEveryGating = {Gating::Softmax, Gating::Sigmoid};

// One row per rule, in enumerator order.
std::vector<SelectionRuleInfo> make_registry() {
  std::vector<SelectionRuleInfo> rows;
  rows.push_back({.rule = SelectionRule::TopK,
                  .k_slots_per_token = true,
                  .takes_selection_bias = true,
                  .capacity = CapacityUse::Drops,
                  .gatings = kEveryGating,
                  .granularities = kEveryGranularity,
                  .ops_float = top_k_ops<float>(),
                  .ops_double = top_k_ops<double>()});
  rows.push_back({.rule = SelectionRule::TopP,
                  .gatings = {Gating::Softmax},
                  .gating_reason = "a cumulative probability threshold needs scores that form a distribution",
                  .granularities = kEveryGranularity,
                  .ops_float = top_p_ops<float>(),
                  .ops_double = top_p_ops<double>()});
  rows.push_back({.rule = SelectionRule::ExpertChoice,
                  .capacity = CapacityUse::Sets,
                  .gatings = kEveryGating,
                  .granularities = {Granularity::Token, Granularity::Sequence},
                  .granularity_reason = "expert choice looks at every token of the batch, which defeats causal "
                                        "prefix routing",
                  .ops_float = expert_choice_ops<float>(),
                  .ops_double = expert_choice_ops<double>()});
  rows.push_back({.rule = SelectionRule::TopKThenSoftmax,
                  .reads_logits = true,
                  .k_slots_per_token = true,
                  .gatings = kEveryGating,
                  .granularities = kEveryGranularity,
                  .ops_float = top_k_then_softmax_ops<float>(),
                  .ops_double = top_k_then_softmax_ops<double>()});
  return rows;
}

}  // namespace

const SelectionRuleInfo& selection_rule(SelectionRule rule) {
  static const std::vector<SelectionRuleInfo> registry = make_registry();
  const size_t i = static_cast<size_t>(rule);
  MOELAB_ASSERT(i < registry.size() && registry[i].rule == rule, "every selection rule has its registry row");
  return registry[i];
}

}  // namespace moelab::routing
