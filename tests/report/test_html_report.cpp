// The HTML report in a real browser: Debian's headless Chromium loads the written file from the file system with
// every host name unresolvable, and the test reads the page as Chromium left it (--dump-dom) and Chromium's log.
// A report with charts of every builder draws them all, prints nothing on the console and refers to no URL; a
// chart that cannot be drawn says so on the console and on the page. Chromium missing fails the test, naming the
// package; it never skips.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <regex>

#include "core/error.h"
#include "report/html_report.h"
#include "support/chromium.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::BrowserRun;
using testing::charts_drawn;
using testing::console_lines;
using testing::console_text;
using testing::error_of;
using testing::figure_of;
using testing::has_drawn_canvas;
using testing::load_in_chromium;
using testing::read_all;
using testing::TempDir;

// A report with charts of every builder kind, labels that must be escaped, a table and paragraphs.
ReportDoc sample_report() {
  std::vector<double> small(8 * 8), big(30 * 48);
  for (size_t i = 0; i < small.size(); ++i) small[i] = std::cos(0.3 * static_cast<double>(i));
  for (size_t i = 0; i < big.size(); ++i) big[i] = std::sin(0.01 * static_cast<double>(i)) * 50;
  std::vector<std::string> tokens;
  for (int i = 0; i < 30; ++i) tokens.push_back("t" + std::to_string(i));
  tokens[0] = tokens[14] = "</script>";
  tokens[5] = "<!--";
  tokens[10] = "caf\xc3";  // invalid UTF-8: a token cut inside a character
  HeatmapOptions diverging;
  diverging.scheme = ColorScheme::blue_orange;
  diverging.domain = std::array<double, 2>{-1, 1};
  std::vector<json> panels;
  std::vector<std::string> titles;
  for (int l = 0; l < 4; ++l) {
    panels.push_back(heatmap(small, 8, 8, {}, {}, "expert", "expert", "cosine"));
    titles.push_back("layer " + std::to_string(l));
  }
  ScatterOptions so;
  so.group = {"up", "gate", "down", "up", "gate", "down"};
  so.label = {"e0-e1", "e0-e2", "e1-e2", "e0-e3", "e1-e3", "e2-e3"};
  so.fit = LinearFit{0.8, 0.05, "r² = 0.33"};

  ReportDoc doc{"moelab report: <test> & co", "checkpoint \"x\"", {}};
  doc.sections.push_back(
      {"specialisation",
       "Specialisation",
       {"NMI of <b>POS</b> & genre; 5 < 6 > 4."},
       {{"layer", "NMI", "z"}, {"0", "0.41", "12.3"}, {"1", "<0.1>", "3.0"}},
       {{"sim", "Expert similarity", "Cosine of flattened weights </script>",
         heatmap(small, 8, 8, {}, {}, "expert", "expert", "cosine")},
        {"corr", "Correlation", "", heatmap(small, 8, 8, {}, {}, "a", "b", "r", diverging)},
        {"activation", "Activation map", "", heatmap(big, 30, 48, tokens, {}, "token", "neuron", "silu(gate x)")},
        {"layers", "Per layer", "", concat_charts(panels, titles, 2)}}});
  doc.sections.push_back(
      {"dynamic",
       "Dynamic routing",
       {"Experts per token."},
       {},
       {{"ept", "Experts per token", "",
         bar_chart({"layer 0", "layer 1", "layer 2"}, {2.4, 1.9, 1.7}, "layer", "experts")},
        {"ept-runs", "Against top-2", "",
         grouped_bar_chart({"l0", "l1"}, {"top-2", "top-p"}, {{2, 2}, {2.4, 1.8}}, "layer", "experts", "router")},
        {"hist", "Histogram", "", histogram_chart({"1", "2", "3", "4+"}, {10, 40, 30, 5}, "experts", "tokens")},
        {"course", "Over training", "",
         line_chart({{"layer 0", {0, 100, 200}, {2.4, 2.0, 1.8}}, {"layer 1", {0, 100, 200}, {2.2, 1.9, NAN}}}, "step",
                    "experts per token")}}});
  doc.sections.push_back(
      {"static",
       "Static experts",
       {},
       {},
       {{"router-vs-expert", "Router against expert similarity", "",
         scatter_chart({0.1, 0.2, 0.3, 0.5, 0.6, 0.9}, {0.1, 0.3, 0.2, 0.5, 0.4, 0.8}, "router rows", "experts", so)},
        {"pca", "PCA", "", scatter_chart({1, -1, 0.5}, {0.2, 0.1, -0.4}, "PC1", "PC2")}}});
  return doc;
}

size_t chart_count(const ReportDoc& doc) {
  size_t n = 0;
  for (const auto& s : doc.sections) n += s.charts.size();
  return n;
}

