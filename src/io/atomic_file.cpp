#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace moelab {
namespace {

std::string errno_text() { return std::strerror(errno); }

// The directory holding `path` ("." for a bare file name), whose entry the rename changes.
std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void fsync_dir(const std::string& path) {
  const std::string dir = parent_dir(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_error("file ", path, ": cannot open directory ", dir, " to sync it (", errno_text(), ")");
  const int rc = ::fsync(fd);
  const std::string why = rc != 0 ? errno_text() : "";
  ::close(fd);
  if (rc != 0) throw_error("file ", path, ": cannot sync directory ", dir, " (", why, ")");
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)), tmp_path_(path_ + ".tmp") {
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_error("file ", path_, ": cannot create ", tmp_path_, " (", errno_text(), ")");
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ < 0) return;  // committed, or never opened
  ::close(fd_);
  ::unlink(tmp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t n) {
  MOELAB_ASSERT(fd_ >= 0, "AtomicFileWriter::write after commit");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    // One write() moves at most ~2 GiB on Linux, and may move less than asked: loop until done.
    const size_t chunk = std::min<size_t>(n, size_t{1} << 30);
    const ssize_t k = ::write(fd_, p, chunk);
    if (k < 0) {
      if (errno == EINTR) continue;
      throw_error("file ", path_, ": write to ", tmp_path_, " failed after ", written_, " bytes (", errno_text(), ")");
    }
    p += k;
    n -= static_cast<size_t>(k);
    written_ += static_cast<uint64_t>(k);
  }
}

void AtomicFileWriter::commit() {
  MOELAB_ASSERT(fd_ >= 0, "AtomicFileWriter::commit called twice");
  if (::fsync(fd_) != 0) throw_error("file ", path_, ": cannot sync ", tmp_path_, " (", errno_text(), ")");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp_path_.c_str());
    throw_error("file ", path_, ": closing ", tmp_path_, " failed (", why, ")");
  }
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp_path_.c_str());
    throw_error("file ", path_, ": cannot rename ", tmp_path_, " over it (", why, ")");
  }
  fsync_dir(path_);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFileWriter writer(path);
  writer.write(bytes);
  writer.commit();
}

}  // namespace moelab
