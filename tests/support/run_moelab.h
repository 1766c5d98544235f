// Runs the moelab binary built with the tests (MOELAB_BINARY) the way a user would, capturing what it prints.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace moelab::testing {

struct CommandResult {
  int status;          // exit status; -1 when the process did not exit normally (a crash)
  std::string output;  // stdout and stderr together
};

// Runs a shell command line (the caller adds any redirection), capturing its stdout.
inline CommandResult run_command(const std::string& cmd) {
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int raw = pclose(pipe);
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, out};
}

inline CommandResult run_moelab(const std::string& args) {
  return run_command(std::string(MOELAB_BINARY) + " " + args + " 2>&1");
}

}  // namespace moelab::testing
