// What the fuzz targets share: the readers under test take paths, so each input is written to a file of a folder
// private to the process first; and the seed inputs a target writes when MOELAB_FUZZ_SEEDS names a folder.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace moelab::fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("moelab-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, const void* data, size_t size) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(static_cast<const char*>(data), size);
}

// Writes the input to scratch_dir()/name and returns the path.
inline std::string input_file(const char* name, const uint8_t* data, size_t size) {
  const auto path = scratch_dir() / name;
  write_bytes(path, data, size);
  return path.string();
}

// Where a target writes its seed inputs, or empty.
inline std::string seeds_dir() {
  const char* dir = std::getenv("MOELAB_FUZZ_SEEDS");
  return dir ? dir : "";
}

}  // namespace moelab::fuzz
