// grow_to: a scratch buffer reaches the size asked for, keeps what it holds, and never shrinks (a smaller call
// after a larger one must not make the next larger one fill again).
#include <gtest/gtest.h>

#include <vector>

#include "core/grow.h"

namespace moelab {
namespace {

TEST(GrowTo, GrowsKeepsAndNeverShrinks) {
  std::vector<float> v;
  grow_to(v, 4);
  ASSERT_EQ(v.size(), 4u);
  v = {1, 2, 3, 4};
  grow_to(v, 2);  // a smaller call: the size and the values stay
  EXPECT_EQ(v, (std::vector<float>{1, 2, 3, 4}));
  grow_to(v, 6);  // a larger one: the old values stay, the new ones are zero
  EXPECT_EQ(v, (std::vector<float>{1, 2, 3, 4, 0, 0}));
  grow_to(v, 0);
  EXPECT_EQ(v.size(), 6u);
}

}  // namespace
}  // namespace moelab
