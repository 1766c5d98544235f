// Whole-model routing causality: with prefix (and token) granularity, changing token t+1 of a sequence leaves
// the routing of tokens 0..t unchanged in every MoE layer (attention is causal and the router sees the running
// mean); sequence granularity, which sees the whole sequence, does change earlier tokens' routing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/config.h"
#include "model/model.h"

namespace moelab {
namespace {

// Per MoE layer, the experts of tokens [0, upto] of sequence 0, in slot order.
std::vector<std::vector<int32_t>> experts_up_to(const Model& m, int64_t upto, int64_t T) {
  std::vector<std::vector<int32_t>> out;
  for (const auto& r : m.layer_routing()) {
    const auto& plan = *r.plan;
    std::vector<int32_t> e;
    const bool per_sequence = plan.n_tokens != static_cast<int64_t>(T);  // sequence plans hold one row per sequence
    const int64_t rows = per_sequence ? 1 : upto + 1;
    for (int64_t t = 0; t < rows; ++t)
      for (int32_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s) e.push_back(plan.slot_expert[s]);
    out.push_back(e);
  }
  return out;
}

std::vector<std::vector<int32_t>> routing_after_change(const std::string& granularity, int64_t t, bool change) {
  Config cfg;
  cfg.model.vocab_size = 50, cfg.model.d_model = 16, cfg.model.n_layers = 2, cfg.model.n_heads = 2;
  cfg.moe.n_experts = 6, cfg.moe.expert_hidden = 8;
  cfg.routing.granularity = parse_design<Granularity>(granularity, "granularity");
  validate(cfg);
  Model m(cfg);
  m.init_params(9);
  for (const auto& spec : m.table().specs())  // decisive routers, so that a change shows
    if (spec.group == ParamGroup::Router)
      for (int64_t i = 0; i < spec.numel; ++i) m.mutable_params()[spec.offset + i] *= 50.0f;
  const int64_t T = 12;
  std::vector<int32_t> ids(T);
  for (int64_t i = 0; i < T; ++i) ids[i] = static_cast<int32_t>((i * 7 + 3) % 50);
  if (change)
    for (int64_t i = t + 1; i < T; ++i) ids[i] = static_cast<int32_t>((ids[i] + 17 + i) % 50);
  m.forward(ids.data(), nullptr, 1, T);
  return experts_up_to(m, t, T);
}

TEST(RoutingCausality, PrefixAndTokenRoutingIgnoreLaterTokens) {
  for (const char* g : {"prefix", "token"})
    for (int64_t t : {0, 4, 10}) EXPECT_EQ(routing_after_change(g, t, false), routing_after_change(g, t, true)) << g;
}

TEST(RoutingCausality, SequenceRoutingSeesLaterTokens) {
  int changed = 0;
  for (int64_t t : {0, 2, 4, 6})
    changed += routing_after_change("sequence", t, false) != routing_after_change("sequence", t, true);
  EXPECT_GT(changed, 0) << "changing later tokens never changed a sequence's experts";
}

}  // namespace
}  // namespace moelab
