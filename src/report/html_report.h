// The HTML report of `moelab analyze report` (docs/analysis.md): one self-contained file that opens offline from the
// file system. Vega, Vega-Lite and vega-embed (npm, pinned by web/package-lock.json, embedded into the binary at
// build time: cmake/embed_resources.cmake) are inlined in <script> tags and every chart's spec is inlined as JSON,
// so viewing needs no network; a Content-Security-Policy forbids any fetch, so a stray reference fails loudly
// instead of silently reaching out.
//
// The page draws each chart with vegaEmbed into its own figure, under its title and above its caption. A chart that
// fails says so in its figure and on console.error. When every chart has been tried, <body> carries
// data-charts-drawn="<charts drawn>" and each drawn figure data-drawn="true": the hooks the headless-browser test
// reads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "report/chart.h"

namespace moelab::report {

struct ReportSection {
  std::string id;  // anchor (#section-<id>) and table-of-contents link; same rule as chart ids
  std::string title;
  std::vector<std::string> paragraphs;          // plain text (HTML-escaped when written)
  std::vector<std::vector<std::string>> table;  // optional; the first row is the header
  std::vector<Chart> charts;
};

struct ReportDoc {
  std::string title;
  std::string subtitle;
  std::vector<ReportSection> sections;
};

// Writes the report to `path` atomically. Throws moelab::Error for bad section or chart ids (unique across the
// whole report), and when this build lacks the charting libraries (see web_bundle).
void write_html_report(const std::string& path, const ReportDoc& doc);

// The embedded file web/<name> (e.g. "vega.min.js"). Throws moelab::Error naming `what` when the build had no
// web/node_modules, saying to run `npm ci --prefix web` in the source folder and rebuild: a report is never
// written without its charts.
std::string_view web_bundle(const std::string& name, const std::string& what);

// Text for a <script> element: "</script" and "<!--" (which end or derail the element in an HTML parser) become
// "<\/script" and "<\x21--", which mean the same inside JavaScript strings, regexes and comments.
std::string escape_script(std::string_view js);

}  // namespace moelab::report
