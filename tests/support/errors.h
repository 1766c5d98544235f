// Checking moelab::Error messages: the message is the product when input is bad, so tests read it.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"

namespace moelab::testing {

// The message of the moelab::Error that f throws, or "<no error>".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace moelab::testing

#define EXPECT_CONTAINS(text, piece) EXPECT_NE(std::string(text).find(piece), std::string::npos) << (text)
