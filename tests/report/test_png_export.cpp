// PNG figures: real PNG files of the size Vega lays the chart out at times the scale, with pixels that are not
// blank (several colours, dark text and axis pixels), for a chart whose size is known exactly and for one figure
// of every builder; and the errors for a bad spec, a bad id, a bad scale and a missing tool. The tools are the
// product's run-time dependencies (node, rsvg-convert) plus python3 for decoding pixels: when one is missing the
// test fails naming the package, it never skips.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "report/png_export.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::error_of;
using testing::read_all;
using testing::TempDir;

struct PngSize {
  uint32_t width = 0, height = 0;
};

uint32_t big_endian32(const std::string& b, size_t at) {
  return (uint32_t(uint8_t(b[at])) << 24) | (uint32_t(uint8_t(b[at + 1])) << 16) | (uint32_t(uint8_t(b[at + 2])) << 8) |
         uint32_t(uint8_t(b[at + 3]));
}

// The PNG signature, then IHDR as the first chunk: its width and height.
PngSize png_size(const std::string& path) {
  const std::string bytes = read_all(path);
  EXPECT_GE(bytes.size(), 24u) << path;
  if (bytes.size() < 24) return {};
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << path << ": no PNG signature";
  EXPECT_EQ(bytes.substr(12, 4), "IHDR") << path;
  return {big_endian32(bytes, 16), big_endian32(bytes, 20)};
}

struct PixelStats {
  uint32_t width = 0, height = 0;
  int64_t colours = 0, dark = 0;
};

// Decodes the PNGs with tests/report/png_pixels.py (python3's zlib): one PixelStats per file.
std::vector<PixelStats> pixel_stats(const std::vector<std::string>& paths) {
  std::string cmd = "python3 " + std::string(MOELAB_TEST_DIR) + "/report/png_pixels.py";
  for (const auto& p : paths) cmd += " '" + p + "'";
  cmd += " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = pclose(pipe);
  EXPECT_EQ(status, 0) << "decoding PNGs with python3 failed (install the Debian package python3: "
                          "scripts/install-deps.sh --tests): "
                       << out;
  std::vector<PixelStats> stats;
  std::istringstream in(out);
  PixelStats s;
  while (in >> s.width >> s.height >> s.colours >> s.dark) stats.push_back(s);
  EXPECT_EQ(stats.size(), paths.size()) << out;
  return stats;
}

