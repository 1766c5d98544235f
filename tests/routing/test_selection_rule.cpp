// The registry of selection rules: a row for every rule the config can name, and rows the config's validation
// can read.
#include <gtest/gtest.h>

#include "routing/selection_rule.h"

namespace moelab {
namespace {

TEST(SelectionRuleRegistry, EveryRuleHasItsRowWithBothPrecisions) {
  for (size_t i = 0; i < DesignNames<SelectionRule>::names.size(); ++i) {
    const auto rule = static_cast<SelectionRule>(i);
    SCOPED_TRACE(std::string(name_of(rule)));
    const routing::SelectionRuleInfo& row = routing::selection_rule(rule);
    EXPECT_EQ(row.rule, rule);
    EXPECT_NE(row.ops<float>().forward, nullptr);
    EXPECT_NE(row.ops<float>().backward, nullptr);
    EXPECT_NE(row.ops<double>().forward, nullptr);
    EXPECT_NE(row.ops<double>().backward, nullptr);
    // Every rule works with token routing and with softmax scores.
    EXPECT_NE(std::find(row.gatings.begin(), row.gatings.end(), Gating::Softmax), row.gatings.end());
    EXPECT_NE(std::find(row.granularities.begin(), row.granularities.end(), Granularity::Token),
              row.granularities.end());
    // A restriction says why.
    EXPECT_EQ(row.gatings.size() < DesignNames<Gating>::names.size(), !row.gating_reason.empty());
    EXPECT_EQ(row.granularities.size() < DesignNames<Granularity>::names.size(), !row.granularity_reason.empty());
    EXPECT_EQ(row.load_balance_divisor(3), row.k_slots_per_token ? 3.0 : 1.0);
  }
}

}  // namespace
}  // namespace moelab
