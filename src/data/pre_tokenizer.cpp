#include "data/pre_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "data/byte_level.h"
#include "data/json_steps.h"
#include "data/utf8.h"

namespace moelab::data {

namespace {

using json = nlohmann::json;

// GPT-2's split, which ByteLevel applies when use_regex is set.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Part {
  size_t begin, end;
  bool is_match;
};

// The parts of text: the matches of `find` and what lies between them, in order, covering the text.
template <typename Find>
std::vector<Part> parts_of(const std::string& text, Find find) {
  std::vector<Part> parts;
  size_t at = 0, begin = 0, end = 0;
  while (at < text.size() && find(at, begin, end)) {
    if (begin > at) parts.push_back({at, begin, false});
    parts.push_back({begin, end, true});
    at = end;
  }
  if (at < text.size()) parts.push_back({at, text.size(), false});
  return parts;
}

bool is_numeric(char32_t c) {
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

}  // namespace

std::string metaspace_prepend_scheme(const json& step) {
  if (step.contains("prepend_scheme") && step["prepend_scheme"].is_string())
    return step["prepend_scheme"].get<std::string>();
  return json_flag(step, "add_prefix_space", true, "Metaspace") ? "always" : "never";
}

void PreTokenizer::split(const AlignedText& piece, const Step& s, std::vector<AlignedText>& out) {
  const std::string& text = piece.text;
  std::vector<Part> parts;
  if (s.kind == Step::Kind::Digits) {
    // Each character a part, a match when numeric.
    for (size_t at = 0; at < text.size();) {
      char32_t c = 0;
      const size_t n = std::max<size_t>(1, decode_utf8(text, at, c));
      parts.push_back({at, at + n, is_numeric(c)});
      at += n;
    }
  } else if (s.regex) {
    parts = parts_of(text, [&](size_t at, size_t& b, size_t& e) { return s.regex->find(text, at, b, e); });
  } else {
    parts = parts_of(text, [&](size_t at, size_t& b, size_t& e) {
      b = s.literal.empty() ? std::string::npos : text.find(s.literal, at);
      e = b + s.literal.size();
      return b != std::string::npos;
    });
  }
  if (s.invert)
    for (Part& p : parts) p.is_match = !p.is_match;

  // Merged into the pieces as Hugging Face's tokenizers merges them (SplitDelimiterBehavior).
  std::vector<std::pair<size_t, size_t>> ranges;
  bool previous_match = false;
  switch (s.behavior) {
    case Behavior::Removed:
      for (const Part& p : parts)
        if (!p.is_match) ranges.emplace_back(p.begin, p.end);
      break;
    case Behavior::Isolated:
      for (const Part& p : parts) ranges.emplace_back(p.begin, p.end);
      break;
    case Behavior::MergedWithPrevious:
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !ranges.empty())
          ranges.back().second = p.end;
        else
          ranges.emplace_back(p.begin, p.end);
        previous_match = p.is_match;
      }
      break;
    case Behavior::MergedWithNext:
      for (auto p = parts.rbegin(); p != parts.rend(); ++p) {
        if (p->is_match && !previous_match && !ranges.empty())
          ranges.back().first = p->begin;
        else
          ranges.emplace_back(p->begin, p->end);
        previous_match = p->is_match;
      }
      std::reverse(ranges.begin(), ranges.end());
      break;
    case Behavior::Contiguous:
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i > 0 && parts[i].is_match == previous_match)
          ranges.back().second = parts[i].end;
        else
          ranges.emplace_back(parts[i].begin, parts[i].end);
        previous_match = parts[i].is_match;
      }
      break;
  }
  for (const auto& [begin, end] : ranges)
    if (end > begin) out.push_back(piece.slice(begin, end));
}

