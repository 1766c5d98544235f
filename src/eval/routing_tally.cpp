#include "eval/routing_tally.h"

namespace moelab {

void RoutingTally::add(const Model& model) {
  const auto routing = model.layer_routing();
  if (counts_.empty()) {
    counts_.resize(routing.size());
    for (const auto& r : routing) layers_.push_back(r.layer);
  }
  for (size_t i = 0; i < routing.size(); ++i) {
    const auto& r = routing[i];
    if (r.probs)
      routing::accumulate_routing_counts(counts_[i], *r.plan, r.probs, r.dropped);
    else
      routing::accumulate_routing_counts(counts_[i], *r.plan);
  }
}

nlohmann::json RoutingTally::to_json(int64_t baseline_k) const {
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < counts_.size(); ++i) {
    nlohmann::json j = routing::to_json(routing::routing_stats(counts_[i], baseline_k));
    j["layer"] = layers_[i];
    layers.push_back(std::move(j));
  }
  return layers;
}

}  // namespace moelab
