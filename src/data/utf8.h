// UTF-8 code points in and out and UTF-8 validation, through utf8proc: what text files are checked with and the
// tokenizer.json pipeline walks text by.
#pragma once

#include <utf8proc.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace moelab::data {

// The code point starting at byte `at` of s, into c; returns its length in bytes, 0 where s is not valid UTF-8.
inline size_t decode_utf8(std::string_view s, size_t at, char32_t& c) {
  utf8proc_int32_t cp = 0;
  const utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + at),
                                              static_cast<utf8proc_ssize_t>(s.size() - at), &cp);
  if (n <= 0) return 0;
  c = static_cast<char32_t>(cp);
  return static_cast<size_t>(n);
}

// The offset of the first byte that does not begin a well-formed UTF-8 character (overlong forms, surrogates and
// code points past U+10FFFF included), or npos.
inline size_t first_invalid_utf8(std::string_view s) {
  char32_t c = 0;
  for (size_t at = 0; at < s.size();) {
    const size_t n = decode_utf8(s, at, c);
    if (n == 0) return at;
    at += n;
  }
  return std::string_view::npos;
}

inline void append_utf8(char32_t c, std::string& out) {
  utf8proc_uint8_t buf[4];
  const utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

// Unicode White_Space, as Rust's char::is_whitespace (what tokenizers strips and lstrip/rstrip take).
inline bool is_unicode_whitespace(char32_t c) {
  if (c == U' ' || (c >= U'\t' && c <= U'\r') || c == 0x85) return true;
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

// The code point ending at byte `end` of s (end > 0), into c; returns its length in bytes (1 where s is not valid
// UTF-8 there).
inline size_t decode_utf8_before(std::string_view s, size_t end, char32_t& c) {
  size_t begin = end - 1;
  while (begin > 0 && end - begin < 4 && (static_cast<unsigned char>(s[begin]) & 0xC0) == 0x80) --begin;
  if (decode_utf8(s, begin, c) != end - begin) return c = static_cast<unsigned char>(s[end - 1]), 1;
  return end - begin;
}

// The length of the UTF-8 character starting with byte b (1 for a continuation or invalid byte).
inline size_t utf8_length(unsigned char b) { return b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

}  // namespace moelab::data
