// Every shipped preset loads and validates, and says what it claims to configure.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "model/config.h"

namespace moelab {
namespace {

const std::string kConfigs = std::string(MOELAB_TEST_DIR) + "/../configs";

TEST(Presets, EveryPresetLoadsAndValidates) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kConfigs)) {
    if (entry.path().extension() != ".toml") continue;
    const Config cfg = load_config(entry.path().string());
    EXPECT_NO_THROW(validate(cfg)) << entry.path();
    // Each run writes to its own folder, named after the preset, in the repository's runs/ and reads the
    // repository's data/brown, wherever the command runs from.
    const std::filesystem::path repo = std::filesystem::path(kConfigs).parent_path().lexically_normal();
    EXPECT_EQ(cfg.train.out_dir, (repo / "runs" / entry.path().stem()).string()) << entry.path();
    EXPECT_EQ(cfg.data.dir, (repo / "data/brown").string()) << entry.path();
    ++n;
  }
  EXPECT_EQ(n, 15);  // brown-tiny, 2 dense baselines, 3 of paper 2, 9 of paper 1
}

TEST(Presets, PaperTwoAndPaperOneSettings) {
  const Config topp = load_config(kConfigs + "/paper2-topp.toml");
  EXPECT_EQ(topp.routing.rule, SelectionRule::TopP);
  EXPECT_EQ(topp.routing.top_p, 0.4);
  EXPECT_EQ(topp.routing.dynamic_loss_coef, 1e-4);
  EXPECT_EQ(topp.routing.load_balance_coef, 1e-2);
  EXPECT_EQ(load_config(kConfigs + "/paper2-top1.toml").routing.top_k, 1);
  EXPECT_EQ(load_config(kConfigs + "/paper2-top2.toml").routing.top_k, 2);
  for (const char* gran : {"token", "sequence", "prefix"})
    for (const char* kind : {"learned", "frozen", "resampled"}) {
      const Config c = load_config(kConfigs + "/paper1-" + gran + "-" + kind + ".toml");
      EXPECT_EQ(name_of(c.routing.granularity), gran);
      EXPECT_EQ(name_of(c.routing.router), kind);
    }
}

}  // namespace
}  // namespace moelab
