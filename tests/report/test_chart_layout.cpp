// The builders' width estimates (estimated_width_px) against the width each chart is drawn at in the HTML report,
// in headless Chromium: what concat_charts and the report's callers size panels by, so an estimate under the drawn
// width is a chart cut off at the right of its figure, and one far over it puts panels a row lower for nothing.
// Chromium missing fails the test, naming the package.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "report/html_report.h"
#include "support/chromium.h"
#include "support/temp_dir.h"

namespace moelab::report {
namespace {

using nlohmann::json;

// The CSS width of the canvas vega-embed drew a figure on (headless Chromium draws at one device pixel per CSS
// pixel): the whole chart, padding, axes and legends included.
int drawn_width(const std::string& figure) {
  std::smatch m;
  if (!std::regex_search(figure, m, std::regex(R"re(<canvas width="(\d+)")re"))) return -1;
  return std::stoi(m[1]);
}

std::vector<std::string> names(const std::string& stem, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(stem + std::to_string(i));
  return out;
}

TEST(ReportChartLayout, EstimatesCoverTheWidthTheBrowserDrawsWithoutOverstatingIt) {
  const std::vector<std::string> genres = {"adventure", "belles_lettres", "editorial", "fiction", "government",
                                           "hobbies",   "humor",          "learned",   "lore",    "mystery",
                                           "news",      "religion",       "reviews",   "romance", "science_fiction"};
  std::vector<double> shares(8 * genres.size());
  for (size_t i = 0; i < shares.size(); ++i) shares[i] = 0.05 + 0.01 * static_cast<double>(i % 17);
  HeatmapOptions vertical;
  vertical.cell_size = 14;
  vertical.scheme = ColorScheme::blue_orange;
  vertical.mid = 0.125;
  HeatmapOptions slanted = vertical;
  slanted.cell_size = 24;
  HeatmapOptions tokens;
  tokens.cell_size = 18;
  tokens.max_cells_with_values = 0;
  const std::vector<std::string> prompt = {"0 The", "1 ▁committee", "2 ▁said", "3 ▁that", "4 ▁the", "5 ▁new"};
  std::vector<double> weights(prompt.size() * 8, 0.3);
  ScatterOptions experts;
  experts.group = names("e", 8), experts.group_title = "expert";
  const json labels_v =
      heatmap(shares, 8, 15, names("e", 8), genres, "expert", "genre", "share of the genre's slots", vertical);
  const json labels_s = heatmap(shares, 8, 15, names("e", 8), genres, "expert", "genre", "share", slanted);
  const json prompt_map = heatmap(weights, 6, 8, prompt, names("e", 8), "token", "expert", "routing weight", tokens);
  const json pca =
      scatter_chart({-3, -1, 0, 1, 2, 3, 4, 5}, {-0.02, 0.01, 0.3, -0.4, 0.2, 0.1, 0, 1e-3}, "PC1", "PC2", experts);
  std::vector<LineSeries> per_expert;
  for (int e = 0; e < 8; ++e) per_expert.push_back({"e" + std::to_string(e), {100, 200, 300}, {0.01, 0.02, 0.015}});
  const std::vector<Chart> charts = {
      {"heatmap-vertical", "", "", labels_v},
      {"heatmap-slanted", "", "", labels_s},
      {"heatmap-indices", "", "", heatmap(std::vector<double>(64 * 64, 0.5), 64, 64, {}, {}, "e", "e", "cosine")},
      {"prompt", "", "", prompt_map},
      {"bars", "", "", bar_chart(names("layer ", 4), {2, 2, 1.5, 1.8}, "layer", "experts per token")},
      {"bars-slanted", "", "", bar_chart(genres, std::vector<double>(15, 1.0), "genre", "experts per token")},
      {"grouped", "", "",
       grouped_bar_chart(names("layer ", 4), {"top score = top norm", "chance (1/E)", "Spearman(score, norm)"},
                         {{0.8, 0.3, 0.2, 0.3}, {0.125, 0.125, 0.125, 0.125}, {0.7, 0, -0.1, 0.2}}, "layer", "value",
                         "measure")},
      {"line", "", "",
       line_chart({{"training", {0, 300, 600}, {9, 6, 5.5}}, {"validation", {300, 600}, {6, 5.6}}}, "step",
                  "loss (nats)", "loss", 640, 280)},
      {"line-many", "", "", line_chart(per_expert, "step", "gradient norm", "expert", 380, 240)},
      {"scatter", "", "", pca},
      {"grid-shared", "", "", concat_charts({labels_v, labels_v, labels_v, labels_v}, names("layer ", 4), 2, true)},
      {"grid-independent", "", "",
       concat_charts({prompt_map, prompt_map, prompt_map, prompt_map}, names("layer ", 4), 4, false)},
      {"grid-scatter", "", "", concat_charts({pca, pca, pca, pca}, names("layer ", 4), 4, true)},
  };
  testing::TempDir dir;
  write_html_report(dir.file("layout.html"), {"layout", "", {{"charts", "Charts", {}, {}, charts}}});
  const testing::BrowserRun run = testing::load_in_chromium(dir.file("layout.html"), dir);
  ASSERT_EQ(run.status, 0) << run.log;
  ASSERT_EQ(testing::charts_drawn(run.dom), static_cast<int>(charts.size())) << run.log;
  for (const auto& chart : charts) {
    SCOPED_TRACE(chart.id);
    const int drawn = drawn_width(testing::figure_of(run.dom, chart.id));
    const int estimate = estimated_width_px(chart.spec);
    EXPECT_GT(drawn, 0);
    EXPECT_LE(drawn, estimate);              // never cut off
    EXPECT_GE(drawn, 0.85 * estimate - 16);  // nor so generous that panels go a row lower for nothing
  }
}

}  // namespace
}  // namespace moelab::report
