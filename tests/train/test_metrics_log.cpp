// The metrics log: records survive a resume up to its step, and a write that fails stops the run with a clear
// error instead of leaving a log that silently ends.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "support/errors.h"
#include "support/temp_dir.h"
#include "train/metrics_log.h"

namespace moelab {
namespace {

TEST(MetricsLog, AResumeDropsTheRecordsPastItsStepAndACutLine) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  {
    MetricsLog log(path, 0);
    for (int64_t step = 1; step <= 5; ++step) log.write({{"type", "train"}, {"step", step}});
  }
  {
    std::ofstream(path, std::ios::app) << "{\"type\": \"tra";  // cut short by a kill
  }
  MetricsLog resumed(path, 3);
  resumed.write({{"type", "train"}, {"step", 4}});
  EXPECT_EQ(testing::read_all(path),
            "{\"step\":1,\"type\":\"train\"}\n{\"step\":2,\"type\":\"train\"}\n{\"step\":3,\"type\":\"train\"}\n"
            "{\"step\":4,\"type\":\"train\"}\n");
}

// A line whose step cannot be read cannot be kept or dropped by it: an error naming the file and the line, which
// leaves the log as it was.
TEST(MetricsLog, AResumeRefusesALineWithoutAnIntegerStepNamingTheLine) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  for (const std::string bad :
       {"{\"type\": \"train\", \"step\": \"x\"}", "{\"type\": \"train\"}", "[1, 2]", "{\"step\": 2.5}"}) {
    const std::string log = "{\"type\": \"train\", \"step\": 1}\n" + bad + "\n";
    testing::write_all(path, log);
    const std::string message = testing::error_of([&] { MetricsLog resumed(path, 1); });
    EXPECT_CONTAINS(message, path + ", line 2");
    EXPECT_CONTAINS(message, "integer \"step\"");
    EXPECT_EQ(testing::read_all(path), log);
  }
}

// A full disk, made by a file-size limit in a child process: the write that fails throws, naming the file.
TEST(MetricsLog, AWriteThatFailsIsAnErrorNamingTheFile) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);  // a write past the limit then fails with EFBIG instead of killing the process
    const rlimit limit{2048, 2048};
    setrlimit(RLIMIT_FSIZE, &limit);
    MetricsLog log(path, 0);
    const std::string message = testing::error_of([&] {
      for (int64_t step = 1; step <= 1000; ++step) log.write({{"type", "train"}, {"step", step}, {"loss", 1.5}});
    });
    const bool clear = message.find(path) != std::string::npos && message.find("File too large") != std::string::npos &&
                       message.find("training stopped") != std::string::npos;
    _exit(clear ? 0 : 3);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the failed write was not reported as an error naming the file and the reason";
}

}  // namespace
}  // namespace moelab
