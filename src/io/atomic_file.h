// Atomic file replacement: a file is written to `path + ".tmp"`, flushed to disk (fsync), renamed over `path`, and
// the directory is fsynced so the rename itself survives a crash. A reader therefore sees either the old file or
// the complete new one, never a half-written one; a writer that fails midway leaves the old file untouched.
// Checkpoints, configs and metrics summaries go through here. Errors throw moelab::Error naming the path and the
// system error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moelab {

// Writes the whole of `bytes` to `path` atomically.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Streaming form for large files (a checkpoint's tensors are written straight from their buffers, no second copy
// in memory). Nothing is visible at `path` until commit(); destroying the writer without commit() (an exception
// while writing) removes the temporary file and leaves any old file at `path` as it was.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);  // creates (truncates) path + ".tmp"
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t n);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // fsync the file, rename it over the target, fsync the directory. The writer takes no more writes afterwards.
  void commit();

  const std::string& path() const { return path_; }
  uint64_t bytes_written() const { return written_; }

 private:
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

}  // namespace moelab
