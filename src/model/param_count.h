// Parameter counting: total and active parameters of a model, split by part. Derived from the ParamTable (every
// tensor with its ParamGroup) so the count can never disagree with the model that gets built.
//
// Active parameters are those one token uses: every tensor except the routed experts, plus experts_per_token of the
// n_experts experts of each MoE layer. The embedding and LM head count fully, as in the papers' accounting (paper 2:
// 374.3M active with top-1, 581.9M with top-2, 3.49B total).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/param_table.h"
#include "moelab/config.h"

namespace moelab {

struct ParamPart {
  ParamGroup group;
  std::string_view name;  // "embedding", "attention", "norms", "router", "experts", "dense_ffn", "lm_head"
  int64_t total = 0;
  int64_t active = 0;
};

struct ParamCount {
  std::vector<ParamPart> parts;  // every part, in the order of part_name's list; zero where the model has none
  int64_t total = 0;             // equals ParamTable(cfg).total_numel()
  int64_t active = 0;            // per token
  int64_t n_layers = 0;
  int64_t moe_layers = 0;         // layers with routed experts (the others have a dense FFN)
  int64_t n_experts = 0;          // routed experts per MoE layer
  int64_t experts_per_token = 0;  // routed experts a token uses in each MoE layer
};

// Short name of a part ("experts" for ParamGroup::Expert), as the table and the JSON show it.
std::string_view part_name(ParamGroup group);

// Counts with experts_per_token = cfg.routing.top_k. cfg.model.vocab_size must be resolved for the embedding and
// LM head to be counted (0 counts them as empty).
ParamCount count_params(const Config& cfg);
// Counts with an explicit number of routed experts per token (between 0 and moe.n_experts).
ParamCount count_params(const Config& cfg, int64_t experts_per_token);

// A count for people: below 1000 exact ("512"), then K and M with one decimal ("374.3M"), B with two ("3.49B").
std::string human_count(int64_t n);

// {"total", "active", "n_layers", "moe_layers", "n_experts", "experts_per_token",
//  "parts": [{"part", "total", "active"}, ...]} with exact integers.
nlohmann::json to_json(const ParamCount& c);

}  // namespace moelab
