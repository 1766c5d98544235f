// Parts of the report with rules of their own: the configuration table, the loss curves and the label heatmaps
// (their diverging colour scale around the uniform share, every class labelled, the page's width kept). The whole
// report is drawn by tests/cli/test_analyze_report.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "analysis/report_content.h"
#include "report/chart.h"
#include "support/errors.h"

namespace moelab::analysis {
namespace {

using nlohmann::json;

TEST(ReportContent, ConfigTableHasOneRowPerSettingUnderItsDottedPath) {
  const json config = json::parse(R"({
    "model": {"d_model": 32, "tie_embeddings": false, "rope": {"theta": 10000.0}},
    "routing": {"rule": "top_k", "top_k": 2, "empty": {}, "list": [1, 2]},
    "seed": 7
  })");
  const auto table = config_table(config);
  const std::vector<std::vector<std::string>> expected = {
      {"setting", "value"},
      {"model.d_model", "32"},
      {"model.rope.theta", "10000.0"},
      {"model.tie_embeddings", "false"},
      {"routing.empty", "{}"},
      {"routing.list", "[1,2]"},
      {"routing.rule", "top_k"},  // a string without its quotes
      {"routing.top_k", "2"},
      {"seed", "7"},
  };
  EXPECT_EQ(table, expected);
  EXPECT_EQ(config_table(json::object()), (std::vector<std::vector<std::string>>{{"setting", "value"}}));
}

// The rows of one series of a line chart: its (x, y) points.
std::vector<std::pair<double, double>> points_of(const json& spec, const std::string& series) {
  std::vector<std::pair<double, double>> out;
  for (const auto& v : spec["data"]["values"])
    if (v["series"] == series) out.emplace_back(v["x"].get<double>(), v["y"].get<double>());
  return out;
}

TEST(ReportContent, LossChartDrawsTrainingAndValidationOnOneStepAxis) {
  LossHistory h;
  h.path = "runs/x/metrics.jsonl";
  h.train_steps = {10, 20, 30};
  h.train_loss = {8.0, 7.0, 6.5};
  h.val_steps = {20, 30};
  h.val_loss = {7.25, 6.75};
  const report::Chart chart = loss_chart(h, 30);
  EXPECT_EQ(chart.id, "loss-curves");
  EXPECT_TRUE(report::is_safe_id(chart.id));
  EXPECT_CONTAINS(chart.caption, "at step 30");
  const json& spec = chart.spec;
  EXPECT_EQ(points_of(spec, "training"), (std::vector<std::pair<double, double>>{{10, 8.0}, {20, 7.0}, {30, 6.5}}));
  EXPECT_EQ(points_of(spec, "validation"), (std::vector<std::pair<double, double>>{{20, 7.25}, {30, 6.75}}));
  EXPECT_EQ(spec["encoding"]["x"]["title"], "step");
  EXPECT_EQ(spec["encoding"]["x"]["axis"]["format"], "d");     // steps are whole numbers
  EXPECT_FALSE(spec["encoding"]["color"].contains("legend"));  // two series: a legend says which is which
  EXPECT_LE(report::estimated_width_px(spec), report::kMaxChartWidthPx);

  LossHistory val_only = h;
  val_only.train_steps.clear(), val_only.train_loss.clear();
  const json only = loss_chart(val_only, 30).spec;
  EXPECT_TRUE(points_of(only, "training").empty());
  EXPECT_EQ(points_of(only, "validation").size(), 2u);
}

// counts [E,C] of one layer from each class's slots per expert, given as [C][E].
Contingency table_of(const std::vector<std::vector<int64_t>>& per_class /*[C][E]*/) {
  Contingency t;
  t.n_labels = static_cast<int64_t>(per_class.size());
  t.n_experts = static_cast<int64_t>(per_class.front().size());
  t.counts.assign(t.n_experts * t.n_labels, 0);
  for (int64_t c = 0; c < t.n_labels; ++c)
    for (int64_t e = 0; e < t.n_experts; ++e) {
      t.counts[e * t.n_labels + c] = per_class[c][e];
      t.total += per_class[c][e];
    }
  return t;
}

// The largest |share - 1/E| over the tables' classes with slots: what the colour scale spans either side of 1/E.
double largest_deviation(const std::vector<Contingency>& tables) {
  double d = 0;
  for (const auto& t : tables)
    for (int64_t c = 0; c < t.n_labels; ++c) {
      int64_t n = 0;
      for (int64_t e = 0; e < t.n_experts; ++e) n += t.counts[e * t.n_labels + c];
      for (int64_t e = 0; n > 0 && e < t.n_experts; ++e)
        d = std::max(d, std::abs(static_cast<double>(t.counts[e * t.n_labels + c]) / static_cast<double>(n) -
                                 1.0 / static_cast<double>(t.n_experts)));
    }
  return d;
}

const json& color_scale_of(const json& panel) { return panel["encoding"]["color"]["scale"]; }

TEST(ReportContent, LabelHeatmapsDivergeAroundTheUniformShareUpToTheLargestDeviation) {
  // Four experts (uniform share 0.25). Layer 0 departs a little from uniform, layer 1 more; class 2 has no slot.
  const std::vector<Contingency> near_uniform = {
      table_of({{30, 20, 25, 25}, {25, 25, 22, 28}, {0, 0, 0, 0}}),
      table_of({{40, 20, 20, 20}, {25, 25, 25, 25}, {0, 0, 0, 0}}),
  };
  const double d = largest_deviation(near_uniform);
  ASSERT_NEAR(d, 0.15, 1e-12);  // layer 1's share of 0.40 sets it, not layer 0's largest departure (0.05)
  const report::Chart chart = label_routing_chart("genre-by-expert", "Where each genre is routed", "genre",
                                                  near_uniform, {"news", "religion", "humor"}, {"layer 0", "layer 1"});
  EXPECT_EQ(chart.id, "genre-by-expert");
  const json& panels = chart.spec["concat"];
  ASSERT_EQ(panels.size(), 2u);
  EXPECT_EQ(chart.spec["resolve"]["scale"]["color"], "shared");  // one scale: layers compare
  for (const auto& panel : panels) {
    const json& scale = color_scale_of(panel);
    EXPECT_EQ(scale["scheme"], "blueorange");
    EXPECT_DOUBLE_EQ(scale["domainMid"].get<double>(), 0.25);
    EXPECT_NEAR(scale["domain"][0].get<double>(), 0.25 - d, 1e-12);
    EXPECT_NEAR(scale["domain"][1].get<double>(), 0.25 + d, 1e-12);
  }
  // The absent class keeps its column, empty.
  EXPECT_EQ(panels[0]["encoding"]["x"]["scale"]["domain"], json({0, 1, 2}));
  for (const auto& v : panels[0]["data"]["values"]) {
    if (v["col"] == 2) {
      EXPECT_TRUE(v["value"].is_null());
    }
  }
  EXPECT_CONTAINS(chart.caption, "1/4 = 0.250");

  // A class sent almost entirely to one expert: shares far below 1/E would take the blue end under 0, where no
  // share can be, so it stops at 0.
  const std::vector<Contingency> concentrated = {table_of({{97, 1, 1, 1}, {25, 25, 25, 25}})};
  const double big = largest_deviation(concentrated);
  ASSERT_GT(big, 0.25);
  const report::Chart pos =
      label_routing_chart("pos-by-expert", "t", "POS class", concentrated, {"NOUN", "VERB"}, {"layer 0"});
  const json& scale = color_scale_of(pos.spec["concat"][0]);
  EXPECT_EQ(scale["domain"][0].get<double>(), 0.0);
  EXPECT_NEAR(scale["domain"][1].get<double>(), 0.25 + big, 1e-12);

  // Every share exactly uniform: still a span around 1/E, all of it drawn white.
  const report::Chart uniform =
      label_routing_chart("x", "t", "genre", {table_of({{5, 5, 5, 5}})}, {"news"}, {"layer 0"});
  const json& flat = color_scale_of(uniform.spec["concat"][0]);
  EXPECT_LT(flat["domain"][0].get<double>(), 0.25);
  EXPECT_GT(flat["domain"][1].get<double>(), 0.25);
}

TEST(ReportContent, LabelHeatmapsLabelEveryClassAndFitThePage) {
  // Brown's 15 genres and 8 experts, in 4 layers as the default model has: every genre name must be on its axis.
  const std::vector<std::string> genres = {"adventure", "belles_lettres", "editorial", "fiction", "government",
                                           "hobbies",   "humor",          "learned",   "lore",    "mystery",
                                           "news",      "religion",       "reviews",   "romance", "science_fiction"};
  const int64_t E = 8, C = static_cast<int64_t>(genres.size());
  std::vector<Contingency> tables;
  for (int l = 0; l < 4; ++l) {
    std::vector<std::vector<int64_t>> per_class(C, std::vector<int64_t>(E));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t e = 0; e < E; ++e) per_class[c][e] = 10 + (c * 7 + e * 3 + l) % 11;
    tables.push_back(table_of(per_class));
  }
  const report::Chart chart = label_routing_chart("genre-by-expert", "t", "genre", tables, genres,
                                                  {"layer 0", "layer 1", "layer 2", "layer 3"});
  EXPECT_LE(report::estimated_width_px(chart.spec), report::kMaxChartWidthPx);
  const json& panels = chart.spec["concat"];
  ASSERT_EQ(panels.size(), 4u);
  EXPECT_GE(chart.spec["columns"].get<int>(), 2);  // two layers a row: they fit with every label
  for (const auto& panel : panels) {
    const json& x = panel["encoding"]["x"];
    EXPECT_GE(panel["width"]["step"].get<int>(), 12);  // room for a label's height across each column
    EXPECT_EQ(x["axis"]["labelOverlap"], false);       // so no label is dropped
    EXPECT_EQ(x["scale"]["domain"].size(), genres.size());
    const std::string expr = x["axis"]["labelExpr"];
    for (const auto& g : genres) EXPECT_CONTAINS(expr, "\"" + g + "\"");
    EXPECT_EQ(panel["encoding"]["y"]["axis"]["labelOverlap"], false);  // every expert too
  }
}

}  // namespace
}  // namespace moelab::analysis
