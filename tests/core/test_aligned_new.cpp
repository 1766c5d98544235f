// The executables replace the global operator new so that large blocks start on a 64-byte boundary
// (src/core/aligned_new.cpp): what the GEMM kernels need to store whole cache lines.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace moelab {
namespace {

bool aligned_64(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

TEST(AlignedNew, LargeVectorsStartOnACacheLine) {
  for (size_t n : {1024, 1025, 4099, 100000, 5000000}) {  // below and above malloc's mmap threshold
    std::vector<float> small_neighbour(3, 1.0f);          // shifts the heap between the large blocks
    std::vector<float> v(n, 2.0f);
    EXPECT_TRUE(aligned_64(v.data())) << n << " floats";
    EXPECT_EQ(v[n - 1], 2.0f);
  }
  auto array = std::make_unique<double[]>(3000);
  EXPECT_TRUE(aligned_64(array.get()));
  std::unique_ptr<char[]> nothrow(new (std::nothrow) char[8192]);
  ASSERT_NE(nothrow, nullptr);
  EXPECT_TRUE(aligned_64(nothrow.get()));
}

TEST(AlignedNew, SmallAndEmptyBlocksStillWork) {
  std::vector<std::vector<int>> many;
  for (int i = 0; i < 1000; ++i) many.emplace_back(i % 7, i);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(many[i].size(), static_cast<size_t>(i % 7));
  void* empty = ::operator new(0);
  EXPECT_NE(empty, nullptr);
  ::operator delete(empty);
}

}  // namespace
}  // namespace moelab
