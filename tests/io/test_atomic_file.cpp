#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/error.h"
#include "io/atomic_file.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

using testing::read_all;
using testing::TempDir;

// Makes write() fail with EFBIG once a file would grow past `bytes` (a disk filling up midway, without a disk),
// and restores the limit when it goes out of scope.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);  // else the kernel kills the process instead of failing write()
    rlimit lim = saved_;
    lim.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit saved_{};
  void (*old_handler_)(int) = nullptr;
};

TEST(AtomicFile, WritesThenReplacesAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir.file("a.txt");
  write_file_atomic(path, "first version");
  EXPECT_EQ(read_all(path), "first version");
  write_file_atomic(path, std::string("x\0y", 3));
  EXPECT_EQ(read_all(path), std::string("x\0y", 3));
  write_file_atomic(path, "");
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(read_all(path), "");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(AtomicFile, StreamingWriterCommitsAllPieces) {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  AtomicFileWriter w(path);
  w.write("abc");
  const double x = 1.25;
  w.write(&x, sizeof x);
  EXPECT_EQ(w.bytes_written(), 3 + sizeof x);
  EXPECT_FALSE(std::filesystem::exists(path)) << "visible before commit";
  w.commit();
  const std::string got = read_all(path);
  ASSERT_EQ(got.size(), 3 + sizeof x);
  EXPECT_EQ(got.substr(0, 3), "abc");
  double y = 0;
  std::memcpy(&y, got.data() + 3, sizeof y);
  EXPECT_EQ(y, 1.25);
}

TEST(AtomicFile, WriterDestroyedWithoutCommitKeepsOldFile) {
  TempDir dir;
  const std::string path = dir.file("keep.txt");
  write_file_atomic(path, "old");
  try {
    AtomicFileWriter w(path);
    w.write("new content that must never appear");
    throw std::runtime_error("writer fails midway");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(read_all(path), "old");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(AtomicFile, FailedWriteMidwayKeepsOldFileAndNamesPath) {
  TempDir dir;
  const std::string path = dir.file("big.bin");
  write_file_atomic(path, "old");
  const std::string big(1 << 16, 'z');
  try {
    FileSizeLimit limit(4096);
    write_file_atomic(path, big);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("write"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("File too large"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_all(path), "old");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(AtomicFile, MissingDirectoryIsAnErrorNamingPathAndCause) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/f.txt");
  try {
    write_file_atomic(path, "x");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos) << e.what();
  }
}

TEST(AtomicFile, BareFileNameSyncsCurrentDirectory) {
  TempDir dir;
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  write_file_atomic("bare.txt", "in cwd");
  std::filesystem::current_path(cwd);
  EXPECT_EQ(read_all(dir.file("bare.txt")), "in cwd");
}

}  // namespace
}  // namespace moelab
