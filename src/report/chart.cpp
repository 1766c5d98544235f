#include "report/chart.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "core/error.h"

namespace moelab::report {
namespace {

using nlohmann::json;

// The one style of every chart. The font stack puts DejaVu Sans first: what the PNG figures are drawn with
// (Debian's fonts-dejavu-core) and what most Linux browsers have, so report and figure look the same.
json style_config() {
  return {
      {"font", "DejaVu Sans, Verdana, Geneva, sans-serif"},
      {"background", "white"},
      {"padding", 8},
      {"view", {{"stroke", "#ddd"}}},
      {"axis",
       {{"labelFontSize", 11},
        {"titleFontSize", 12},
        {"titleFontWeight", "normal"},
        {"labelColor", "#333"},
        {"titleColor", "#222"},
        {"gridColor", "#ececec"},
        {"domainColor", "#888"},
        {"tickColor", "#888"},
        {"labelLimit", 160},
        // Where Vega drops colliding labels (numeric axes), labels closer than this count as colliding: numbers
        // such as "-0.1" and "0.0" would otherwise touch and read as one.
        {"labelSeparation", 4}}},
      // Legend titles such as "share of the genre class's slots" whole: Vega under Node.js (the PNG figures)
      // measures text wider than a browser and would cut them at its default 180 px.
      {"legend",
       {{"labelFontSize", 11},
        {"titleFontSize", 11},
        {"titleFontWeight", "normal"},
        {"labelLimit", 200},
        {"titleLimit", 320}}},
      {"title", {{"fontSize", 13}, {"anchor", "start"}, {"color", "#222"}}},
      {"header", {{"labelFontSize", 12}, {"titleFontSize", 12}}},
      {"line", {{"strokeWidth", 2}}},
      {"point", {{"size", 36}}},
  };
}

json styled(json spec) {
  spec["config"] = style_config();
  return spec;
}

// JSON null for NaN and inf: Vega's "missing".
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

const char* const kTooltipNumber = ".4~g";

// Layout estimates (CSS pixels) at the style's 11 px labels and 12 px titles; DejaVu Sans averages under 7 px a
// character there, so widths err on the wide side.
constexpr double kCharPx = 7;
constexpr int kLabelHeightPx = 12;       // a band narrower than this cannot hold a label beside its neighbours
constexpr int kPaddingPx = 8;            // style_config's padding, on each side
constexpr int kQuantitativeAxisPx = 70;  // a numeric y axis: ticks, labels such as "-0.025" and the title
constexpr int kLegendOffsetPx = 24;      // between the plot and its legend

double text_px(const std::string& s) { return kCharPx * static_cast<double>(s.size()); }

double longest_px(const std::vector<std::string>& labels) {
  double px = 0;
  for (const auto& l : labels) px = std::max(px, text_px(l));
  return px;
}

// How labels of a band axis (one label per band of band_px) are drawn: across when each fits its band, else
// slanted or vertical, which need only the text's height; every label is drawn unless even that does not fit,
// when Vega drops colliding labels (short ones across: numbers such as neuron indices).
struct BandLabels {
  int angle = 0;
  bool all = true;
};
BandLabels band_labels(const std::vector<std::string>& labels, double band_px) {
  const double longest = longest_px(labels);
  if (longest + 4 <= band_px) return {0, true};
  if (band_px >= 18) return {-45, true};
  if (band_px >= kLabelHeightPx) return {-90, true};
  return {longest <= 3 * kCharPx ? 0 : -90, false};
}

// The index labels "0".."n-1" where a caller gave none.
std::vector<std::string> index_labels(int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(std::to_string(i));
  return out;
}

// A legend's width beside the plot: a colour gradient with numbers, or a symbol per (named) entry.
int gradient_legend_px(const std::string& title) {
  return kLegendOffsetPx + static_cast<int>(std::max(text_px(title), 60.0));
}
int symbol_legend_px(const std::string& title, const std::vector<std::string>& entries) {
  return kLegendOffsetPx + static_cast<int>(std::max(text_px(title), 20 + longest_px(entries)));
}

// Records a view's estimated width, plot and axes (`view_px`) and legend (`legend_px`, 0 for none): what
// estimated_width_px reads and concat_charts lays panels out by.
json with_layout(json spec, int view_px, int legend_px) {
  spec["usermeta"]["layout"] = {{"view_px", view_px}, {"legend_px", legend_px}};
  return spec;
}

int view_px(const json& spec) { return spec.at("usermeta").at("layout").at("view_px").get<int>(); }
int legend_px(const json& spec) { return spec.at("usermeta").at("layout").at("legend_px").get<int>(); }

// Axis of an index field (0..n-1) that shows the caller's labels: lets duplicate labels have their own rows. Its
// scale lists every index, so a row or column whose values are all missing keeps its place.
json index_axis(const std::vector<std::string>& labels, int64_t n, bool horizontal, int cell) {
  const BandLabels layout =
      horizontal ? band_labels(labels.empty() ? index_labels(n) : labels, cell) : BandLabels{0, cell >= kLabelHeightPx};
  json axis = {{"ticks", false}, {"domain", false}, {"labelOverlap", !layout.all}, {"labelAngle", layout.angle}};
  if (!labels.empty()) axis["labelExpr"] = dump_json(labels) + "[datum.value]";
  return axis;
}

json index_domain(int64_t n) {
  json domain = json::array();
  for (int64_t i = 0; i < n; ++i) domain.push_back(i);
  return domain;
}

json color_scale(const HeatmapOptions& o) {
  json scale;
  switch (o.scheme) {
    case ColorScheme::viridis:
      scale["scheme"] = "viridis";
      break;
    case ColorScheme::blues:
      scale["scheme"] = "blues";
      break;
    case ColorScheme::blue_orange:
      scale["scheme"] = "blueorange";
      scale["domainMid"] = o.mid;
      break;
  }
  if (o.domain) {
    scale["domain"] = {(*o.domain)[0], (*o.domain)[1]};
    scale["clamp"] = true;
  }
  return scale;
}

// Whether a cell of value v is drawn dark, so its label should be white: where v falls on the scheme's ramp
// (position 0..1 over [lo, hi], blue_orange piecewise around mid, as Vega's domainMid does).
bool dark_cell(double v, double lo, double hi, const HeatmapOptions& o) {
  auto frac = [](double a, double b, double x) { return b > a ? std::clamp((x - a) / (b - a), 0.0, 1.0) : 0.5; };
  switch (o.scheme) {
    case ColorScheme::viridis:
      return frac(lo, hi, v) < 0.55;
    case ColorScheme::blues:
      return frac(lo, hi, v) > 0.55;
    case ColorScheme::blue_orange: {
      const double t = v < o.mid ? 0.5 * frac(lo, o.mid, v) : 0.5 + 0.5 * frac(o.mid, hi, v);
      return t < 0.2 || t > 0.8;
    }
  }
  return false;
}

json nominal_tooltip(const std::string& field, const std::string& title) {
  return {{"field", field}, {"type", "nominal"}, {"title", title}};
}

json number_tooltip(const std::string& field, const std::string& title) {
  return {{"field", field}, {"type", "quantitative"}, {"title", title}, {"format", kTooltipNumber}};
}

}  // namespace

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool is_safe_id(const std::string& id) {
  if (id.empty() || id[0] == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

void check_charts(const std::vector<Chart>& charts, const std::string& what) {
  std::set<std::string> seen;
  for (const auto& c : charts) {
    if (!is_safe_id(c.id))
      throw_error(what, ": chart id '", c.id, "' (title '", c.title,
                  "'): expected a non-empty file name of letters, digits, '-', '_' and '.', not starting with '.'");
    if (!seen.insert(c.id).second) throw_error(what, ": chart id '", c.id, "' is used by more than one chart");
  }
}

json heatmap(const std::vector<double>& matrix, int64_t R, int64_t C, const std::vector<std::string>& row_labels,
             const std::vector<std::string>& col_labels, const std::string& row_title, const std::string& col_title,
             const std::string& value_title, const HeatmapOptions& options) {
  MOELAB_ASSERT(R > 0 && C > 0 && static_cast<int64_t>(matrix.size()) == R * C, "heatmap: matrix is not [R,C]");
  MOELAB_ASSERT(row_labels.empty() || static_cast<int64_t>(row_labels.size()) == R, "heatmap: row labels");
  MOELAB_ASSERT(col_labels.empty() || static_cast<int64_t>(col_labels.size()) == C, "heatmap: column labels");

  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  if (options.domain) {
    lo = (*options.domain)[0];
    hi = (*options.domain)[1];
  } else {
    for (double v : matrix)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  const int cell = options.cell_size > 0
                       ? options.cell_size
                       : std::clamp(static_cast<int>(std::lround(420.0 / static_cast<double>(std::max(R, C)))), 4, 36);
  const bool show_values = R * C <= options.max_cells_with_values && cell >= 24;

  json values = json::array();
  for (int64_t i = 0; i < R; ++i) {
    for (int64_t j = 0; j < C; ++j) {
      const double v = matrix[i * C + j];
      json cell_record = {{"row", i}, {"col", j}, {"value", number(v)}};
      if (!row_labels.empty()) cell_record["row_label"] = row_labels[i];
      if (!col_labels.empty()) cell_record["col_label"] = col_labels[j];
      if (show_values) cell_record["dark"] = dark_cell(v, lo, hi, options);
      values.push_back(std::move(cell_record));
    }
  }

  json spec = {
      {"data", {{"values", std::move(values)}}},
      {"width", {{"step", cell}}},
      {"height", {{"step", cell}}},
      {"encoding",
       {{"x",
         {{"field", "col"},
          {"type", "ordinal"},
          {"title", col_title},
          {"scale", {{"domain", index_domain(C)}}},
          {"axis", index_axis(col_labels, C, true, cell)}}},
        {"y",
         {{"field", "row"},
          {"type", "ordinal"},
          {"title", row_title},
          {"scale", {{"domain", index_domain(R)}}},
          {"axis", index_axis(row_labels, R, false, cell)}}},
        {"tooltip",
         {row_labels.empty() ? nominal_tooltip("row", row_title) : nominal_tooltip("row_label", row_title),
          col_labels.empty() ? nominal_tooltip("col", col_title) : nominal_tooltip("col_label", col_title),
          number_tooltip("value", value_title)}}}},
  };
  json rect = {
      {"mark", {{"type", "rect"}}},
      {"encoding",
       {{"color",
         {{"field", "value"}, {"type", "quantitative"}, {"title", value_title}, {"scale", color_scale(options)}}}}}};
  // Row labels and the axis title to the left of the cells; a slanted first column label reaching further left.
  const double row_labels_px = longest_px(row_labels.empty() ? index_labels(R) : row_labels);
  const double first_col_px = text_px(col_labels.empty() ? std::string("0") : col_labels[0]);
  const double left_px = std::max(row_labels_px + 28, first_col_px * 0.71 - cell / 2.0);
  const int width_px = static_cast<int>(left_px) + cell * static_cast<int>(C);
  const int legend = gradient_legend_px(value_title);
  if (!show_values) {
    spec["mark"] = rect["mark"];
    spec["encoding"]["color"] = rect["encoding"]["color"];
    return with_layout(styled(std::move(spec)), width_px, legend);
  }
  json text = {{"mark", {{"type", "text"}, {"fontSize", cell >= 32 ? 11 : 9}, {"baseline", "middle"}}},
               {"encoding",
                {{"text", {{"field", "value"}, {"type", "quantitative"}, {"format", options.value_format}}},
                 // A condition, not a field with scale null: Vega-Lite 5 fails on an unscaled colour field in a
                 // layer beside a scaled one.
                 {"color", {{"condition", {{"test", "datum.dark"}, {"value", "white"}}}, {"value", "#111"}}}}}};
  spec["layer"] = {std::move(rect), std::move(text)};
  return with_layout(styled(std::move(spec)), width_px, legend);
}

namespace {

// Bars of `value` over nominal categories in the given order, `width` pixels wide: what the bar charts share.
json bar_spec(json data, const std::vector<std::string>& categories, int64_t width, const std::string& x_title,
              const std::string& y_title) {
  const BandLabels labels =
      band_labels(categories, static_cast<double>(width) / static_cast<double>(std::max<size_t>(categories.size(), 1)));
  const double first_px = categories.empty() ? 0 : text_px(categories[0]);
  const int view = static_cast<int>(width) + static_cast<int>(std::max<double>(kQuantitativeAxisPx, first_px * 0.71));
  return with_layout(styled({
                         {"data", {{"values", std::move(data)}}},
                         {"width", width},
                         {"height", 240},
                         {"mark", {{"type", "bar"}}},
                         {"encoding",
                          {{"x",
                            {{"field", "category"},
                             {"type", "nominal"},
                             {"sort", nullptr},
                             {"title", x_title},
                             {"axis", {{"labelAngle", labels.angle}, {"labelOverlap", !labels.all}}}}},
                           {"y", {{"field", "value"}, {"type", "quantitative"}, {"title", y_title}}},
                           {"tooltip", {nominal_tooltip("category", x_title), number_tooltip("value", y_title)}}}},
                     }),
                     view, 0);
}

}  // namespace

json bar_chart(const std::vector<std::string>& categories, const std::vector<double>& values,
               const std::string& x_title, const std::string& y_title) {
  MOELAB_ASSERT(categories.size() == values.size(), "bar_chart: one value per category");
  json data = json::array();
  for (size_t i = 0; i < values.size(); ++i)
    data.push_back({{"category", categories[i]}, {"value", number(values[i])}});
  const int64_t width = std::clamp<int64_t>(24 * static_cast<int64_t>(categories.size()), 200, 640);
  return bar_spec(std::move(data), categories, width, x_title, y_title);
}

json grouped_bar_chart(const std::vector<std::string>& categories, const std::vector<std::string>& series,
                       const std::vector<std::vector<double>>& values, const std::string& x_title,
                       const std::string& y_title, const std::string& series_title) {
  MOELAB_ASSERT(values.size() == series.size(), "grouped_bar_chart: one value row per series");
  json data = json::array();
  for (size_t s = 0; s < series.size(); ++s) {
    MOELAB_ASSERT(values[s].size() == categories.size(), "grouped_bar_chart: one value per category");
    for (size_t c = 0; c < categories.size(); ++c)
      data.push_back({{"category", categories[c]}, {"series", series[s]}, {"value", number(values[s][c])}});
  }
  const int64_t width =
      std::clamp<int64_t>(static_cast<int64_t>(categories.size() * (series.size() * 12 + 10)), 240, 720);
  json spec = bar_spec(std::move(data), categories, width, x_title, y_title);
  json& enc = spec["encoding"];
  enc["xOffset"] = {{"field", "series"}, {"type", "nominal"}, {"sort", series}};
  enc["color"] = {{"field", "series"}, {"type", "nominal"}, {"sort", series}, {"title", series_title}};
  enc["tooltip"] = {nominal_tooltip("category", x_title), nominal_tooltip("series", series_title),
                    number_tooltip("value", y_title)};
  const int view = view_px(spec);
  return with_layout(std::move(spec), view, symbol_legend_px(series_title, series));
}

json histogram_chart(const std::vector<std::string>& bin_labels, const std::vector<double>& counts,
                     const std::string& x_title, const std::string& y_title) {
  json spec = bar_chart(bin_labels, counts, x_title, y_title);
  spec["encoding"]["x"]["scale"] = {{"paddingInner", 0.04}, {"paddingOuter", 0.02}};
  return spec;
}

json line_chart(const std::vector<LineSeries>& series, const std::string& x_title, const std::string& y_title,
                const std::string& series_title, int width, int height) {
  json data = json::array();
  std::vector<std::string> names;
  for (const auto& s : series) {
    MOELAB_ASSERT(s.x.size() == s.y.size(), "line_chart: x and y of a series differ in length");
    names.push_back(s.name);
    for (size_t i = 0; i < s.x.size(); ++i)
      data.push_back({{"series", s.name}, {"x", number(s.x[i])}, {"y", number(s.y[i])}});
  }
  json color = {{"field", "series"}, {"type", "nominal"}, {"sort", names}, {"title", series_title}};
  if (series.size() == 1) color["legend"] = nullptr;
  const int legend = series.size() == 1 ? 0 : symbol_legend_px(series_title, names);
  return with_layout(
      styled({
          {"data", {{"values", std::move(data)}}},
          {"width", width},
          {"height", height},
          {"mark", {{"type", "line"}, {"point", true}}},
          {"encoding",
           {{"x", {{"field", "x"}, {"type", "quantitative"}, {"title", x_title}, {"scale", {{"zero", false}}}}},
            {"y", {{"field", "y"}, {"type", "quantitative"}, {"title", y_title}, {"scale", {{"zero", false}}}}},
            {"color", std::move(color)},
            {"tooltip",
             {nominal_tooltip("series", series_title), number_tooltip("x", x_title), number_tooltip("y", y_title)}}}},
      }),
      width + kQuantitativeAxisPx, legend);
}

json scatter_chart(const std::vector<double>& x, const std::vector<double>& y, const std::string& x_title,
                   const std::string& y_title, const ScatterOptions& options) {
  MOELAB_ASSERT(x.size() == y.size(), "scatter_chart: x and y differ in length");
  MOELAB_ASSERT(options.group.empty() || options.group.size() == x.size(), "scatter_chart: one group per point");
  MOELAB_ASSERT(options.label.empty() || options.label.size() == x.size(), "scatter_chart: one label per point");
  json data = json::array();
  for (size_t i = 0; i < x.size(); ++i) {
    json p = {{"x", number(x[i])}, {"y", number(y[i])}};
    if (!options.group.empty()) p["group"] = options.group[i];
    if (!options.label.empty()) p["label"] = options.label[i];
    data.push_back(std::move(p));
  }
  const json x_enc = {{"field", "x"}, {"type", "quantitative"}, {"title", x_title}, {"scale", {{"zero", false}}}};
  const json y_enc = {{"field", "y"}, {"type", "quantitative"}, {"title", y_title}, {"scale", {{"zero", false}}}};
  json tooltip = json::array();
  if (!options.label.empty()) tooltip.push_back(nominal_tooltip("label", "point"));
  if (!options.group.empty()) tooltip.push_back(nominal_tooltip("group", options.group_title));
  tooltip.push_back(number_tooltip("x", x_title));
  tooltip.push_back(number_tooltip("y", y_title));
  json points = {{"data", {{"values", std::move(data)}}},
                 {"mark", {{"type", "point"}, {"filled", true}, {"opacity", 0.75}}},
                 {"encoding", {{"x", x_enc}, {"y", y_enc}, {"tooltip", std::move(tooltip)}}}};
  if (!options.group.empty())
    points["encoding"]["color"] = {{"field", "group"}, {"type", "nominal"}, {"title", options.group_title}};
  json spec = {{"width", options.width}, {"height", options.height}};
  std::vector<std::string> groups = options.group;
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  const int view = options.width + kQuantitativeAxisPx;
  const int legend = groups.empty() ? 0 : symbol_legend_px(options.group_title, groups);
  if (!options.fit) {
    spec.update(points);
    return with_layout(styled(std::move(spec)), view, legend);
  }
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : x)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  json line_data = json::array();
  if (lo <= hi) {
    for (double v : {lo, hi})
      line_data.push_back(
          {{"x", v}, {"y", number(options.fit->slope * v + options.fit->intercept)}, {"fit", options.fit->label}});
  }
  json line = {{"data", {{"values", std::move(line_data)}}},
               {"mark", {{"type", "line"}, {"color", "#444"}, {"strokeDash", {6, 4}}, {"strokeWidth", 1.5}}},
               {"encoding", {{"x", x_enc}, {"y", y_enc}, {"tooltip", {nominal_tooltip("fit", "linear fit")}}}}};
  spec["layer"] = {std::move(points), std::move(line)};
  return with_layout(styled(std::move(spec)), view, legend);
}

json concat_charts(const std::vector<json>& panels, const std::vector<std::string>& panel_titles, int columns,
                   bool shared_color_scale) {
  MOELAB_ASSERT(panels.size() == panel_titles.size(), "concat_charts: one title per panel");
  MOELAB_ASSERT(columns > 0, "concat_charts: columns must be positive");
  const int spacing = 16;
  // Vega aligns the grid's columns, so every column is as wide as the widest panel; a shared legend is drawn
  // once, right of the grid, an independent one beside each panel.
  int panel_px = 0, shared_legend_px = 0;
  for (const auto& p : panels) {
    panel_px = std::max(panel_px, view_px(p) + (shared_color_scale ? 0 : legend_px(p)));
    if (shared_color_scale) shared_legend_px = std::max(shared_legend_px, legend_px(p));
  }
  auto row_px = [&](int n) { return n * panel_px + (n - 1) * spacing; };
  const int count = std::max(static_cast<int>(panels.size()), 1);
  int fit = std::min(columns, count);
  while (fit > 1 && 2 * kPaddingPx + row_px(fit) + shared_legend_px > kMaxChartWidthPx) --fit;
  const int rows = (count + fit - 1) / fit;
  const int balanced = (count + rows - 1) / rows;
  json items = json::array();
  for (size_t i = 0; i < panels.size(); ++i) {
    json p = panels[i];
    p.erase("config");    // only the top level may carry a config
    p.erase("usermeta");  // and the layout estimate, the grid's
    p["title"] = panel_titles[i];
    items.push_back(std::move(p));
  }
  return with_layout(styled({
                         {"concat", std::move(items)},
                         {"columns", balanced},
                         {"spacing", spacing},
                         {"resolve", {{"scale", {{"color", shared_color_scale ? "shared" : "independent"}}}}},
                     }),
                     row_px(balanced), shared_legend_px);
}

int estimated_width_px(const json& spec) { return 2 * kPaddingPx + view_px(spec) + legend_px(spec); }

}  // namespace moelab::report
