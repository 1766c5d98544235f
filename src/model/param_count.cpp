#include "model/param_count.h"

#include <array>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace moelab {

namespace {

// Display order of the parts: input to output, the routed experts next to their router.
constexpr std::array kPartOrder = {ParamGroup::Embedding, ParamGroup::Attention, ParamGroup::Norm,
                                   ParamGroup::Router,    ParamGroup::Expert,    ParamGroup::SharedExpert,
                                   ParamGroup::DenseFfn,  ParamGroup::LmHead};

size_t part_index(ParamGroup group) {
  for (size_t i = 0; i < kPartOrder.size(); ++i)
    if (kPartOrder[i] == group) return i;
  MOELAB_ASSERT(false, "ParamGroup missing from the parameter count's part list");
  return 0;
}

}  // namespace

std::string_view part_name(ParamGroup group) {
  // No default: a new ParamGroup makes -Wswitch point here.
  switch (group) {
    case ParamGroup::Embedding:
      return "embedding";
    case ParamGroup::Attention:
      return "attention";
    case ParamGroup::Norm:
      return "norms";
    case ParamGroup::Router:
      return "router";
    case ParamGroup::Expert:
      return "experts";
    case ParamGroup::SharedExpert:
      return "shared_experts";
    case ParamGroup::DenseFfn:
      return "dense_ffn";
    case ParamGroup::LmHead:
      return "lm_head";
  }
  return "unknown";
}

ParamCount count_params(const Config& cfg) { return count_params(cfg, cfg.routing.top_k); }

ParamCount count_params(const Config& cfg, int64_t experts_per_token) {
  MOELAB_ASSERT(experts_per_token >= 0 && experts_per_token <= cfg.moe.n_experts,
                "experts_per_token must be between 0 and moe.n_experts");
  ParamCount c;
  c.n_layers = cfg.model.n_layers;
  for (int64_t i = 0; i < c.n_layers; ++i) c.moe_layers += is_moe_layer(cfg.moe, i) ? 1 : 0;
  c.n_experts = cfg.moe.n_experts;
  c.experts_per_token = experts_per_token;
  for (ParamGroup g : kPartOrder) c.parts.push_back({g, part_name(g)});

  const ParamTable table(cfg);
  for (const ParamSpec& s : table.specs()) c.parts[part_index(s.group)].total += s.numel;
  for (ParamPart& p : c.parts) {
    if (p.group == ParamGroup::Expert) {
      // Every routed expert of every MoE layer has the same size, so the active share is exact.
      const int64_t experts = c.moe_layers * c.n_experts;
      MOELAB_ASSERT(experts == 0 ? p.total == 0 : p.total % experts == 0, "routed experts differ in size");
      p.active = experts == 0 ? 0 : p.total / experts * c.moe_layers * experts_per_token;
    } else {
      p.active = p.total;
    }
    c.total += p.total;
    c.active += p.active;
  }
  MOELAB_ASSERT(c.total == table.total_numel(), "parameter parts do not add up to the table's total");
  return c;
}

std::string human_count(int64_t n) {
  if (n < 1000) return std::to_string(n);
  // The unit is chosen on the rounded value, so 999,960 reads 1.0M rather than 1000.0K.
  const double x = static_cast<double>(n);
  char buf[48];
  if (std::round(x / 1e2) < 1e4) {
    std::snprintf(buf, sizeof buf, "%.1fK", x / 1e3);
  } else if (std::round(x / 1e5) < 1e4) {
    std::snprintf(buf, sizeof buf, "%.1fM", x / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2fB", x / 1e9);
  }
  return buf;
}

nlohmann::json to_json(const ParamCount& c) {
  nlohmann::json parts = nlohmann::json::array();
  for (const ParamPart& p : c.parts)
    parts.push_back({{"part", std::string(p.name)}, {"total", p.total}, {"active", p.active}});
  return {{"total", c.total},
          {"active", c.active},
          {"n_layers", c.n_layers},
          {"moe_layers", c.moe_layers},
          {"n_experts", c.n_experts},
          {"experts_per_token", c.experts_per_token},
          {"parts", parts}};
}

}  // namespace moelab
