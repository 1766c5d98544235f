// Parameter counting: paper 2's model against the hand formula, agreement with the ParamTable, tied embeddings,
// dense layers, human units, and `moelab params` as a user runs it.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "model/config.h"
#include "model/param_count.h"
#include "model/param_table.h"
#include "support/errors.h"
#include "support/run_moelab.h"
#include "support/synthetic_data.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

// Paper 2's model: 24 MoE layers, d_model 1024, 16 heads, 16 experts of hidden 2816, vocab 32000, untied.
Config paper2(int64_t top_k) {
  Config cfg;
  cfg.model.vocab_size = 32000;
  cfg.model.d_model = 1024;
  cfg.model.n_layers = 24;
  cfg.model.n_heads = 16;
  cfg.moe.n_experts = 16;
  cfg.moe.expert_hidden = 2816;
  cfg.routing.top_k = top_k;
  validate(cfg);
  return cfg;
}

const ParamPart& part(const ParamCount& c, ParamGroup g) {
  for (const ParamPart& p : c.parts)
    if (p.group == g) return p;
  ADD_FAILURE() << "no part " << part_name(g);
  return c.parts.front();
}

// The hand formula: L (4 d^2 + d E + E 3 d h + 2 d) + 2 V d + d, active with k of the E experts.
constexpr int64_t L = 24, d = 1024, E = 16, h = 2816, V = 32000;
constexpr int64_t kPaper2Total = L * (4 * d * d + d * E + E * 3 * d * h + 2 * d) + 2 * V * d + d;
constexpr int64_t active_paper2(int64_t k) { return L * (4 * d * d + d * E + k * 3 * d * h + 2 * d) + 2 * V * d + d; }

TEST(ParamCount, Paper2MatchesTheHandFormulaAndThePaper) {
  static_assert(kPaper2Total == 3488531456 && active_paper2(1) == 374260736 && active_paper2(2) == 581878784);
  for (int64_t k : {1, 2}) {
    const ParamCount c = count_params(paper2(k));
    EXPECT_EQ(c.total, kPaper2Total);
    EXPECT_EQ(c.active, active_paper2(k));
    EXPECT_EQ(c.n_layers, L);
    EXPECT_EQ(c.moe_layers, L);
    EXPECT_EQ(c.n_experts, E);
    EXPECT_EQ(c.experts_per_token, k);
    EXPECT_EQ(part(c, ParamGroup::Embedding).total, V * d);
    EXPECT_EQ(part(c, ParamGroup::LmHead).total, V * d);
    EXPECT_EQ(part(c, ParamGroup::Attention).total, L * 4 * d * d);
    EXPECT_EQ(part(c, ParamGroup::Norm).total, L * 2 * d + d);
    EXPECT_EQ(part(c, ParamGroup::Router).total, L * d * E);
    EXPECT_EQ(part(c, ParamGroup::Expert).total, L * E * 3 * d * h);
    EXPECT_EQ(part(c, ParamGroup::Expert).active, L * k * 3 * d * h);
    EXPECT_EQ(part(c, ParamGroup::DenseFfn).total, 0);
    for (const ParamPart& p : c.parts) {
      if (p.group != ParamGroup::Expert) {
        EXPECT_EQ(p.active, p.total) << p.name;
      }
    }
  }
  EXPECT_EQ(human_count(count_params(paper2(1)).active), "374.3M");
  EXPECT_EQ(human_count(count_params(paper2(2)).active), "581.9M");
  EXPECT_EQ(human_count(count_params(paper2(2)).total), "3.49B");
}

