// The .npy writer: byte-exact headers for small arrays, and round trips checked by NumPy itself (Debian's
// python3-numpy, which the test command installs: without it the round-trip tests fail, they are not skipped).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "io/npy.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

using testing::read_all;
using testing::TempDir;

// Runs a Python script with Debian's python3 (where python3-numpy lives) and returns its stdout; fails the test
// on a non-zero exit.
std::string run_python(const TempDir& dir, const std::string& script) {
  const std::string path = dir.file("check.py");
  testing::write_all(path, script);
  const std::string cmd = "/usr/bin/python3 " + path + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr) << cmd;
  if (pipe == nullptr) return "";
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  EXPECT_EQ(::pclose(pipe), 0) << "python3 failed (is python3-numpy installed?):\n" << out;
  return out;
}

TEST(Npy, HeaderOfATinyFileByteForByte) {
  TempDir dir;
  const std::vector<float> x = {0, 1, 2, 3, 4, 5};  // [2,3]
  const std::vector<int64_t> shape = {2, 3};
  write_npy<float>(dir.file("a.npy"), shape, x.data());
  const std::string bytes = read_all(dir.file("a.npy"));
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  // 10 bytes of preamble + the 60-byte dict + '\n' pass 64, so the header fills two 64-byte blocks.
  ASSERT_EQ(bytes.size(), 128u + 6 * 4);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(static_cast<uint8_t>(bytes[8]) + 256 * static_cast<uint8_t>(bytes[9]), 118);  // 128 - 10
  EXPECT_EQ(bytes.substr(10, dict.size()), dict);
  EXPECT_EQ(bytes.substr(10 + dict.size(), 118 - dict.size() - 1), std::string(118 - dict.size() - 1, ' '));
  EXPECT_EQ(bytes[127], '\n');
  float third;
  std::memcpy(&third, bytes.data() + 128 + 2 * 4, 4);
  EXPECT_EQ(third, 2.0f);
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.npy.tmp")));
}

TEST(Npy, ShapeTuplesAndAlignment) {
  const std::vector<std::pair<std::vector<int64_t>, std::string>> cases = {
      {{}, "()"}, {{5}, "(5,)"}, {{0, 4}, "(0, 4)"}, {{7, 1, 300000000000}, "(7, 1, 300000000000)"}};
  for (const auto& [shape, tuple] : cases) {
    const std::string h = npy_header(DType::I16, shape);
    EXPECT_EQ(h.size() % 64, 0u) << tuple;
    EXPECT_EQ(h.back(), '\n') << tuple;
    EXPECT_EQ(static_cast<size_t>(static_cast<uint8_t>(h[8]) + 256 * static_cast<uint8_t>(h[9])), h.size() - 10);
    EXPECT_CONTAINS(h, "'descr': '<i2'");
    EXPECT_CONTAINS(h, "'shape': " + tuple + ", }");
  }
  EXPECT_EQ(npy_descr(DType::U8), "|u1");
  EXPECT_EQ(npy_descr(DType::I32), "<i4");
  EXPECT_EQ(npy_descr(DType::I64), "<i8");
  EXPECT_EQ(npy_descr(DType::F64), "<f8");
}

TEST(Npy, NumpyReadsEveryDtypeBack) {
  TempDir dir;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> f4 = {1.5f, -2.25f, 0.0f, 1024.0f, nan, 0.125f};  // [2,3]
  const std::vector<double> f8 = {0.1, -1e300};                              // [2]
  const std::vector<int32_t> i4 = {-2147483647 - 1, 7, 2147483647};          // [3,1]
  const std::vector<int16_t> i2 = {-1, 3, -32768, 32767};                    // [2,2]
  const std::vector<uint8_t> u1 = {0, 255, 17};                              // [3]
  const std::vector<int64_t> i8 = {-5, 9007199254740993LL};                  // [1,2]
  const std::vector<int64_t> s23 = {2, 3}, s2 = {2}, s31 = {3, 1}, s22 = {2, 2}, s3 = {3}, s12 = {1, 2};
  write_npy<float>(dir.file("f4.npy"), s23, f4.data());
  write_npy<double>(dir.file("f8.npy"), s2, f8.data());
  write_npy<int32_t>(dir.file("i4.npy"), s31, i4.data());
  write_npy<int16_t>(dir.file("i2.npy"), s22, i2.data());
  write_npy<uint8_t>(dir.file("u1.npy"), s3, u1.data());
  write_npy<int64_t>(dir.file("i8.npy"), s12, i8.data());
  const std::vector<int64_t> empty_shape = {0, 3};
  write_npy<float>(dir.file("empty.npy"), empty_shape, nullptr);
  const std::string out = run_python(dir, R"(import numpy as np, os
d = os.path.dirname(os.path.abspath(__file__))
for name in ['f4', 'f8', 'i4', 'i2', 'u1', 'i8', 'empty']:
    path = os.path.join(d, name + '.npy')
    with open(path, 'rb') as f:
        version = np.lib.format.read_magic(f)
    a = np.load(path)
    print(name, version, a.dtype.str, a.shape, a.flags['C_CONTIGUOUS'], repr(a.ravel().tolist()))
)");
  EXPECT_EQ(out,
            "f4 (1, 0) <f4 (2, 3) True [1.5, -2.25, 0.0, 1024.0, nan, 0.125]\n"
            "f8 (1, 0) <f8 (2,) True [0.1, -1e+300]\n"
            "i4 (1, 0) <i4 (3, 1) True [-2147483648, 7, 2147483647]\n"
            "i2 (1, 0) <i2 (2, 2) True [-1, 3, -32768, 32767]\n"
            "u1 (1, 0) |u1 (3,) True [0, 255, 17]\n"
            "i8 (1, 0) <i8 (1, 2) True [-5, 9007199254740993]\n"
            "empty (1, 0) <f4 (0, 3) True []\n");
}

TEST(Npy, NumpyReadsAHeaderLongerThanOneBlock) {
  TempDir dir;
  const std::vector<int64_t> shape(30, 1);  // 30 dimensions (NumPy allows 32): the header needs three 64-byte blocks
  const int32_t x = 42;
  write_npy<int32_t>(dir.file("deep.npy"), shape, &x);
  EXPECT_EQ(read_all(dir.file("deep.npy")).size(), 192u + 4);
  const std::string out = run_python(dir, R"(import numpy as np, os
a = np.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'deep.npy'))
print(a.ndim, a.ravel().tolist())
)");
  EXPECT_EQ(out, "30 [42]\n");
}

TEST(Npy, ErrorsNameTheFileAndLeaveNothing) {
  TempDir dir;
  const std::vector<int64_t> bad = {2, -1};
  const float x[2] = {1, 2};
  const std::string msg = testing::error_of([&] { write_npy(dir.file("neg.npy"), DType::F32, bad, x); });
  EXPECT_CONTAINS(msg, "neg.npy");
  EXPECT_CONTAINS(msg, "negative dimension");
  const std::vector<int64_t> two = {2};
  EXPECT_CONTAINS(testing::error_of([&] { write_npy(dir.file("bf.npy"), DType::BF16, two, x); }), "BF16");
  EXPECT_FALSE(std::filesystem::exists(dir.file("neg.npy")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("bf.npy")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("bf.npy.tmp")));
}

}  // namespace
}  // namespace moelab
