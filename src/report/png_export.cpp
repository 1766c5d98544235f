#include "report/png_export.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "core/error.h"
#include "io/atomic_file.h"
#include "report/html_report.h"

extern char** environ;

namespace moelab::report {
namespace {

namespace fs = std::filesystem;

const char* const kWhat = "PNG export";

// The full path of an executable found on PATH, or "" when there is none.
std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(start, end - start);
    const std::string candidate = (fs::path(dir.empty() ? "." : dir) / name).string();
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
    start = end + 1;
  }
  return "";
}

std::string require_program(const std::string& name, const std::string& package, const std::string& purpose) {
  std::string found = find_program(name);
  if (found.empty())
    throw_error(kWhat, ": `", name, "` is not on PATH; it ", purpose, ": install the Debian package ", package,
                " (scripts/install-deps.sh)");
  return found;
}

// A private temporary folder, removed with its contents when it goes out of scope.
class TempFolder {
 public:
  TempFolder() {
    std::string templ = (fs::temp_directory_path() / "moelab_figures_XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr)
      throw_error(kWhat, ": cannot create a temporary folder ", templ, " (", std::strerror(errno), ")");
    path_ = templ;
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(kWhat, ": cannot read ", path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Starts argv with stdout and stderr going to log_path; returns the child's pid.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw_error(kWhat, ": cannot run ", argv[0], ": ", std::strerror(rc));
  return pid;
}

// Waits for pid; its exit code, or 128 + the signal that ended it.
int wait_for(pid_t pid, const std::string& name) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_error(kWhat, ": waiting for ", name, " failed: ", std::strerror(errno));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The end of a tool's log, for an error message.
std::string log_tail(const std::string& log_path) {
  std::string log = read_file(log_path);
  while (!log.empty() && (log.back() == '\n' || log.back() == ' ')) log.pop_back();
  constexpr size_t kMax = 2000;
  return log.size() > kMax ? "..." + log.substr(log.size() - kMax) : log;
}

void check_scale(double scale) {
  if (!(std::isfinite(scale) && scale > 0)) throw_error(kWhat, ": scale ", scale, ": expected a positive number");
}

// Renders every chart to <figures>/<id>.svg with one Node.js process; the tools' own files stay in tmp, apart
// from the charts' files, whatever the ids.
void render_svg_files(const std::vector<Chart>& charts, const TempFolder& tmp, const std::string& figures,
                      double scale) {
  check_charts(charts, kWhat);
  const std::string node = require_program("node", "nodejs", "runs Vega to draw the figures");
  for (const char* name : {"vega.min.js", "vega-lite.min.js", "render-svg.js"})
    write_file_atomic(tmp.file(name), web_bundle(name, kWhat));
  nlohmann::json jobs = nlohmann::json::array();
  for (const auto& c : charts) jobs.push_back({{"id", c.id}, {"spec", c.spec}});
  write_file_atomic(tmp.file("jobs.json"), dump_json(jobs));
  const std::string log = tmp.file("node.log");
  std::error_code ec;
  fs::create_directory(figures, ec);
  if (ec) throw_error(kWhat, ": cannot create folder ", figures, " (", ec.message(), ")");
  const int rc = wait_for(spawn({node, tmp.file("render-svg.js"), tmp.path().string(), tmp.file("jobs.json"), figures,
                                 nlohmann::json(scale).dump()},
                                log),
                          "node");
  if (rc != 0) throw_error(kWhat, ": Vega could not draw the charts (node exit code ", rc, "): ", log_tail(log));
}

}  // namespace

std::vector<std::string> render_svgs(const std::vector<Chart>& charts, double scale) {
  check_scale(scale);
  TempFolder tmp;
  const fs::path figures = tmp.file("figures");
  render_svg_files(charts, tmp, figures.string(), scale);
  std::vector<std::string> svgs;
  for (const auto& c : charts) svgs.push_back(read_file((figures / (c.id + ".svg")).string()));
  return svgs;
}

void export_pngs(const std::vector<Chart>& charts, const std::string& out_dir, double scale) {
  check_scale(scale);
  const std::string rsvg = require_program("rsvg-convert", "librsvg2-bin", "turns the figures into PNG");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw_error(kWhat, ": cannot create folder ", out_dir, " (", ec.message(), ")");
  TempFolder tmp;
  const fs::path figures = tmp.file("figures");
  auto figure = [&](const std::string& id, const char* ext) { return (figures / (id + ext)).string(); };
  render_svg_files(charts, tmp, figures.string(), scale);  // the SVGs carry the scale in their width and height

  // Rasterise in waves of one rsvg-convert per core; every file is checked before any is moved into out_dir.
  const size_t parallel = std::max(1u, std::thread::hardware_concurrency());
  for (size_t first = 0; first < charts.size(); first += parallel) {
    const size_t last = std::min(charts.size(), first + parallel);
    std::vector<pid_t> pids;
    try {
      for (size_t i = first; i < last; ++i) {
        const std::string& id = charts[i].id;
        pids.push_back(
            spawn({rsvg, "--format=png", "--output=" + figure(id, ".png"), figure(id, ".svg")}, figure(id, ".log")));
      }
    } catch (const Error&) {
      for (pid_t pid : pids) wait_for(pid, "rsvg-convert");  // reap the wave's started processes first
      throw;
    }
    int failed_rc = 0;
    std::string failed_id;
    for (size_t i = first; i < last; ++i) {
      const int rc = wait_for(pids[i - first], "rsvg-convert");
      if (rc != 0 && failed_id.empty()) failed_rc = rc, failed_id = charts[i].id;
    }
    if (!failed_id.empty())
      throw_error(kWhat, ": rsvg-convert failed on chart '", failed_id, "' (exit code ", failed_rc,
                  "): ", log_tail(figure(failed_id, ".log")));
  }
  for (const auto& c : charts)
    write_file_atomic((fs::path(out_dir) / (c.id + ".png")).string(), read_file(figure(c.id, ".png")));
}

}  // namespace moelab::report
