#include "train/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "core/error.h"

namespace moelab {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLockName = ".lock";

// The files and folders of a run folder, its lock file aside.
std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename() != kLockName) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string listed(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 4; ++i) out += (i ? ", " : "") + names[i];
  return names.size() > 4 ? out + ", ..." : out;
}

bool same_folder(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec);
}

// Takes the folder's lock without waiting; throws naming the pid recorded by the process that holds it.
int lock_folder(const fs::path& dir) {
  const fs::path path = dir / kLockName;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw_error("cannot open ", path.string(), ": ", std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {0};
    const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
    ::close(fd);
    std::string pid(holder, n > 0 ? static_cast<size_t>(n) : 0);
    pid.erase(pid.find_last_not_of(" \n") + 1);
    throw_error("run folder ", dir.string(), " is in use by another moelab train (pid ", pid.empty() ? "unknown" : pid,
                "); wait for it to end, or choose another train.out_dir");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw_error("cannot write ", path.string(), ": ", why);
  }
  return fd;
}

void clear_folder(const fs::path& dir) {
  for (const std::string& name : entries(dir)) {
    std::error_code ec;
    fs::remove_all(dir / name, ec);
    if (ec) throw_error("--overwrite: cannot remove ", (dir / name).string(), ": ", ec.message());
  }
}

}  // namespace

RunFolder::RunFolder(std::string dir, const RunFolderStart& start) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_))
    throw_error("train.out_dir = \"", dir_, "\": cannot create the run folder (",
                ec ? ec.message() : "a file of that name is in the way", ")");
  lock_fd_ = lock_folder(dir_);
  try {
    resumed_step_ = start.resumed_step;
    const std::vector<std::string> present = entries(dir_);
    const bool resumes_here =
        !start.resumed_checkpoint.empty() && same_folder(run_folder_of(start.resumed_checkpoint), dir_);
    if (resumes_here) {
      if (start.overwrite)
        throw_error("--overwrite would delete ", dir_, ", which holds the checkpoint being resumed (",
                    start.resumed_checkpoint, ")");
      return;
    }
    if (present.empty()) return;
    if (start.overwrite) {
      std::fprintf(stderr, "--overwrite: clearing %s (%s)\n", dir_.c_str(), listed(present).c_str());
      clear_folder(dir_);
      return;
    }
    const std::string resume_hint =
        start.resumed_checkpoint.empty() ? "continue that run with --resume " + dir_ + ", " : "";
    throw_error("train.out_dir = \"", dir_, "\" already holds files of another run (", listed(present),
                "): ", resume_hint, "replace them with --overwrite, or choose another train.out_dir");
  } catch (...) {
    ::close(lock_fd_);
    throw;
  }
}

RunFolder::~RunFolder() { ::close(lock_fd_); }

std::string RunFolder::save_checkpoint(const Model& model, const OptimizerState& opt, const TrainState& state,
                                       int keep) {
  const std::string written = moelab::save_checkpoint(dir_, model, opt, state);
  written_.push_back(state.step);
  std::vector<int64_t> own;  // this run's history, newest first
  for (const int64_t step : checkpoint_steps(dir_))
    if (step <= resumed_step_ || std::find(written_.begin(), written_.end(), step) != written_.end())
      own.push_back(step);
  std::sort(own.rbegin(), own.rend());
  for (size_t i = static_cast<size_t>(keep); i < own.size(); ++i) {
    std::error_code ec;
    fs::remove_all(checkpoint_folder(dir_, own[i]), ec);
  }
  return written;
}

}  // namespace moelab
