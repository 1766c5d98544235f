// Errors. Two kinds, kept apart on purpose:
//  - moelab::Error: something in the environment is wrong (a file, a config field, a checkpoint, the data).
//    Thrown with a message that names the file/field/step and what was expected; caught by the CLI, which prints
//    it and exits non-zero. Callers catch it only to clean up or add context, then rethrow. The trainer does not
//    catch it: it writes checkpoints atomically at step boundaries, so an error mid-run leaves the last complete
//    checkpoint intact.
//  - MOELAB_ASSERT: an internal invariant (a shape mismatch between two of our own buffers). A bug: abort with
//    file:line, never caught.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

namespace moelab {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A message with its control characters but newline and tab written as \xNN: a piece read from a damaged file may
// hold a NUL, where what() would end the message, or terminal escape sequences.
inline std::string escape_control_chars(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
      out += hex;
    } else {
      out += c;
    }
  }
  return out;
}

// Builds a message from any streamable pieces: throw_error("file ", path, ": expected ", n, " bytes").
template <typename... Parts>
[[noreturn]] void throw_error(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(escape_control_chars(os.str()));
}

}  // namespace moelab

#define MOELAB_ASSERT(cond, msg)                                                                          \
  do {                                                                                                    \
    if (!(cond)) {                                                                                        \
      std::fprintf(stderr, "moelab: internal error at %s:%d: %s (%s)\n", __FILE__, __LINE__, msg, #cond); \
      std::abort();                                                                                       \
    }                                                                                                     \
  } while (0)