// The width and height attributes of the root <svg> element: the size Vega laid the chart out at, times the scale.
PngSize svg_size(const std::string& svg) {
  std::smatch m;
  const std::string head = svg.substr(0, svg.find('>'));
  EXPECT_TRUE(std::regex_search(head, m, std::regex(R"re(width="([0-9.]+)" height="([0-9.]+)")re"))) << head;
  if (m.empty()) return {};
  return {static_cast<uint32_t>(std::stod(m[1])), static_cast<uint32_t>(std::stod(m[2]))};
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A text-only chart of fixed size: autosize none makes the view exactly width + 2 padding wide.
Chart text_chart(const std::string& id) {
  return {id, "Hello", "", json::parse(R"({"width": 300, "height": 120, "autosize": {"type": "none"}, "padding": 10,
                          "background": "white", "data": {"values": [{"t": "Hello"}]},
                          "mark": {"type": "text", "fontSize": 48, "color": "black"},
                          "encoding": {"text": {"field": "t"}}})")};
}

TEST(ReportPng, FigureOfKnownSizeIsThatSizeTimesTheScaleWithItsTextDrawn) {
  TempDir dir;
  const std::string out = dir.file("figures/nested");  // created by the export
  export_pngs({text_chart("hello")}, out, 2);
  const std::string png = out + "/hello.png";
  ASSERT_TRUE(fs::exists(png));
  const PngSize size = png_size(png);
  EXPECT_EQ(size.width, 640u);   // (300 + 2 * 10) * 2
  EXPECT_EQ(size.height, 280u);  // (120 + 2 * 10) * 2
  const auto stats = pixel_stats({png});
  ASSERT_EQ(stats.size(), 1u);
  // Only the text can be dark on a white canvas: thousands of dark pixels mean a font was found and drawn.
  EXPECT_GT(stats[0].dark, 2000);
  EXPECT_GT(stats[0].colours, 2);  // white, black and the antialiased edge shades
  // Nothing but the PNGs is left in the output folder.
  EXPECT_EQ(std::distance(fs::directory_iterator(out), fs::directory_iterator()), 1);

  export_pngs({text_chart("hello")}, out, 1.5);  // replaces the file
  EXPECT_EQ(png_size(png).width, 480u);
  EXPECT_EQ(png_size(png).height, 210u);
}

TEST(ReportPng, EveryBuilderFigureHasTheSizeVegaLaysOutAndIsNotBlank) {
  std::vector<double> m(6 * 6);
  for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<double>(i % 7) / 6.0;
  ScatterOptions so;
  so.group = {"a", "b", "a", "b"};
  so.fit = LinearFit{1, 0, "y = x"};
  const std::vector<Chart> charts = {
      {"heatmap", "Heatmap", "", heatmap(m, 6, 6, {}, {}, "expert", "expert", "similarity")},
      {"bars", "Bars", "", bar_chart({"e0", "e1", "e2"}, {3, 1, 2}, "expert", "tokens")},
      {"grouped", "Grouped", "", grouped_bar_chart({"l0", "l1"}, {"a", "b"}, {{1, 2}, {2, 1}}, "layer", "n", "run")},
      {"histogram", "Histogram", "", histogram_chart({"1", "2", "3"}, {5, 9, 2}, "experts", "tokens")},
      {"line", "Line", "", line_chart({{"train", {0, 1, 2}, {3, 2, 1.5}}, {"val", {0, 2}, {3.2, 2}}}, "step", "loss")},
      {"scatter", "Scatter", "", scatter_chart({0, 1, 2, 3}, {0.1, 0.9, 2.2, 2.9}, "x", "y", so)},
      {"panels", "Panels", "",
       concat_charts({heatmap(m, 6, 6, {}, {}, "e", "e", "s"), heatmap(m, 6, 6, {}, {}, "e", "e", "s")},
                     {"layer 0", "layer 1"}, 2)},
  };
  TempDir dir;
  export_pngs(charts, dir.path().string(), 2);
  const std::vector<std::string> svgs = render_svgs(charts, 2);
  ASSERT_EQ(svgs.size(), charts.size());
  std::vector<std::string> paths;
  for (const auto& c : charts) paths.push_back(dir.file(c.id + ".png"));
  const auto stats = pixel_stats(paths);
  ASSERT_EQ(stats.size(), charts.size());
  for (size_t i = 0; i < charts.size(); ++i) {
    SCOPED_TRACE(charts[i].id);
    const PngSize png = png_size(paths[i]);
    const PngSize svg = svg_size(svgs[i]);
    EXPECT_EQ(png.width, svg.width);
    EXPECT_EQ(png.height, svg.height);
    EXPECT_EQ(stats[i].width, png.width);
    const json& spec = charts[i].spec;
    if (spec.contains("width") && spec["width"].is_number()) {  // the plot area, plus axes and padding, times 2
      EXPECT_GT(png.width, 2 * spec["width"].get<uint32_t>());
      EXPECT_GT(png.height, 2 * spec["height"].get<uint32_t>());
    }
    EXPECT_GT(stats[i].colours, 3);  // background, marks, grid, text
    EXPECT_GT(stats[i].dark, 100);   // axis labels and titles
  }
}

TEST(ReportPng, ErrorsNameTheChartTheIdTheScaleAndTheMissingPackage) {
  TempDir dir;
  const Chart broken{"broken", "Broken", "", json{{"mark", "no-such-mark"}, {"data", {{"values", json::array()}}}}};
  EXPECT_CONTAINS(error_of([&] { export_pngs({text_chart("fine"), broken}, dir.path().string()); }), "chart 'broken'");
  EXPECT_FALSE(fs::exists(dir.file("fine.png")));  // nothing is written unless every figure renders
  EXPECT_CONTAINS(error_of([&] { export_pngs({text_chart("../escape")}, dir.path().string()); }),
                  "chart id '../escape'");
  EXPECT_CONTAINS(error_of([&] { export_pngs({text_chart("a")}, dir.path().string(), 0); }),
                  "scale 0: expected a positive number");

  // A PATH without the tools: each is named with the Debian package that provides it.
  TempDir empty;
  ScopedEnv path("PATH", empty.path().string());
  EXPECT_CONTAINS(error_of([&] { export_pngs({text_chart("a")}, dir.path().string()); }),
                  "install the Debian package librsvg2-bin");
  EXPECT_CONTAINS(error_of([&] { render_svgs({text_chart("a")}); }), "install the Debian package nodejs");
}

}  // namespace
}  // namespace moelab::report
