#include "data/onig_regex.h"

#include <oniguruma.h>

#include <mutex>

#include "core/error.h"
#include "data/utf8.h"

namespace moelab::data {

namespace {

void initialise_oniguruma() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}

}  // namespace

struct OnigRegex::Compiled {
  regex_t* regex = nullptr;
  ~Compiled() {
    if (regex) onig_free(regex);
  }
};

namespace {

// A match's registers, on the stack of each search so that searches may run on several threads at once.
struct Region {
  OnigRegion r;
  Region() { onig_region_init(&r); }
  ~Region() { onig_region_free(&r, 0); }
};

}  // namespace

OnigRegex::OnigRegex(const std::string& pattern, const std::string& where)
    : where_(where + ": the regular expression " + pattern), compiled_(std::make_unique<Compiled>()) {
  initialise_oniguruma();
  OnigErrorInfo info;
  const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
  const int rc = onig_new(&compiled_->regex, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                          OnigDefaultSyntax, &info);
  if (rc != ONIG_NORMAL) {
    OnigUChar message[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(message, rc, &info);
    throw_error(where, ": the regular expression ", pattern, " does not compile (",
                reinterpret_cast<const char*>(message), ")");
  }
}

OnigRegex::OnigRegex(OnigRegex&&) noexcept = default;
OnigRegex::~OnigRegex() = default;

bool OnigRegex::find(std::string_view text, size_t start, size_t& begin, size_t& end) const {
  const auto* s = reinterpret_cast<const OnigUChar*>(text.data());
  const OnigUChar* stop = s + text.size();
  Region region;
  while (start <= text.size()) {
    const int at = onig_search(compiled_->regex, s, stop, s + start, stop, &region.r, ONIG_OPTION_NONE);
    if (at == ONIG_MISMATCH) return false;
    if (at < 0) {  // e.g. the match retry limit, for a pattern that backtracks without end on this text
      OnigUChar message[ONIG_MAX_ERROR_MESSAGE_LEN];
      onig_error_code_to_str(message, at);
      throw_error(where_, " cannot be matched on this text (", reinterpret_cast<const char*>(message), ")");
    }
    begin = static_cast<size_t>(region.r.beg[0]), end = static_cast<size_t>(region.r.end[0]);
    if (end > begin) return true;
    if (begin >= text.size()) return false;
    start = begin + utf8_length(static_cast<unsigned char>(text[begin]));  // an empty match: look past it
  }
  return false;
}

}  // namespace moelab::data
