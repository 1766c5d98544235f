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
  EXPECT_EQ(spec["resolve"]["scale"]["color"], "independent");
  // Never more columns than panels: a third column would only be empty space in the layout.
  EXPECT_EQ(spec["columns"], 2);
  EXPECT_EQ(concat_charts({a}, {"x"})["resolve"]["scale"]["color"], "shared");
  // Small panels keep the columns asked for: 5 panels 3 a row go 3 and 2.
  EXPECT_EQ(concat_charts({a, a, a, a, a}, {"0", "1", "2", "3", "4"}, 3)["columns"], 3);
}

// A [1,C] heatmap with cells of `cell` pixels, its own legend: a panel whose width grows with C.
json strip(int64_t C, int cell) {
  HeatmapOptions o;
  o.cell_size = cell;
  o.max_cells_with_values = 0;
  return heatmap(std::vector<double>(C, 0.5), 1, C, {}, {}, "r", "c", "v", o);
}

std::vector<json> copies(const json& panel, int n) { return std::vector<json>(n, panel); }
std::vector<std::string> titles(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("layer " + std::to_string(i));
  return out;
}

TEST(ReportChart, ConcatPutsFewerPanelsInARowThanAskedWhenTheRowWouldBeTooWideAndBalancesTheRows) {
  const json panel = strip(10, 20);
  // The premise: three such panels fit a row of the report, four do not.
  const json three = concat_charts(copies(panel, 3), titles(3), 3, false);
  ASSERT_EQ(three["columns"], 3);
  ASSERT_LE(estimated_width_px(three), kMaxChartWidthPx);
  ASSERT_GT(4 * (estimated_width_px(panel) - 16), kMaxChartWidthPx);  // less each panel's own padding
  // Four panels asked 4 a row: 3 would fit, but 3 + 1 leaves a lone panel; 2 + 2 is as many rows.
  const json four = concat_charts(copies(panel, 4), titles(4), 4, false);
  EXPECT_EQ(four["columns"], 2);
  EXPECT_LE(estimated_width_px(four), kMaxChartWidthPx);
  EXPECT_EQ(concat_charts(copies(panel, 4), titles(4), 3, false)["columns"], 2);
  EXPECT_EQ(concat_charts(copies(panel, 6), titles(6), 4, false)["columns"], 3);
  EXPECT_EQ(concat_charts(copies(panel, 7), titles(7), 4, false)["columns"], 3);  // 3 + 3 + 1: three rows anyway
  // A panel wider than half the report: one a row.
  const json wide = strip(30, 20);
  EXPECT_EQ(concat_charts(copies(wide, 2), titles(2), 2, false)["columns"], 1);
  // The grid's estimate: one column of the widest panel per column, so a row of wider panels is wider.
  EXPECT_GT(estimated_width_px(concat_charts({panel, wide}, titles(2), 1, false)),
            estimated_width_px(concat_charts({panel, panel}, titles(2), 1, false)));
  // Panels sharing a legend draw it once, right of the grid: narrower than each with its own.
  EXPECT_LT(estimated_width_px(concat_charts(copies(panel, 3), titles(3), 3, true)), estimated_width_px(three));
  // The layout estimate belongs to the grid, not to its panels.
  EXPECT_FALSE(four["concat"][0].contains("usermeta"));
}

TEST(ReportChart, EstimatedWidthsCountThePlotTheAxesAndTheLegend) {
  // Heatmaps: one more column is one more cell; longer row labels and a longer legend title are wider.
  EXPECT_EQ(estimated_width_px(strip(11, 20)) - estimated_width_px(strip(10, 20)), 20);
  EXPECT_EQ(estimated_width_px(strip(10, 25)) - estimated_width_px(strip(10, 20)), 50);
  const auto labelled = [](const std::string& row_label, const std::string& value_title) {
    return estimated_width_px(heatmap({1, 2}, 1, 2, {row_label}, {}, "r", "c", value_title));
  };
  EXPECT_GT(labelled("a long row label", "v"), labelled("a", "v") + 60);
  EXPECT_GT(labelled("a", "a legend title much wider than its gradient"), labelled("a", "v") + 100);
  // Every estimate covers at least the plot and its padding.
  EXPECT_GT(estimated_width_px(strip(10, 20)), 10 * 20 + 16);

  // Lines: the width asked for, plus the axis; a legend only with several series, as wide as its longest name.
  const LineSeries a{"train", {0, 1}, {1, 2}}, b{"validation", {0, 1}, {2, 3}};
  const int one = estimated_width_px(line_chart({a}, "step", "loss", "series", 480));
  EXPECT_EQ(estimated_width_px(line_chart({a}, "step", "loss", "series", 600)) - one, 120);
  EXPECT_GT(one, 480 + 16);
  const int two = estimated_width_px(line_chart({a, b}, "step", "loss", "series", 480));
  EXPECT_GT(two, one + 60);  // a symbol and "validation"
  const LineSeries longer{"validation of another run", {0, 1}, {2, 3}};
  EXPECT_GT(estimated_width_px(line_chart({a, longer}, "step", "loss", "series", 480)), two + 80);

  // Scatter: the width option, and a legend only when points are grouped.
  ScatterOptions plain;
  plain.width = 300;
  ScatterOptions grouped = plain;
  grouped.group = {"e0", "e1"};
  grouped.group_title = "expert";
  const int bare = estimated_width_px(scatter_chart({0, 1}, {0, 1}, "x", "y", plain));
  EXPECT_GT(bare, 300 + 16);
  EXPECT_GT(estimated_width_px(scatter_chart({0, 1}, {0, 1}, "x", "y", grouped)), bare + 40);

  // Bars: the plot and the value axis; grouped bars add a legend as wide as their longest series name.
  const json bars = bar_chart({"l0", "l1"}, {1, 2}, "layer", "n");
  EXPECT_GT(estimated_width_px(bars), bars["width"].get<int>() + 16 + 40);
  const auto grouped_bars = [](const std::string& second) {
    return estimated_width_px(grouped_bar_chart({"l0", "l1"}, {"a", second}, {{1, 2}, {2, 1}}, "layer", "n", "run"));
  };
  EXPECT_GT(grouped_bars("a much longer series name"), grouped_bars("b") + 100);
}