TEST(ReportHtml, EveryChartDrawsInHeadlessChromiumWithoutConsoleMessagesOrUrls) {
  TempDir dir;
  const std::string path = dir.file("report.html");
  const ReportDoc doc = sample_report();
  write_html_report(path, doc);
  const std::string html = read_all(path);

  const BrowserRun run = load_in_chromium(path, dir);
  ASSERT_EQ(run.status, 0) << run.log;
  EXPECT_EQ(console_text(run), "");  // no error, no warning, no log line
  EXPECT_EQ(charts_drawn(run.dom), static_cast<int>(chart_count(doc))) << run.dom.substr(0, 2000);
  for (const auto& s : doc.sections) {
    for (const auto& c : s.charts) {
      SCOPED_TRACE(c.id);
      const std::string figure = figure_of(run.dom, c.id);
      ASSERT_FALSE(figure.empty());
      EXPECT_NE(figure.find("data-drawn=\"true\""), std::string::npos);
      EXPECT_TRUE(has_drawn_canvas(figure)) << figure.substr(0, 500);
      EXPECT_EQ(figure.find("chart-error"), std::string::npos);
    }
  }
  EXPECT_NE(run.dom.find("<p id=\"render-errors\" hidden=\"\">"), std::string::npos);
  // Text is escaped, not markup; the table, the contents and the sections are there.
  EXPECT_NE(run.dom.find("NMI of &lt;b&gt;POS&lt;/b&gt; &amp; genre; 5 &lt; 6 &gt; 4."), std::string::npos);
  EXPECT_NE(run.dom.find("<td>&lt;0.1&gt;</td>"), std::string::npos);
  EXPECT_NE(run.dom.find("<a href=\"#section-dynamic\">Dynamic routing</a>"), std::string::npos);
  EXPECT_NE(run.dom.find("<a href=\"#chart-pca\">PCA</a>"), std::string::npos);
  EXPECT_NE(run.dom.find("<title>moelab report: &lt;test&gt; &amp; co</title>"), std::string::npos);

  // Outside the three inlined libraries (whose code holds namespace and documentation URLs it never fetches,
  // which the page's Content-Security-Policy would refuse anyway), the file refers to nothing outside itself.
  std::string ours = html;
  for (const char* name : {"vega.min.js", "vega-lite.min.js", "vega-embed.min.js"}) {
    const std::string bundle = escape_script(web_bundle(name, "test"));
    const size_t at = ours.find(bundle);
    ASSERT_NE(at, std::string::npos) << name << " is not inlined";
    ours.erase(at, bundle.size());
  }
  for (const char* ref : {"http:", "https:", "src=", "<link", "@import", "url("})
    EXPECT_EQ(ours.find(ref), std::string::npos) << ref;
  EXPECT_NE(ours.find("Content-Security-Policy\" content=\"default-src 'none';"), std::string::npos);
}

TEST(ReportHtml, AChartThatCannotBeDrawnSaysSoOnTheConsoleAndOnThePage) {
  TempDir dir;
  const std::string path = dir.file("report.html");
  ReportDoc doc{"r", "", {{"s", "S", {}, {}, {}}}};
  doc.sections[0].charts.push_back({"good", "Good", "", bar_chart({"a", "b"}, {1, 2}, "x", "y")});
  doc.sections[0].charts.push_back({"bad", "Bad", "", json{{"mark", "no-such-mark"}}});
  write_html_report(path, doc);
  const BrowserRun run = load_in_chromium(path, dir);
  ASSERT_EQ(run.status, 0) << run.log;
  EXPECT_EQ(charts_drawn(run.dom), 1);
  const std::vector<std::string> console = console_lines(run.log);
  ASSERT_EQ(console.size(), 1u) << run.log;
  EXPECT_NE(console[0].find("Chart \"bad\" could not be drawn"), std::string::npos) << console[0];
  const std::string bad = figure_of(run.dom, "bad");
  EXPECT_NE(bad.find("<p class=\"chart-error\">Chart \"bad\" could not be drawn"), std::string::npos) << bad;
  EXPECT_NE(run.dom.find("<p id=\"render-errors\">1 of 2 charts could not be drawn"), std::string::npos);
  EXPECT_TRUE(has_drawn_canvas(figure_of(run.dom, "good")));
}

TEST(ReportHtml, BadIdsAreRefusedAndNothingIsWritten) {
  TempDir dir;
  const std::string path = dir.file("report.html");
  const json spec = bar_chart({"a"}, {1}, "x", "y");
  ReportDoc dup_chart{
      "r", "", {{"a", "A", {}, {}, {{"c", "C", "", spec}}}, {"b", "B", {}, {}, {{"c", "D", "", spec}}}}};
  EXPECT_CONTAINS(error_of([&] { write_html_report(path, dup_chart); }),
                  "report " + path + ": chart id 'c' is used by more than one chart");
  ReportDoc dup_section{"r", "", {{"a", "A", {}, {}, {}}, {"a", "B", {}, {}, {}}}};
  EXPECT_CONTAINS(error_of([&] { write_html_report(path, dup_section); }), "section id 'a' is used more than once");
  ReportDoc bad_section{"r", "", {{"a b", "Title", {}, {}, {}}}};
  EXPECT_CONTAINS(error_of([&] { write_html_report(path, bad_section); }), "section id 'a b' (title 'Title')");
  EXPECT_FALSE(fs::exists(path));
}

TEST(ReportHtml, ScriptTextCannotCloseItsElement) {
  EXPECT_EQ(escape_script("a = '</script>'; b = /<\\/SCRIPT/; c = '<!--';"),
            "a = '<\\/script>'; b = /<\\/SCRIPT/; c = '<\\x21--';");
  EXPECT_EQ(escape_script("x </Script y"), "x <\\/Script y");
  EXPECT_EQ(escape_script("plain < / script"), "plain < / script");
}

TEST(ReportHtml, TheChartingLibrariesAreEmbedded) {
  // Built after `npm ci --prefix web`: the bundles are in the binary, each its UMD build.
  EXPECT_NE(web_bundle("vega.min.js", "test").find(".vega={}"), std::string::npos);
  EXPECT_NE(web_bundle("vega-lite.min.js", "test").find(".vegaLite={}"), std::string::npos);
  EXPECT_NE(web_bundle("vega-embed.min.js", "test").find(".vegaEmbed="), std::string::npos);
  EXPECT_CONTAINS(error_of([] { web_bundle("no-such-file.js", "report r.html"); }),
                  "run `npm ci --prefix web` in the moelab source folder, then rebuild");
}

}  // namespace
}  // namespace moelab::report
