// The Vega-Lite spec builders: the data rows, the encodings and the titles they produce, on small inputs whose
// specs can be read off by hand. Whether Vega draws them is test_html_report.cpp's and test_png_export.cpp's part.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "report/chart.h"
#include "support/errors.h"

namespace moelab::report {
namespace {

using nlohmann::json;
using testing::error_of;

const json& values_of(const json& spec) { return spec.at("data").at("values"); }

// Every builder gives a spec with the shared style at its top.
void expect_styled(const json& spec) {
  ASSERT_TRUE(spec.contains("config"));
  EXPECT_EQ(spec["config"]["background"], "white");
  EXPECT_TRUE(spec["config"]["font"].get<std::string>().find("sans-serif") != std::string::npos);
}

TEST(ReportChart, HeatmapHasOneRowPerCellInRowMajorOrderWithTitlesAndTooltip) {
  const std::vector<double> m = {1, 2, 3, 4, 5, 6};  // [2,3]
  const json spec = heatmap(m, 2, 3, {"r0", "r1"}, {"a", "b", "c"}, "layer", "expert", "tokens");
  expect_styled(spec);
  const json& values = values_of(spec);
  ASSERT_EQ(values.size(), 6u);
  EXPECT_EQ(values[5]["row"], 1);
  EXPECT_EQ(values[5]["col"], 2);
  EXPECT_EQ(values[5]["value"], 6.0);
  EXPECT_EQ(values[5]["row_label"], "r1");
  EXPECT_EQ(values[5]["col_label"], "c");
  const json& enc = spec["encoding"];
  EXPECT_EQ(enc["x"]["field"], "col");
  EXPECT_EQ(enc["x"]["title"], "expert");
  EXPECT_EQ(enc["y"]["field"], "row");
  EXPECT_EQ(enc["y"]["title"], "layer");
  // Rows and columns are placed by index and labelled through the axis, so duplicate labels keep their own cells.
  EXPECT_EQ(enc["y"]["axis"]["labelExpr"], R"(["r0","r1"][datum.value])");
  ASSERT_EQ(enc["tooltip"].size(), 3u);
  EXPECT_EQ(enc["tooltip"][2]["field"], "value");
  EXPECT_EQ(enc["tooltip"][2]["title"], "tokens");
  // Six cells: small enough to print the values, so a rect layer and a text layer.
  ASSERT_EQ(spec["layer"].size(), 2u);
  EXPECT_EQ(spec["layer"][0]["mark"]["type"], "rect");
  EXPECT_EQ(spec["layer"][0]["encoding"]["color"]["field"], "value");
  EXPECT_EQ(spec["layer"][0]["encoding"]["color"]["title"], "tokens");
  EXPECT_EQ(spec["layer"][1]["mark"]["type"], "text");
  EXPECT_EQ(spec["layer"][1]["encoding"]["text"]["format"], ".2f");
}

TEST(ReportChart, HeatmapLargeMatrixDrawsCellsOnlyAndUsesIndicesWithoutLabels) {
  std::vector<double> m(40 * 50, 0.5);
  const json spec = heatmap(m, 40, 50, {}, {}, "token", "neuron", "activation");
  EXPECT_EQ(values_of(spec).size(), 2000u);
  EXPECT_FALSE(spec.contains("layer"));
  EXPECT_EQ(spec["mark"]["type"], "rect");
  EXPECT_FALSE(spec["encoding"]["x"]["axis"].contains("labelExpr"));
  EXPECT_FALSE(values_of(spec)[0].contains("row_label"));
  // Auto size: about 420 px for the larger side.
  EXPECT_EQ(spec["width"]["step"], 8);
  EXPECT_EQ(spec["height"]["step"], 8);
}

TEST(ReportChart, HeatmapOptionsSetSchemeDomainAndLabelContrast) {
  HeatmapOptions o;
  o.scheme = ColorScheme::blue_orange;
  o.domain = std::array<double, 2>{-1, 1};
  const json spec = heatmap({-1, 0, 1, std::nan("")}, 2, 2, {}, {}, "a", "b", "r", o);
  const json& scale = spec["layer"][0]["encoding"]["color"]["scale"];
  EXPECT_EQ(scale["scheme"], "blueorange");
  EXPECT_EQ(scale["domainMid"], 0.0);
  EXPECT_EQ(scale["domain"], json({-1.0, 1.0}));
  const json& values = values_of(spec);
  // The ends of a diverging ramp are dark (white labels), its middle light.
  EXPECT_EQ(values[0]["dark"], true);
  EXPECT_EQ(values[1]["dark"], false);
  EXPECT_EQ(values[2]["dark"], true);
  // NaN is written as null: Vega leaves the cell empty.
  EXPECT_TRUE(values[3]["value"].is_null());

  HeatmapOptions blues;
  blues.scheme = ColorScheme::blues;
  const json counts = heatmap({0, 10}, 1, 2, {}, {}, "a", "b", "n", blues);
  EXPECT_EQ(values_of(counts)[0]["dark"], false);  // blues: light at the low end
  EXPECT_EQ(values_of(counts)[1]["dark"], true);
  const json viridis = heatmap({0, 10}, 1, 2, {}, {}, "a", "b", "n");
  EXPECT_EQ(values_of(viridis)[0]["dark"], true);  // viridis: dark at the low end
  EXPECT_EQ(values_of(viridis)[1]["dark"], false);
}

TEST(ReportChart, BarChartKeepsCategoryOrderAndTitles) {
  const json spec = bar_chart({"zeta", "alpha", "mid"}, {3, 1, 2}, "expert", "tokens");
  expect_styled(spec);
  const json& values = values_of(spec);
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(values[0]["category"], "zeta");
  EXPECT_EQ(values[0]["value"], 3.0);
  EXPECT_EQ(spec["mark"]["type"], "bar");
  EXPECT_TRUE(spec["encoding"]["x"]["sort"].is_null());  // data order, not alphabetical
  EXPECT_EQ(spec["encoding"]["x"]["title"], "expert");
  EXPECT_EQ(spec["encoding"]["y"]["title"], "tokens");
  EXPECT_EQ(spec["encoding"]["y"]["type"], "quantitative");
  EXPECT_EQ(spec["encoding"]["tooltip"].size(), 2u);
}

TEST(ReportChart, GroupedBarsHaveOneRowPerSeriesAndCategory) {
  const json spec = grouped_bar_chart({"l0", "l1", "l2"}, {"top-2", "top-p"}, {{2, 2, 2}, {2.4, 1.9, 1.7}}, "layer",
                                      "experts per token", "router");
  const json& values = values_of(spec);
  ASSERT_EQ(values.size(), 6u);
  EXPECT_EQ(values[4]["series"], "top-p");
  EXPECT_EQ(values[4]["category"], "l1");
  EXPECT_EQ(values[4]["value"], 1.9);
  EXPECT_EQ(spec["encoding"]["xOffset"]["field"], "series");
  EXPECT_EQ(spec["encoding"]["color"]["title"], "router");
  EXPECT_EQ(spec["encoding"]["color"]["sort"], json({"top-2", "top-p"}));
}

TEST(ReportChart, HistogramIsAdjacentBars) {
  const json spec = histogram_chart({"1", "2", "3+"}, {10, 40, 5}, "experts per token", "tokens");
  EXPECT_EQ(values_of(spec).size(), 3u);
  EXPECT_EQ(spec["mark"]["type"], "bar");
  EXPECT_LT(spec["encoding"]["x"]["scale"]["paddingInner"].get<double>(), 0.1);
  EXPECT_EQ(spec["encoding"]["x"]["title"], "experts per token");
}

TEST(ReportChart, LineChartRowsPerPointAndLegendOnlyForSeveralSeries) {
  const json two = line_chart({{"train", {0, 1, 2}, {3, 2, 1}}, {"val", {0, 2}, {3.5, 2.5}}}, "step", "loss");
  const json& values = values_of(two);
  ASSERT_EQ(values.size(), 5u);
  EXPECT_EQ(values[3]["series"], "val");
  EXPECT_EQ(values[3]["x"], 0.0);
  EXPECT_EQ(values[3]["y"], 3.5);
  EXPECT_EQ(two["mark"]["type"], "line");
  EXPECT_EQ(two["mark"]["point"], true);
  EXPECT_EQ(two["encoding"]["x"]["title"], "step");
  EXPECT_EQ(two["encoding"]["y"]["title"], "loss");
  EXPECT_FALSE(two["encoding"]["color"].contains("legend"));
  const json one = line_chart({{"train", {0, 1}, {1, std::numeric_limits<double>::infinity()}}}, "step", "loss");
  EXPECT_TRUE(one["encoding"]["color"]["legend"].is_null());
  EXPECT_TRUE(values_of(one)[1]["y"].is_null());
}

TEST(ReportChart, ScatterWithGroupsLabelsAndFitLayersTheLineOverTheXRange) {
  ScatterOptions o;
  o.group = {"a", "b", "a"};
  o.label = {"p0", "p1", "p2"};
  o.fit = LinearFit{2, 1, "r² = 1"};
  const json spec = scatter_chart({-1, 3, 0}, {-1, 7, 1}, "router similarity", "expert similarity", o);
  ASSERT_EQ(spec["layer"].size(), 2u);
  const json& points = spec["layer"][0];
  ASSERT_EQ(points["data"]["values"].size(), 3u);
  EXPECT_EQ(points["data"]["values"][1]["group"], "b");
  EXPECT_EQ(points["data"]["values"][1]["label"], "p1");
  EXPECT_EQ(points["encoding"]["color"]["field"], "group");
  EXPECT_EQ(points["encoding"]["x"]["title"], "router similarity");
  EXPECT_EQ(points["encoding"]["y"]["title"], "expert similarity");
  EXPECT_EQ(points["encoding"]["tooltip"].size(), 4u);
  const json& line = spec["layer"][1]["data"]["values"];
  ASSERT_EQ(line.size(), 2u);
  EXPECT_EQ(line[0]["x"], -1.0);
  EXPECT_EQ(line[0]["y"], -1.0);
  EXPECT_EQ(line[1]["x"], 3.0);
  EXPECT_EQ(line[1]["y"], 7.0);
  EXPECT_EQ(line[1]["fit"], "r² = 1");

  const json plain = scatter_chart({1, 2}, {3, 4}, "pc1", "pc2");
  EXPECT_FALSE(plain.contains("layer"));
  EXPECT_EQ(values_of(plain).size(), 2u);
  EXPECT_FALSE(plain["encoding"].contains("color"));
}

TEST(ReportChart, ConcatTitlesPanelsAndKeepsOneConfigAtTheTop) {
  const json a = heatmap({1, 0, 0, 1}, 2, 2, {}, {}, "e", "e", "sim");
  const json b = bar_chart({"x"}, {1}, "c", "v");
  const json spec = concat_charts({a, b}, {"layer 0", "layer 1"}, 3, false);
  expect_styled(spec);
  ASSERT_EQ(spec["concat"].size(), 2u);
  EXPECT_EQ(spec["concat"][0]["title"], "layer 0");
  EXPECT_EQ(spec["concat"][1]["title"], "layer 1");
  EXPECT_FALSE(spec["concat"][0].contains("config"));
  EXPECT_FALSE(spec["concat"][1].contains("config"));
  EXPECT_EQ(spec["concat"][0]["data"]["values"].size(), 4u);
  EXPECT_EQ(spec["columns"], 3);
  EXPECT_EQ(spec["resolve"]["scale"]["color"], "independent");
  EXPECT_EQ(concat_charts({a}, {"x"})["resolve"]["scale"]["color"], "shared");
}

TEST(ReportChart, InvalidUtf8InLabelsBecomesTheReplacementCharacter) {
  // A byte-fallback token cut inside a character: the spec still serialises, with U+FFFD in its place.
  const json spec = heatmap({1, 2}, 2, 1, {"caf\xc3", "ok"}, {}, "token", "layer", "v");
  const std::string text = dump_json(spec);
  EXPECT_NE(text.find("caf\xef\xbf\xbd"), std::string::npos);
  const std::string label_expr = spec["encoding"]["y"]["axis"]["labelExpr"];
  EXPECT_NE(label_expr.find("caf\xef\xbf\xbd"), std::string::npos);
  EXPECT_THROW((void)spec.dump(), json::type_error);  // what dump_json guards against
}

TEST(ReportChart, ChartIdsMustBeSafeFileNamesAndUnique) {
  EXPECT_TRUE(is_safe_id("layer-0_sim.v2"));
  for (const char* bad : {"", ".hidden", "a/b", "a b", "x\"y", "../x"}) EXPECT_FALSE(is_safe_id(bad)) << bad;
  const json spec = bar_chart({"x"}, {1}, "c", "v");
  EXPECT_EQ(error_of([&] {
              check_charts({{"ok", "t", "", spec}, {"ok2", "t", "", spec}}, "report r.html");
            }),
            "<no error>");
  EXPECT_CONTAINS(error_of([&] {
                    check_charts({{"a/b", "Title", "", spec}}, "report r.html");
                  }),
                  "report r.html: chart id 'a/b' (title 'Title')");
  EXPECT_CONTAINS(error_of([&] {
                    check_charts({{"a", "t", "", spec}, {"a", "u", "", spec}}, "report r.html");
                  }),
                  "chart id 'a' is used by more than one chart");
}

}  // namespace
}  // namespace moelab::report