TEST(ParamCount, PartsAreEveryPartOnceAndAddUpToTheTable) {
  const std::array<ParamGroup, 8> order = {ParamGroup::Embedding, ParamGroup::Attention, ParamGroup::Norm,
                                           ParamGroup::Router,    ParamGroup::Expert,    ParamGroup::SharedExpert,
                                           ParamGroup::DenseFfn,  ParamGroup::LmHead};
  struct Shape {
    int64_t vocab, d_model, layers, heads, kv_heads, experts, hidden, top_k, first_dense, moe_every, dense_hidden;
    bool tied;
    int64_t shared = 0;
  };
  for (const Shape& s :
       {Shape{32000, 1024, 24, 16, 0, 16, 2816, 2, 0, 1, 0, false}, Shape{97, 12, 5, 3, 1, 7, 5, 3, 1, 2, 0, false},
        Shape{61, 20, 3, 5, 5, 3, 9, 1, 3, 1, 13, true}, Shape{53, 16, 3, 2, 0, 4, 8, 1, 1, 1, 0, false, 2},
        Shape{1, 2, 1, 1, 0, 1, 1, 1, 0, 3, 0, true}}) {
    Config cfg;
    cfg.model = {.vocab_size = s.vocab,
                 .d_model = s.d_model,
                 .n_layers = s.layers,
                 .n_heads = s.heads,
                 .n_kv_heads = s.kv_heads,
                 .tie_embeddings = s.tied};
    cfg.moe = {.n_experts = s.experts,
               .expert_hidden = s.hidden,
               .first_dense_layers = s.first_dense,
               .moe_every = s.moe_every,
               .dense_hidden = s.dense_hidden,
               .n_shared_experts = s.shared};
    cfg.routing.top_k = s.top_k;
    validate(cfg);
    const ParamCount c = count_params(cfg);
    const ParamTable table(cfg);
    ASSERT_EQ(c.parts.size(), order.size());
    int64_t total = 0, active = 0;
    for (size_t i = 0; i < order.size(); ++i) {
      EXPECT_EQ(c.parts[i].group, order[i]);
      EXPECT_EQ(c.parts[i].name, part_name(order[i]));
      int64_t in_table = 0;
      for (const ParamSpec& spec : table.specs()) in_table += spec.group == order[i] ? spec.numel : 0;
      EXPECT_EQ(c.parts[i].total, in_table) << c.parts[i].name;
      total += c.parts[i].total;
      active += c.parts[i].active;
    }
    EXPECT_EQ(c.total, table.total_numel());
    EXPECT_EQ(total, c.total);
    EXPECT_EQ(active, c.active);
  }
}

TEST(ParamCount, TiedEmbeddingsRemoveTheLmHead) {
  Config cfg = paper2(2);
  cfg.model.tie_embeddings = true;
  const ParamCount c = count_params(cfg);
  EXPECT_EQ(part(c, ParamGroup::LmHead).total, 0);
  EXPECT_EQ(part(c, ParamGroup::LmHead).active, 0);
  EXPECT_EQ(part(c, ParamGroup::Embedding).total, V * d);
  EXPECT_EQ(c.total, kPaper2Total - V * d);
  EXPECT_EQ(c.active, active_paper2(2) - V * d);
}

TEST(ParamCount, DenseLayersCountFullyAsActive) {
  // 6 layers: 0 and 1 dense, then MoE at 2 and 4, dense at 3 and 5. Dense hidden defaults to expert_hidden * top_k.
  Config cfg;
  cfg.model = {.vocab_size = 50, .d_model = 8, .n_layers = 6, .n_heads = 2};
  cfg.moe = {.n_experts = 5, .expert_hidden = 6, .first_dense_layers = 2, .moe_every = 2};
  cfg.routing.top_k = 2;
  validate(cfg);
  const ParamCount c = count_params(cfg);
  const int64_t dense_ffn = 4 * 3 * 8 * (6 * 2), experts = 2 * 5 * 3 * 8 * 6;
  EXPECT_EQ(c.moe_layers, 2);
  EXPECT_EQ(part(c, ParamGroup::DenseFfn).total, dense_ffn);
  EXPECT_EQ(part(c, ParamGroup::DenseFfn).active, dense_ffn);
  EXPECT_EQ(part(c, ParamGroup::Router).total, 2 * 8 * 5);
  EXPECT_EQ(part(c, ParamGroup::Expert).total, experts);
  EXPECT_EQ(part(c, ParamGroup::Expert).active, 2 * 2 * 3 * 8 * 6);
  const int64_t rest = 2 * 50 * 8 + 6 * 4 * 8 * 8 + 6 * 2 * 8 + 8 + 2 * 8 * 5;
  EXPECT_EQ(c.total, rest + dense_ffn + experts);
  EXPECT_EQ(c.active, rest + dense_ffn + 2 * 2 * 3 * 8 * 6);

  cfg.moe.first_dense_layers = 6;  // no MoE layer at all: everything is active
  validate(cfg);
  const ParamCount dense = count_params(cfg);
  EXPECT_EQ(dense.moe_layers, 0);
  EXPECT_EQ(part(dense, ParamGroup::Expert).total, 0);
  EXPECT_EQ(dense.active, dense.total);
}

TEST(ParamCount, ExplicitExpertsPerToken) {
  const Config cfg = paper2(2);
  EXPECT_EQ(count_params(cfg, 0).active, active_paper2(0));
  EXPECT_EQ(count_params(cfg, 16).active, kPaper2Total);
  EXPECT_EQ(count_params(cfg, 1).active, count_params(paper2(1)).active);
}

TEST(ParamCount, HumanCount) {
  EXPECT_EQ(human_count(0), "0");
  EXPECT_EQ(human_count(999), "999");
  EXPECT_EQ(human_count(1000), "1.0K");
  EXPECT_EQ(human_count(50176), "50.2K");
  EXPECT_EQ(human_count(999949), "999.9K");
  EXPECT_EQ(human_count(999950), "1.0M");  // the unit follows the rounded value
  EXPECT_EQ(human_count(32768000), "32.8M");
  EXPECT_EQ(human_count(999949999), "999.9M");
  EXPECT_EQ(human_count(999950000), "1.00B");
  EXPECT_EQ(human_count(3488531456), "3.49B");
  EXPECT_EQ(human_count(123456789012), "123.46B");
}