TEST(ReportChart, HeatmapScalesListEveryIndexAlsoForRowsAndColumnsWithoutValues) {
  const double nan = std::nan("");
  // [3,4]: column 3 and row 2 all missing (a class absent from the trace, an expert no token reached).
  const std::vector<double> m = {1, 2, 3, nan, 4, 5, 6, nan, nan, nan, nan, nan};
  const json spec = heatmap(m, 3, 4, {}, {"a", "b", "c", "d"}, "expert", "class", "share");
  EXPECT_EQ(spec["encoding"]["x"]["scale"]["domain"], json({0, 1, 2, 3}));
  EXPECT_EQ(spec["encoding"]["y"]["scale"]["domain"], json({0, 1, 2}));
  EXPECT_EQ(values_of(spec).size(), 12u);  // the missing cells are rows of their own, with a null value
  EXPECT_TRUE(values_of(spec)[3]["value"].is_null());
}

TEST(ReportChart, HeatmapLabelsEveryRowAndColumnWhereCellsHoldTheirText) {
  const std::vector<std::string> experts = {"e0", "e1", "e2", "e3"};
  const std::vector<std::string> genres = {"news", "belles_lettres", "humor", "science_fiction"};
  auto axes = [&](const std::vector<std::string>& cols, int cell) {
    HeatmapOptions o;
    o.cell_size = cell;
    const json spec = heatmap(std::vector<double>(16, 0.25), 4, 4, experts, cols, "expert", "genre", "share", o);
    return std::make_pair(spec["encoding"]["x"]["axis"], spec["encoding"]["y"]["axis"]);
  };
  // Columns wide enough for the longest label: across, every one drawn.
  {
    const auto [x, y] = axes(experts, 24);
    EXPECT_EQ(x["labelAngle"], 0);
    EXPECT_EQ(x["labelOverlap"], false);
    EXPECT_EQ(y["labelOverlap"], false);
  }
  // Too narrow for the words across: slanted from 18 px, vertical from 12 px, still every label.
  for (const auto& [cell, angle] : {std::pair{40, -45}, std::pair{18, -45}, std::pair{17, -90}, std::pair{12, -90}}) {
    SCOPED_TRACE(cell);
    const auto [x, y] = axes(genres, cell);
    EXPECT_EQ(x["labelAngle"], angle);
    EXPECT_EQ(x["labelOverlap"], false);
    EXPECT_EQ(y["labelOverlap"], false);
    EXPECT_EQ(y["labelAngle"], 0);  // row labels stay across
  }
  // Under 12 px a label is taller than its cell: Vega drops colliding ones, words vertical, numbers across.
  {
    const auto [x, y] = axes(genres, 11);
    EXPECT_EQ(x["labelOverlap"], true);
    EXPECT_EQ(x["labelAngle"], -90);
    EXPECT_EQ(y["labelOverlap"], true);
    const auto [nx, ny] = axes({"0", "16", "32", "48"}, 6);
    EXPECT_EQ(nx["labelOverlap"], true);
    EXPECT_EQ(nx["labelAngle"], 0);
  }
  // Columns without labels show their indices by the same rules.
  HeatmapOptions o;
  o.cell_size = 12;
  EXPECT_EQ(heatmap(std::vector<double>(4, 0), 1, 4, {}, {}, "r", "c", "v", o)["encoding"]["x"]["axis"]["labelOverlap"],
            false);
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
