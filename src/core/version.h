// moelab's version (CMake's project version), as `moelab --version` prints it and runs and reports record it.
#pragma once

namespace moelab {

inline constexpr const char* kVersion = MOELAB_VERSION;

}  // namespace moelab
