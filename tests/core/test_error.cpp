// Error messages carry what a damaged file held, control characters included: written escaped, so that a NUL does
// not end the message early and an escape sequence does not reach the terminal.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "support/errors.h"

namespace moelab {
namespace {

TEST(Error, ControlCharactersButNewlineAndTabAreEscaped) {
  const std::string name("step-1\0evil\x1b[2J", 15);
  const std::string message = testing::error_of([&] { throw_error("latest names '", name, "'\n\tsee above"); });
  EXPECT_EQ(message, "latest names 'step-1\\x00evil\\x1b[2J'\n\tsee above");
}

}  // namespace
}  // namespace moelab
