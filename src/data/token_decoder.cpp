#include "data/token_decoder.h"

#include "core/error.h"
#include "data/byte_level.h"
#include "data/json_steps.h"
#include "data/pre_tokenizer.h"
#include "data/utf8.h"

namespace moelab::data {

namespace {

using json = nlohmann::json;

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// The byte a "<0xNN>" piece stands for, or -1.
int fallback_byte(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  const auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  const int hi = hex(piece[3]), lo = hex(piece[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// How many bytes from `at` form the longest start of a valid UTF-8 sequence (at least 1): Unicode's "maximal
// subpart", which from_utf8_lossy replaces by one U+FFFD.
size_t maximal_subpart(const std::string& bytes, size_t at) {
  const auto b = static_cast<unsigned char>(bytes[at]);
  const size_t length = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 1;
  size_t n = 1;
  for (; n < length && at + n < bytes.size(); ++n) {
    const auto c = static_cast<unsigned char>(bytes[at + n]);
    // The second byte's range depends on the first (no overlong forms, no surrogates, nothing past U+10FFFF).
    unsigned char low = 0x80, high = 0xBF;
    if (n == 1) {
      if (b == 0xE0) low = 0xA0;
      if (b == 0xED) high = 0x9F;
      if (b == 0xF0) low = 0x90;
      if (b == 0xF4) high = 0x8F;
    }
    if (c < low || c > high) break;
  }
  return n;
}

// Bytes as text, each invalid stretch (a maximal subpart) replaced by U+FFFD, as Rust's from_utf8_lossy does.
std::string lossy_utf8(const std::string& bytes) {
  std::string out;
  for (size_t at = 0; at < bytes.size();) {
    char32_t c = 0;
    const size_t n = decode_utf8(bytes, at, c);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      at += maximal_subpart(bytes, at);
    } else {
      out.append(bytes, at, n);
      at += n;
    }
  }
  return out;
}

}  // namespace

void TokenDecoder::add_steps(const json& j, const std::string& where, std::vector<Step>& steps) {
  if (j.is_null()) return;
  const std::string type = json_step_type(j, where, "decoder");
  Step s{};
  if (type == "Sequence") {
    for (const json& step : json_sequence(j, "decoders", where, "decoder")) add_steps(step, where, steps);
    return;
  } else if (type == "ByteLevel") {
    s.kind = Step::Kind::ByteLevel;
  } else if (type == "Metaspace") {
    s.kind = Step::Kind::Metaspace, s.to = " ";
    s.from = json_text(j, "replacement", "\xe2\x96\x81", where);
    s.strip_first_space = metaspace_prepend_scheme(j) != "never";
  } else if (type == "Replace") {
    s.kind = Step::Kind::Replace, s.to = json_text(j, "content", "", where);
    const json& p = j.value("pattern", json());
    if (!p.contains("String") || !p["String"].is_string())
      throw_error(where, ": decoder Replace: expected a pattern {\"String\": ...}");
    s.from = p["String"].get<std::string>();
  } else if (type == "ByteFallback") {
    s.kind = Step::Kind::ByteFallback;
  } else if (type == "Fuse") {
    s.kind = Step::Kind::Fuse;
  } else if (type == "Strip") {
    s.kind = Step::Kind::Strip, s.from = json_text(j, "content", " ", where);
    s.start = static_cast<int>(std::clamp<int64_t>(json_whole(j, "start", 0, where), 0, 1 << 20));
    s.stop = static_cast<int>(std::clamp<int64_t>(json_whole(j, "stop", 0, where), 0, 1 << 20));
  } else {
    throw_error(where, ": decoder '", type,
                "' is not supported (supported: Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip)");
  }
  steps.push_back(std::move(s));
}

TokenDecoder TokenDecoder::from_json(const json& j, const std::string& where) {
  TokenDecoder d;
  add_steps(j, where, d.steps_);
  return d;
}

std::string TokenDecoder::decode(std::vector<std::string> pieces) const { return run(std::move(pieces), true, false); }

size_t TokenDecoder::piece_bytes(const std::string& piece) const { return run({piece}, false, true).size(); }

std::string TokenDecoder::run(std::vector<std::string> pieces, bool start_of_text, bool raw_bytes) const {
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Step::Kind::ByteLevel: {
        std::string bytes;
        for (const std::string& p : pieces)
          if (!from_byte_level(p, bytes)) bytes += p;  // a piece outside the alphabet (an added token) as it is
        pieces = {raw_bytes ? bytes : lossy_utf8(bytes)};
        break;
      }
      case Step::Kind::Metaspace:
        for (size_t i = 0; i < pieces.size(); ++i) {
          pieces[i] = replace_all(pieces[i], s.from, s.to);
          if (i == 0 && start_of_text && s.strip_first_space && !pieces[0].empty() && pieces[0][0] == ' ')
            pieces[0].erase(0, 1);
        }
        break;
      case Step::Kind::Replace:
        for (std::string& p : pieces) p = replace_all(p, s.from, s.to);
        break;
      case Step::Kind::ByteFallback: {
        std::vector<std::string> out;
        std::string pending;
        size_t n_bytes = 0;
        const auto flush = [&] {
          if (n_bytes == 0) return;
          if (raw_bytes || first_invalid_utf8(pending) == std::string::npos) {
            out.push_back(pending);
          } else {
            for (size_t i = 0; i < n_bytes; ++i) out.emplace_back("\xEF\xBF\xBD");
          }
          pending.clear(), n_bytes = 0;
        };
        for (const std::string& p : pieces) {
          const int b = fallback_byte(p);
          if (b >= 0) {
            pending.push_back(static_cast<char>(b)), ++n_bytes;
          } else {
            flush();
            out.push_back(p);
          }
        }
        flush();
        pieces = std::move(out);
        break;
      }
      case Step::Kind::Fuse: {
        std::string all;
        for (const std::string& p : pieces) all += p;
        pieces = {all};
        break;
      }
      case Step::Kind::Strip:
        // Strip removes what a normalizer put before the text (Prepend "▁", a space by now); a piece in running text
        // keeps it.
        if (!start_of_text) break;
        for (std::string& p : pieces) {
          for (int i = 0; i < s.start && p.rfind(s.from, 0) == 0; ++i) p.erase(0, s.from.size());
          for (int i = 0; i < s.stop && p.size() >= s.from.size() &&
                          p.compare(p.size() - s.from.size(), s.from.size(), s.from) == 0;
               ++i)
            p.erase(p.size() - s.from.size());
        }
        break;
    }
  }
  std::string text;
  for (const std::string& p : pieces) text += p;
  return text;
}

}  // namespace moelab::data
