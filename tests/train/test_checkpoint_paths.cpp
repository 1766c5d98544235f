// Where a checkpoint's run folder is: what the metrics log and the analyses' default output folders hang off.
#include <gtest/gtest.h>

#include "train/checkpoint.h"

namespace moelab {
namespace {

TEST(CheckpointPaths, RunFolderIsTheParentOfCheckpoints) {
  EXPECT_EQ(run_folder_of("runs/brown-tiny/checkpoints/step-00000600"), "runs/brown-tiny");
  EXPECT_EQ(run_folder_of("runs/brown-tiny/checkpoints/step-00000600/"), "runs/brown-tiny");
  EXPECT_EQ(run_folder_of("/abs/run/./checkpoints/step-00000001"), "/abs/run");
  EXPECT_EQ(run_folder_of("checkpoints/step-00000001"), ".");
}

TEST(CheckpointPaths, ACheckpointOutsideARunUsesItsParentFolder) {
  EXPECT_EQ(run_folder_of("exports/model-a"), "exports");
  EXPECT_EQ(run_folder_of("model-a"), ".");
}

}  // namespace
}  // namespace moelab
