// Headless Chromium for the report tests: loads an HTML file from the file system with every host name
// unresolvable and returns the page as Chromium left it (--dump-dom) and Chromium's log, plus readers of the
// hooks the report leaves for tests (data-charts-drawn, data-drawn figures). Chromium missing fails the calling
// test, naming the package; it never skips.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <regex>
#include <string>
#include <vector>

#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab::testing {

struct BrowserRun {
  int status = -1;
  std::string dom;  // the document after the scripts ran
  std::string log;  // Chromium's stderr: console messages appear as lines with ":CONSOLE"
};

// Loads file://html_path in headless Chromium and dumps the DOM once the page is idle. No sandbox (tests run as
// root in CI), its own profile folder, and a resolver that fails every host: nothing can be fetched.
inline BrowserRun load_in_chromium(const std::string& html_path, const TempDir& dir) {
  BrowserRun run;
  if (::access("/usr/bin/chromium", X_OK) != 0) {
    ADD_FAILURE() << "/usr/bin/chromium not found: install the Debian package chromium (scripts/install-deps.sh "
                     "--tests)";
    return run;
  }
  const std::string log_path = dir.file("chromium.log");
  const std::string cmd =
      "/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
      "--no-default-browser-check --disable-background-networking --disable-component-update --disable-extensions "
      "--disable-sync --host-resolver-rules='MAP * ~NOTFOUND' --user-data-dir='" +
      dir.file("profile") + "' --enable-logging=stderr --v=0 --virtual-time-budget=30000 --dump-dom 'file://" +
      html_path + "' 2>'" + log_path + "'";
  FILE* pipe = popen(cmd.c_str(), "r");
  char buf[1 << 16];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) run.dom.append(buf, n);
  run.status = pclose(pipe);
  run.log = read_all(log_path);
  return run;
}

inline std::vector<std::string> console_lines(const std::string& log) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    const std::string line = log.substr(start, end - start);
    if (line.find(":CONSOLE") != std::string::npos) lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

// The markup of figure chart-<id> in the dumped DOM.
inline std::string figure_of(const std::string& dom, const std::string& id) {
  const size_t at = dom.find("<figure class=\"chart\" id=\"chart-" + id + "\"");
  if (at == std::string::npos) return "";
  return dom.substr(at, dom.find("</figure>", at) - at);
}

// Whether a figure holds a drawn canvas (vega-embed's canvas renderer) of non-zero size.
inline bool has_drawn_canvas(const std::string& figure) {
  std::smatch m;
  if (!std::regex_search(figure, m, std::regex(R"re(<canvas width="(\d+)" height="(\d+)")re"))) return false;
  return std::stoi(m[1]) > 0 && std::stoi(m[2]) > 0;
}

inline int charts_drawn(const std::string& dom) {
  std::smatch m;
  if (!std::regex_search(dom, m, std::regex(R"re(<body[^>]*data-charts-drawn="(\d+)")re"))) return -1;
  return std::stoi(m[1]);
}

inline std::string console_text(const BrowserRun& run) {
  std::string text;
  for (const auto& l : console_lines(run.log)) text += l + "\n";
  return text;
}

}  // namespace moelab::testing
