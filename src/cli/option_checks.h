// Checks of numeric command-line options whose messages say what is expected and what was given
// ("--max-tokens: expected a whole number >= 0 (0: all), got -1"), where CLI11's own checks say "Value -1 not in
// range 0 to 1.8e308" and let NaN through every range.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace moelab::cli {

// A whole number in [min, max]; `note` (e.g. "0: all") is added to the message.
CLI::Validator whole_number(int64_t min, int64_t max = INT64_MAX, const std::string& note = "");
// A finite number in [min, max].
CLI::Validator finite_number(double min, double max);

}  // namespace moelab::cli
