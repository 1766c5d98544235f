// Whole-file reading for the data pipeline (corpus files, token files, meta.json), with errors naming the file.
#pragma once

#include <string>

namespace moelab::data {

// The file's bytes; throws moelab::Error naming the path and the system error when it cannot be read.
std::string read_file_bytes(const std::string& path);

}  // namespace moelab::data
