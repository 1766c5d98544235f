// Routing statistics of a model, per MoE layer, accumulated over any number of forward passes (one training
// step, or a whole evaluation): the counts of routing/routing_stats.h, summarised as JSON for the metrics log
// and `moelab eval --json`.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "model/model.h"
#include "routing/routing_stats.h"

namespace moelab {

class RoutingTally {
 public:
  // Adds what every MoE layer of the model decided in its last forward pass.
  void add(const Model& model);
  // One object per MoE layer, in depth order: {"layer": i, <routing_stats fields>}. baseline_k is the top-k the
  // activated-parameter fraction is measured against.
  nlohmann::json to_json(int64_t baseline_k) const;

 private:
  std::vector<int64_t> layers_;
  std::vector<routing::RoutingCounts> counts_;
};

}  // namespace moelab
