// Charts of moelab's reports as Vega-Lite specifications. The builders return plain Vega-Lite specs with their
// data inlined (`data.values`) and one shared style (font, sizes, axis and legend look, tooltips), so every chart
// of a report looks alike and draws the same in the HTML report (vega-embed in a browser, html_report.h) and in its
// PNG figure (Vega under Node.js, png_export.h). Generic on purpose: nothing here knows about experts or layers;
// the analyses compose charts from their numbers.
//
// Non-finite values (NaN, inf) are written as JSON null, which Vega treats as missing: an empty heatmap cell, a
// missing bar or point, a gap in a line. Sizes of data and labels are the caller's invariants (MOELAB_ASSERT).
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace moelab::report {

// One chart of a report. id names its PNG figure (<id>.png) and its anchor in the HTML report, so it must be a
// safe file name (check_charts); title and caption are shown with the chart in the report.
struct Chart {
  std::string id;
  std::string title;
  std::string caption;
  nlohmann::json spec;  // Vega-Lite, e.g. from the builders below
};

// Compact JSON text of a spec. Invalid UTF-8 in a string (a token label cut inside a character) becomes U+FFFD
// instead of failing the whole report.
std::string dump_json(const nlohmann::json& j);

// Whether id is non-empty, made of letters, digits, '-', '_' and '.', and does not start with '.': safe as a file
// name and an HTML anchor.
bool is_safe_id(const std::string& id);

// Throws moelab::Error (naming `what`, e.g. the report's path) unless every id is safe and unique.
void check_charts(const std::vector<Chart>& charts, const std::string& what);

// The widest a chart may draw, in CSS pixels, its padding, axes and legends included: what a figure of the HTML
// report shows without scrolling (html_report.cpp sizes the page from it). concat_charts puts fewer panels in a
// row when a row would be wider; callers size heatmap cells so that one panel fits.
inline constexpr int kMaxChartWidthPx = 1040;

// The width a builder's spec is expected to draw at (CSS pixels, padding, axes and legends included), from the
// layout estimate every builder records in the spec's usermeta: labels are taken at about 7 px a character, so it
// errs on the wide side.
int estimated_width_px(const nlohmann::json& spec);

enum class ColorScheme {
  viridis,      // dark purple (low) to yellow (high): any magnitude
  blues,        // white (low) to dark blue (high): counts, where zero should read as empty
  blue_orange,  // dark blue - white - dark orange around HeatmapOptions::mid: signed values (correlations)
};

struct HeatmapOptions {
  ColorScheme scheme = ColorScheme::viridis;
  std::optional<std::array<double, 2>> domain;  // fixed colour range {lo, hi} (e.g. {0, 1}); default: the data's
  double mid = 0;                               // blue_orange: the value drawn white
  int64_t max_cells_with_values = 144;          // cells are labelled with their value when R*C is at most this
  std::string value_format = ".2f";             // d3-format of those labels
  int cell_size = 0;                            // pixels per cell; 0: about 420 px for the larger side
};

// A matrix as coloured cells, row 0 at the top. Labels may be empty (the indices are shown); duplicates are
// fine (rows and columns are placed by index). Every row and column keeps its place, also one whose cells are all
// missing. Every label is drawn where a cell leaves room for its text (rows of 12 px or more; column labels turn
// slanted or vertical when they do not fit across); narrower cells show every other label or fewer. The tooltip
// shows row, column and value.
nlohmann::json heatmap(const std::vector<double>& matrix /*[R,C] row-major*/, int64_t R, int64_t C,
                       const std::vector<std::string>& row_labels /*[R] or empty*/,
                       const std::vector<std::string>& col_labels /*[C] or empty*/, const std::string& row_title,
                       const std::string& col_title, const std::string& value_title,
                       const HeatmapOptions& options = {});

// One bar per category, in the given order.
nlohmann::json bar_chart(const std::vector<std::string>& categories /*[C]*/, const std::vector<double>& values /*[C]*/,
                         const std::string& x_title, const std::string& y_title);

// Side-by-side bars: for every category one bar per series, coloured by series.
nlohmann::json grouped_bar_chart(const std::vector<std::string>& categories /*[C]*/,
                                 const std::vector<std::string>& series /*[S]*/,
                                 const std::vector<std::vector<double>>& values /*[S][C]*/, const std::string& x_title,
                                 const std::string& y_title, const std::string& series_title);

// Adjacent bars over pre-binned counts (bins in the given order, e.g. "1", "2", "3+" experts per token).
nlohmann::json histogram_chart(const std::vector<std::string>& bin_labels /*[B]*/,
                               const std::vector<double>& counts /*[B]*/, const std::string& x_title,
                               const std::string& y_title);

struct LineSeries {
  std::string name;
  std::vector<double> x;  // [n]
  std::vector<double> y;  // [n]
};

// Lines with points, one colour per series (no legend for a single series), in a plot of width x height pixels.
// Both axes are quantitative.
nlohmann::json line_chart(const std::vector<LineSeries>& series, const std::string& x_title, const std::string& y_title,
                          const std::string& series_title = "series", int width = 480, int height = 260);

struct LinearFit {
  double slope = 0;
  double intercept = 0;
  std::string label;  // shown in the tooltip of the line, e.g. "r² = 0.33"
};

struct ScatterOptions {
  std::vector<std::string> group;  // [N] colour of each point by group; empty: one colour
  std::string group_title = "group";
  std::vector<std::string> label;  // [N] name of each point in its tooltip; empty: none
  std::optional<LinearFit> fit;    // y = slope x + intercept, drawn dashed over the points' x range
  int width = 360, height = 300;   // of the plot, pixels
};

nlohmann::json scatter_chart(const std::vector<double>& x /*[N]*/, const std::vector<double>& y /*[N]*/,
                             const std::string& x_title, const std::string& y_title,
                             const ScatterOptions& options = {});

// Several charts in a grid, at most `columns` per row, each with its panel title (e.g. one heatmap per layer):
// fewer when a row would be wider than kMaxChartWidthPx, and rows balanced (4 panels that fit 3 a row go 2 and
// 2). Panels share one colour scale and legend when shared_color_scale (comparable across panels), else each has
// its own.
nlohmann::json concat_charts(const std::vector<nlohmann::json>& panels /*[P] builder specs*/,
                             const std::vector<std::string>& panel_titles /*[P]*/, int columns = 4,
                             bool shared_color_scale = true);

}  // namespace moelab::report