TEST(ParamCount, JsonHasExactIntegers) {
  const ParamCount c = count_params(paper2(1));
  const nlohmann::json j = to_json(c);
  EXPECT_EQ(j.at("total").get<int64_t>(), kPaper2Total);
  EXPECT_EQ(j.at("active").get<int64_t>(), active_paper2(1));
  EXPECT_EQ(j.at("experts_per_token").get<int64_t>(), 1);
  EXPECT_EQ(j.at("n_experts").get<int64_t>(), E);
  EXPECT_EQ(j.at("moe_layers").get<int64_t>(), L);
  EXPECT_EQ(j.at("n_layers").get<int64_t>(), L);
  ASSERT_EQ(j.at("parts").size(), c.parts.size());
  for (size_t i = 0; i < c.parts.size(); ++i) {
    EXPECT_EQ(j["parts"][i].at("part").get<std::string>(), c.parts[i].name);
    EXPECT_EQ(j["parts"][i].at("total").get<int64_t>(), c.parts[i].total);
    EXPECT_EQ(j["parts"][i].at("active").get<int64_t>(), c.parts[i].active);
  }
}

using Result = testing::CommandResult;

Result run(const std::string& args) { return testing::run_moelab(args); }

const char* kPaper2Toml =
    "[model]\nvocab_size = 32000\nd_model = 1024\nn_layers = 24\nn_heads = 16\n"
    "[moe]\nn_experts = 16\nexpert_hidden = 2816\n"
    "[routing]\ntop_k = 1\n";

TEST(ParamsCommand, PrintsTheTable) {
  testing::TempDir dir;
  testing::write_all(dir.file("p2.toml"), kPaper2Toml);
  const Result help = run("params --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_CONTAINS(help.output, "Usage");
  const Result r = run("params " + dir.file("p2.toml"));
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* piece : {"embedding", "attention", "norms", "router", "experts", "dense_ffn", "lm_head", "total",
                            "374.3M", "374260736", "3.49B", "3488531456", "207.6M", "207618048"})
    EXPECT_CONTAINS(r.output, piece);
  const Result top2 = run("params " + dir.file("p2.toml") + " --set routing.top_k=2");
  ASSERT_EQ(top2.status, 0) << top2.output;
  EXPECT_CONTAINS(top2.output, "581.9M");
  EXPECT_CONTAINS(top2.output, "581878784");
}

TEST(ParamsCommand, JsonParses) {
  testing::TempDir dir;
  testing::write_all(dir.file("p2.toml"), kPaper2Toml);
  const Result r = run("params " + dir.file("p2.toml") + " --set routing.top_k=2 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j.at("total").get<int64_t>(), kPaper2Total);
  EXPECT_EQ(j.at("active").get<int64_t>(), active_paper2(2));
  EXPECT_EQ(j.at("vocab_size").get<int64_t>(), V);
  EXPECT_EQ(j.at("config").get<std::string>(), dir.file("p2.toml"));
  EXPECT_EQ(j.at("parts").size(), 8u);
}

TEST(ParamsCommand, VocabSizeFromTheDataFolderOrAClearError) {
  testing::TempDir dir;
  testing::write_bigram_data_folder(dir.file("data"), 97);
  testing::write_all(dir.file("c.toml"), "[data]\ndir = \"" + dir.file("data") +
                                             "\"\n[model]\nd_model = 8\nn_layers = 1\nn_heads = 2\n"
                                             "[moe]\nn_experts = 2\nexpert_hidden = 4\n[routing]\ntop_k = 1\n");
  const Result r = run("params " + dir.file("c.toml") + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j.at("vocab_size").get<int64_t>(), 97);
  // embedding + head, attention, norms, router, 2 experts (1 active).
  const int64_t rest = 2 * 97 * 8 + 4 * 8 * 8 + 3 * 8 + 8 * 2;
  EXPECT_EQ(j.at("total").get<int64_t>(), rest + 2 * 3 * 8 * 4);
  EXPECT_EQ(j.at("active").get<int64_t>(), rest + 3 * 8 * 4);

  const Result missing = run("params " + dir.file("c.toml") + " --set data.dir=" + dir.file("nodata"));
  EXPECT_EQ(missing.status, 1) << missing.output;
  EXPECT_CONTAINS(missing.output, "nodata");
  EXPECT_CONTAINS(missing.output, "does not exist");
  EXPECT_CONTAINS(missing.output, "--set model.vocab_size=N");

  const Result bad = run("params " + dir.file("c.toml") + " --set routing.top_k=3");
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_CONTAINS(bad.output, "routing.top_k");
}

}  // namespace
}  // namespace moelab
