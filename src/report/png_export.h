// PNG figures of a report's charts, one per chart for use in papers, drawn by Vega itself.
//
// How: one Node.js process runs the same Vega and Vega-Lite browser bundles the HTML report inlines (embedded in
// the binary, written to a temporary folder with our web/render-svg.js) and renders every chart to SVG; then
// Debian's rsvg-convert (librsvg2-bin) rasterises each SVG, as many at once as there are cores. Why this path:
//  - Vega draws the figure, so a PNG shows exactly the chart of the report, from one spec and one library.
//  - Batched: Node.js starts once for all charts (about 0.3 s) and rsvg-convert takes tens of milliseconds per
//    figure, so thirty figures take a couple of seconds on two cores.
//  - Small, stable dependencies: nodejs and librsvg2-bin are ordinary Debian packages; headless Chromium would be
//    a browser-sized run-time dependency with a slower start, and node-canvas a native addon to build per platform.
//  - Text: rsvg-convert draws it with fontconfig's fonts (DejaVu Sans from fonts-dejavu-core, which librsvg's
//    dependencies pull in). Vega under Node.js has no canvas to measure text, so it estimates label widths a
//    little generously: a figure's margins may be slightly wider than the same chart's in a browser.
// A missing tool throws moelab::Error naming the Debian package to install; a spec Vega cannot render throws
// naming the chart.
#pragma once

#include <string>
#include <vector>

#include "report/chart.h"

namespace moelab::report {

// Writes <out_dir>/<id>.png for every chart (out_dir is created; each file is replaced atomically), `scale`
// pixels per CSS pixel of the chart. Prints nothing.
void export_pngs(const std::vector<Chart>& charts, const std::string& out_dir, double scale = 2);

// The SVG text of every chart, in order, with width and height multiplied by `scale`: what export_pngs
// rasterises, so its width and height attributes are the PNG's size.
std::vector<std::string> render_svgs(const std::vector<Chart>& charts, double scale = 1);

}  // namespace moelab::report
