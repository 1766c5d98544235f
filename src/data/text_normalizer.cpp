#include "data/text_normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

#include "core/error.h"
#include "data/json_steps.h"
#include "data/utf8.h"

namespace moelab::data {

namespace {

using json = nlohmann::json;

std::string string_field(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_string())
    throw_error(where, ": field '", key, "' of a ", j.value("type", std::string("?")), " step: expected a string");
  return j[key].get<std::string>();
}

// s in a Unicode normal form (utf8proc options).
std::string normal_form(std::string_view s, int options) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()), &out,
                   static_cast<utf8proc_option_t>(options | UTF8PROC_STABLE));
  if (n < 0) throw_error("text to tokenize: ", utf8proc_errmsg(n));
  std::string r(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return r;
}

// A normal form, kept aligned: no composition, decomposition or reordering reaches across an ASCII character (none
// is a combining mark or the second half of a composition), so the text is normalised in runs that each start at
// one, and a run that normalisation leaves unchanged keeps its bytes' origins; a changed run's bytes all come from
// the whole run.
AlignedText normalise(const AlignedText& in, int options) {
  AlignedText out;
  for (size_t begin = 0; begin < in.text.size();) {
    size_t end = begin + 1;
    while (end < in.text.size() && static_cast<unsigned char>(in.text[end]) >= 0x80) ++end;
    const std::string_view run(in.text.data() + begin, end - begin);
    const std::string normal = normal_form(run, options);
    if (normal == run)
      out.append(in, begin, end);
    else
      out.append_from(normal, in.from[begin], in.to[end - 1]);
    begin = end;
  }
  return out;
}

AlignedText lowercase(const AlignedText& in) {
  AlignedText out;
  for (size_t at = 0; at < in.text.size();) {
    char32_t c = 0;
    const size_t n = std::max<size_t>(1, decode_utf8(in.text, at, c));
    std::string lower;
    append_utf8(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))), lower);
    out.append_from(lower, in.from[at], in.to[at + n - 1]);
    at += n;
  }
  return out;
}

AlignedText replace(const AlignedText& in, const std::string& literal, const OnigRegex* regex,
                    const std::string& content) {
  AlignedText out;
  size_t at = 0, begin = 0, end = 0;
  while (at < in.text.size()) {
    if (regex) {
      if (!regex->find(in.text, at, begin, end)) break;
    } else {
      begin = literal.empty() ? std::string::npos : in.text.find(literal, at);
      if (begin == std::string::npos) break;
      end = begin + literal.size();
    }
    out.append(in, at, begin);
    out.append_from(content, in.from[begin], in.to[end - 1]);
    at = end;
  }
  out.append(in, at, in.text.size());
  return out;
}

}  // namespace

void TextNormalizer::add_steps(const json& j, const std::string& where, std::vector<Step>& steps) {
  if (j.is_null()) return;
  const std::string type = json_step_type(j, where, "normalizer");
  Step s{};
  if (type == "Sequence") {
    for (const json& step : json_sequence(j, "normalizers", where, "normalizer")) add_steps(step, where, steps);
    return;
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    s.kind = Step::Kind::Unicode;
    s.unicode_options =
        (type[2] == 'K' ? UTF8PROC_COMPAT : 0) | (type.back() == 'C' ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE);
  } else if (type == "Lowercase") {
    s.kind = Step::Kind::Lowercase;
  } else if (type == "Prepend") {
    s.kind = Step::Kind::Prepend, s.text = string_field(j, "prepend", where);
  } else if (type == "Replace") {
    s.kind = Step::Kind::Replace, s.content = string_field(j, "content", where);
    const json& p = j.value("pattern", json());
    if (p.contains("String") && p["String"].is_string())
      s.text = p["String"].get<std::string>();
    else if (p.contains("Regex") && p["Regex"].is_string())
      s.regex = std::make_shared<OnigRegex>(p["Regex"].get<std::string>(), where + ": normalizer Replace");
    else
      throw_error(where, ": normalizer Replace: expected a pattern {\"String\": ...} or {\"Regex\": ...}");
  } else if (type == "Strip") {
    s.kind = Step::Kind::Strip;
    s.left = json_flag(j, "strip_left", true, where), s.right = json_flag(j, "strip_right", true, where);
  } else {
    throw_error(where, ": normalizer '", type,
                "' is not supported (supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip)");
  }
  steps.push_back(std::move(s));
}

TextNormalizer TextNormalizer::from_json(const json& j, const std::string& where) {
  TextNormalizer n;
  add_steps(j, where, n.steps_);
  return n;
}

AlignedText TextNormalizer::apply(AlignedText text) const {
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Step::Kind::Unicode:
        text = normalise(text, s.unicode_options);
        break;
      case Step::Kind::Lowercase:
        text = lowercase(text);
        break;
      case Step::Kind::Prepend:
        if (!text.empty()) text.prepend_from(s.text, text.from[0], text.to[0]);  // from the first character
        break;
      case Step::Kind::Replace:
        text = replace(text, s.text, s.regex.get(), s.content);
        break;
      case Step::Kind::Strip: {
        size_t begin = 0, end = text.text.size(), n = 0;
        char32_t c = 0;
        while (s.left && begin < end && (n = decode_utf8(text.text, begin, c)) > 0 && is_unicode_whitespace(c))
          begin += n;
        while (s.right && end > begin && (n = decode_utf8_before(text.text, end, c), is_unicode_whitespace(c)))
          end -= n;
        text = text.slice(begin, end);
        break;
      }
    }
  }
  return text;
}

}  // namespace moelab::data