void PreTokenizer::add_steps(const json& j, const std::string& where, std::vector<Step>& steps) {
  if (j.is_null()) return;
  const std::string type = json_step_type(j, where, "pre_tokenizer");
  const std::string at = where + ": pre_tokenizer " + type;
  Step s{};
  if (type == "Sequence") {
    for (const json& step : json_sequence(j, "pretokenizers", where, "pre_tokenizer")) add_steps(step, where, steps);
    return;
  } else if (type == "Split") {
    s.kind = Step::Kind::Split;
    const json& p = j.value("pattern", json());
    if (p.contains("String") && p["String"].is_string())
      s.literal = p["String"].get<std::string>();
    else if (p.contains("Regex") && p["Regex"].is_string())
      s.regex = std::make_shared<OnigRegex>(p["Regex"].get<std::string>(), at);
    else
      throw_error(at, ": expected a pattern {\"String\": ...} or {\"Regex\": ...}");
    static const std::vector<std::pair<std::string, Behavior>> behaviors = {
        {"Removed", Behavior::Removed},
        {"Isolated", Behavior::Isolated},
        {"MergedWithPrevious", Behavior::MergedWithPrevious},
        {"MergedWithNext", Behavior::MergedWithNext},
        {"Contiguous", Behavior::Contiguous}};
    const std::string behavior = json_text(j, "behavior", "", at);
    const auto it =
        std::find_if(behaviors.begin(), behaviors.end(), [&](const auto& b) { return b.first == behavior; });
    if (it == behaviors.end())
      throw_error(at, ": field 'behavior': expected Removed, Isolated, MergedWithPrevious, MergedWithNext or ",
                  "Contiguous, found '", behavior, "'");
    s.behavior = it->second;
    s.invert = json_flag(j, "invert", false, at);
  } else if (type == "ByteLevel") {
    s.kind = Step::Kind::ByteLevel;
    s.prefix_space = json_flag(j, "add_prefix_space", true, at);
    if (json_flag(j, "use_regex", true, at)) s.regex = std::make_shared<OnigRegex>(kGpt2Pattern, at);
  } else if (type == "Metaspace") {
    s.kind = Step::Kind::Metaspace;
    s.literal = json_text(j, "replacement", "\xe2\x96\x81", at);
    const std::string scheme = metaspace_prepend_scheme(j);
    if (scheme != "always" && scheme != "first" && scheme != "never")
      throw_error(at, ": field 'prepend_scheme': expected always, first or never, found '", scheme, "'");
    s.prefix_space = scheme != "never", s.first_only = scheme == "first";
    s.split = json_flag(j, "split", true, at);
  } else if (type == "Digits") {
    s.kind = Step::Kind::Digits;
    s.individual = json_flag(j, "individual_digits", false, at);
    s.behavior = s.individual ? Behavior::Isolated : Behavior::Contiguous;
  } else {
    throw_error(at, " is not supported (supported: Sequence, Split, ByteLevel, Metaspace, Digits)");
  }
  steps.push_back(std::move(s));
}

PreTokenizer PreTokenizer::from_json(const json& j, const std::string& where) {
  PreTokenizer p;
  add_steps(j, where, p.steps_);
  return p;
}

bool PreTokenizer::byte_level() const {
  return std::any_of(steps_.begin(), steps_.end(), [](const Step& s) { return s.kind == Step::Kind::ByteLevel; });
}

std::vector<AlignedText> PreTokenizer::apply(AlignedText text) const {
  std::vector<AlignedText> pieces;
  if (!text.empty()) pieces.push_back(std::move(text));
  for (const Step& s : steps_) {
    std::vector<AlignedText> next;
    for (AlignedText& piece : pieces) {
      switch (s.kind) {
        case Step::Kind::Split:
        case Step::Kind::Digits:
          split(piece, s, next);
          break;
        case Step::Kind::ByteLevel: {
          if (s.prefix_space && piece.text[0] != ' ') {
            piece.prepend_from(" ", piece.from[0], piece.from[0]);  // stands for no byte of the input
          }
          std::vector<AlignedText> parts;
          if (s.regex) {
            Step gpt2 = s;
            gpt2.kind = Step::Kind::Split, gpt2.behavior = Behavior::Isolated;
            split(piece, gpt2, parts);
          } else {
            parts.push_back(std::move(piece));
          }
          for (const AlignedText& part : parts) {
            AlignedText spelled;
            for (size_t i = 0; i < part.text.size(); ++i)
              spelled.append_from(to_byte_level(part.text.substr(i, 1)), part.from[i], part.to[i]);
            next.push_back(std::move(spelled));
          }
          break;
        }
        case Step::Kind::Metaspace: {
          AlignedText replaced;
          for (size_t i = 0; i < piece.text.size(); ++i) {
            if (piece.text[i] == ' ')
              replaced.append_from(s.literal, piece.from[i], piece.to[i]);
            else
              replaced.append(piece, i, i + 1);
          }
          const bool first = piece.from[0] == 0;
          if (s.prefix_space && replaced.text.rfind(s.literal, 0) != 0 && (!s.first_only || first)) {
            replaced.prepend_from(s.literal, replaced.from[0], replaced.from[0]);
          }
          if (s.split) {
            Step at_marks = s;
            at_marks.kind = Step::Kind::Split, at_marks.behavior = Behavior::MergedWithNext;
            split(replaced, at_marks, next);
          } else {
            next.push_back(std::move(replaced));
          }
          break;
        }
      }
    }
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace moelab::data
