#include "cli/option_checks.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace moelab::cli {

namespace {

std::string format_number(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

}  // namespace

CLI::Validator whole_number(int64_t min, int64_t max, const std::string& note) {
  std::string expected = "a whole number ";
  if (max == INT64_MAX)
    expected += min == 1 ? "> 0" : ">= " + std::to_string(min);
  else
    expected += "from " + std::to_string(min) + " to " + std::to_string(max);
  if (!note.empty()) expected += " (" + note + ")";
  const std::string description = max == INT64_MAX
                                      ? "INT >= " + std::to_string(min)
                                      : "INT in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  return CLI::Validator(
      [=](const std::string& text) -> std::string {
        int64_t v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max)
          return "expected " + expected + ", got " + text;
        return "";
      },
      description);
}

CLI::Validator finite_number(double min, double max) {
  const std::string range = format_number(min) + " to " + format_number(max);
  return CLI::Validator(
      [=](const std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < min || v > max)
          return "expected a number from " + range + ", got " + text;
        return "";
      },
      "NUMBER in [" + format_number(min) + ", " + format_number(max) + "]");
}

}  // namespace moelab::cli
