#include "report/html_report.h"

#include <cctype>
#include <set>

#include "core/error.h"
#include "core/resources.h"
#include "io/atomic_file.h"

namespace moelab::report {
namespace {

using nlohmann::json;

// The page is as wide as the widest chart needs: the chart (kMaxChartWidthPx), vega-embed's action button beside it
// (38 px), the figure's border and padding (34 px), the page's padding (48 px), and 20 px for Vega drawing labels a
// little wider than the charts' estimate. Wider windows centre the page; narrower ones scroll a figure sideways.
const int kPageWidthPx = kMaxChartWidthPx + 38 + 34 + 48 + 20;

const char* const kStyle = R"css(
:root { color-scheme: light; }
body { margin: 0; background: #f7f7f5; color: #222; line-height: 1.5;
       font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
header, nav.toc, main { max-width: var(--page-width); margin: 0 auto; padding: 0 24px; box-sizing: border-box; }
header { padding-top: 28px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
.subtitle { color: #555; margin: 0 0 18px; }
nav.toc { background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; padding: 10px 24px; }
nav.toc h2 { font-size: 1em; border: none; margin: 4px 0; padding: 0; }
nav.toc ol { margin: 2px 0 6px; padding-left: 22px; }
nav.toc ol ol { font-size: 0.9em; }
nav.toc ol ol a { color: #555; }
a { color: #1f5fa8; text-decoration: none; }
a:hover { text-decoration: underline; }
section { margin: 34px 0; }
h2 { font-size: 1.3em; border-bottom: 2px solid #e2e2e2; padding-bottom: 4px; }
p { max-width: 78ch; }
table { border-collapse: collapse; margin: 12px 0; background: #fff; font-size: 0.92em;
        font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #eef0f2; }
tbody tr:nth-child(even) td { background: #fafafa; }
figure.chart { background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; margin: 18px 0;
               padding: 12px 16px; overflow-x: auto; }
figure.chart h3 { margin: 0 0 8px; font-size: 1.05em; }
figure.chart figcaption { color: #555; font-size: 0.92em; margin-top: 6px; max-width: 100ch; }
.chart-error, .noscript-note, #render-errors { color: #8a0000; background: #fff0f0; border: 1px solid #e0b4b4;
                                              border-radius: 4px; padding: 8px 12px; }
#render-errors { max-width: calc(var(--page-width) - 48px); margin: 12px auto; }
@media print { nav.toc { display: none; } figure.chart { break-inside: avoid; border: none; } }
)css";

// Draws every chart; see the header for the hooks it leaves. Plain ES5 so any browser that runs Vega runs it.
const char* const kRenderScript = R"js(
(function () {
  'use strict';
  var charts = JSON.parse(document.getElementById('moelab-charts').textContent);
  var failed = 0, drawn = 0;
  function fail(figure, id, err) {
    var msg = 'Chart "' + id + '" could not be drawn: ' + (err && err.message ? err.message : String(err));
    console.error(msg);
    var p = document.createElement('p');
    p.className = 'chart-error';
    p.textContent = msg;
    figure.querySelector('.vis').replaceChildren(p);
    var banner = document.getElementById('render-errors');
    banner.hidden = false;
    banner.textContent = (++failed) + ' of ' + charts.length + ' charts could not be drawn; each says why in place.';
  }
  var options = {
    mode: 'vega-lite', renderer: 'canvas',
    actions: {export: true, source: true, compiled: false, editor: false}
  };
  Promise.all(charts.map(function (c) {
    var figure = document.getElementById('chart-' + c.id);
    if (typeof vegaEmbed !== 'function') {
      fail(figure, c.id, new Error('the Vega libraries did not load'));
      return null;
    }
    return vegaEmbed(figure.querySelector('.vis'), c.spec, Object.assign({downloadFileName: c.id}, options))
      .then(function () { figure.dataset.drawn = 'true'; drawn++; },
            function (e) { fail(figure, c.id, e); });
  })).then(function () { document.body.dataset.chartsDrawn = String(drawn); });
})();
)js";

std::string escape_html(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// JSON for a <script type="application/json"> element: '<', '>' and '&' occur only inside JSON strings, where
// their \u escapes mean the same to JSON.parse and nothing to the HTML parser.
std::string script_json(const json& j) {
  const std::string text = dump_json(j);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void append_table(std::string& html, const std::vector<std::vector<std::string>>& table) {
  if (table.empty()) return;
  html += "<table>\n<thead><tr>";
  for (const auto& cell : table[0]) html += "<th>" + escape_html(cell) + "</th>";
  html += "</tr></thead>\n<tbody>\n";
  for (size_t r = 1; r < table.size(); ++r) {
    html += "<tr>";
    for (const auto& cell : table[r]) html += "<td>" + escape_html(cell) + "</td>";
    html += "</tr>\n";
  }
  html += "</tbody>\n</table>\n";
}

}  // namespace

std::string_view web_bundle(const std::string& name, const std::string& what) {
  const auto bytes = find_resource("web/" + name);
  if (!bytes)
    throw_error(what, ": this moelab was built without the charting libraries (web/", name,
                " is not embedded: web/node_modules was missing when it was configured); run `npm ci --prefix web` "
                "in the moelab source folder, then rebuild (cmake --build <build folder>)");
  return *bytes;
}

std::string escape_script(std::string_view js) {
  std::string out;
  out.reserve(js.size());
  for (size_t i = 0; i < js.size(); ++i) {
    auto starts = [&](std::string_view word) {
      if (js.size() - i < word.size()) return false;
      for (size_t k = 0; k < word.size(); ++k)
        if (std::tolower(static_cast<unsigned char>(js[i + k])) != word[k]) return false;
      return true;
    };
    if (starts("</script")) {
      out += "<\\/";
      i += 1;  // the '/' is written escaped; "script" follows as is
    } else if (starts("<!--")) {
      out += "<\\x21";
      i += 1;  // the '!' is written escaped
    } else {
      out += js[i];
    }
  }
  return out;
}

void write_html_report(const std::string& path, const ReportDoc& doc) {
  const std::string what = "report " + path;
  std::vector<Chart> all_charts;
  std::set<std::string> section_ids;
  for (const auto& s : doc.sections) {
    if (!is_safe_id(s.id))
      throw_error(what, ": section id '", s.id, "' (title '", s.title,
                  "'): expected a non-empty name of letters, digits, '-', '_' and '.', not starting with '.'");
    if (!section_ids.insert(s.id).second) throw_error(what, ": section id '", s.id, "' is used more than once");
    all_charts.insert(all_charts.end(), s.charts.begin(), s.charts.end());
  }
  check_charts(all_charts, what);
  const std::string_view bundles[] = {web_bundle("vega.min.js", what), web_bundle("vega-lite.min.js", what),
                                      web_bundle("vega-embed.min.js", what)};

  std::string html;
  html.reserve(2 << 20);
  html += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  // Inline scripts and styles only; Vega compiles its expressions with Function (unsafe-eval); images as data:
  // and blob: URLs are vega-embed's PNG/SVG export. No fetch of any kind.
  html +=
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline' "
      "'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:\">\n";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  html += "<title>" + escape_html(doc.title) +
          "</title>\n<style>:root { --page-width: " + std::to_string(kPageWidthPx) + "px; }" + kStyle +
          "</style>\n</head>\n<body>\n";
  html += "<header>\n<h1>" + escape_html(doc.title) + "</h1>\n";
  if (!doc.subtitle.empty()) html += "<p class=\"subtitle\">" + escape_html(doc.subtitle) + "</p>\n";
  html += "</header>\n<noscript><p class=\"noscript-note\">The charts of this report need JavaScript.</p></noscript>\n";
  html += "<p id=\"render-errors\" hidden></p>\n";

  html += "<nav class=\"toc\">\n<h2>Contents</h2>\n<ol>\n";
  for (const auto& s : doc.sections) {
    html += "<li><a href=\"#section-" + s.id + "\">" + escape_html(s.title) + "</a>";
    if (!s.charts.empty()) {
      html += "\n<ol>\n";
      for (const auto& c : s.charts)
        html += "<li><a href=\"#chart-" + c.id + "\">" + escape_html(c.title) + "</a></li>\n";
      html += "</ol>\n";
    }
    html += "</li>\n";
  }
  html += "</ol>\n</nav>\n<main>\n";

  for (const auto& s : doc.sections) {
    html += "<section id=\"section-" + s.id + "\">\n<h2>" + escape_html(s.title) + "</h2>\n";
    for (const auto& p : s.paragraphs) html += "<p>" + escape_html(p) + "</p>\n";
    append_table(html, s.table);
    for (const auto& c : s.charts) {
      html += "<figure class=\"chart\" id=\"chart-" + c.id + "\">\n<h3>" + escape_html(c.title) +
              "</h3>\n<div class=\"vis\"></div>\n";
      if (!c.caption.empty()) html += "<figcaption>" + escape_html(c.caption) + "</figcaption>\n";
      html += "</figure>\n";
    }
    html += "</section>\n";
  }
  html += "</main>\n";

  json specs = json::array();
  for (const auto& c : all_charts) specs.push_back({{"id", c.id}, {"spec", c.spec}});
  html += "<script id=\"moelab-charts\" type=\"application/json\">" + script_json(specs) + "</script>\n";
  for (std::string_view bundle : bundles) html += "<script>" + escape_script(bundle) + "</script>\n";
  html += "<script>" + std::string(kRenderScript) + "</script>\n</body>\n</html>\n";
  write_file_atomic(path, html);
}

}  // namespace moelab::report
