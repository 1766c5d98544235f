// The selection rules, in one registry: what the MoE layer runs of a rule (its forward and backward), what the
// load-balance loss divides by, and which other designs it combines with, which the config's validation reads.
//
// Adding a rule: its enumerator and config name (include/moelab/designs.h), a file with its forward and backward
// (top_k.h is the model), one row in selection_rule.cpp; then its hand cases, its cases in
// tests/routing/test_rule_pipeline.cpp (finite differences) and in tests/model/test_model_vs_torch.cpp (the
// whole-model PyTorch oracle, tests/oracle/torch_model.py).
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

#include "moelab/designs.h"
#include "routing/dispatch_plan.h"

namespace moelab::routing {

// The settings a rule may read (routing.top_k, ... of the config).
struct RuleSettings {
  int64_t top_k = 2;
  bool renormalize = true;
  double top_p = 0.4;
  int64_t max_k = 0;
  double capacity_factor = 0;  // expert choice: sets each expert's capacity (0: factor 1)
};

// The router's output over R rows (tokens, or sequences under sequence granularity).
template <typename T>
struct RouterRows {
  const T* probs;   // [R,E] the gating's scores (softmax or sigmoid)
  const T* logits;  // [R,E]
  int64_t R, E;
};

template <typename T>
struct RuleOps {
  // Fills the plan (slots and weights) from the rows.
  void (*forward)(DispatchPlan<T>& plan, const RouterRows<T>& rows, const RuleSettings& settings);
  // Assigns d_scores [R,E], the gradient of the slot weights' loss with respect to the probabilities, or to the
  // logits for a rule that reads them (SelectionRuleInfo::reads_logits), given d_slot_weight [S] from combine.
  void (*backward)(T* d_scores, const T* d_slot_weight, const RouterRows<T>& rows, const DispatchPlan<T>& plan,
                   const RuleSettings& settings);
};

// How a rule uses routing.capacity_factor.
enum class CapacityUse {
  None,   // it cannot be capped: capacity_factor must be 0
  Drops,  // capacity_factor > 0 drops each expert's overflow (routing/capacity.h), with raw (not renormalised)
          // weights and routing not shared by a sequence
  Sets,   // capacity_factor sets each expert's number of tokens (0: factor 1)
};

struct SelectionRuleInfo {
  SelectionRule rule;
  // Chooses and weights from the logits rather than the scores: its gradient reaches the logits directly.
  bool reads_logits = false;
  // Every token gets routing.top_k slots: the load-balance loss divides each expert's slot fraction by k, so that
  // perfect balance scores 1 whatever k (else by 1, as paper 2 does for top-p).
  bool k_slots_per_token = false;
  // Loss-free balancing can bias its choice (routing.bias_update_rate > 0).
  bool takes_selection_bias = false;
  CapacityUse capacity = CapacityUse::None;
  std::vector<Gating> gatings = {};  // the gatings it is defined for
  std::string_view gating_reason = {};
  std::vector<Granularity> granularities = {};  // the granularities it combines with
  std::string_view granularity_reason = {};
  RuleOps<float> ops_float = {};
  RuleOps<double> ops_double = {};

  template <typename T>
  const RuleOps<T>& ops() const {
    if constexpr (std::is_same_v<T, float>)
      return ops_float;
    else
      return ops_double;
  }
  double load_balance_divisor(int64_t top_k) const { return k_slots_per_token ? static_cast<double>(top_k) : 1.0; }
};

// The registry row of a rule; every SelectionRule has one.
const SelectionRuleInfo& selection_rule(SelectionRule rule);

}  // namespace moelab::routing
