#include "data/byte_level.h"

#include <unordered_map>

#include "data/utf8.h"

namespace moelab::data {

const std::array<char32_t, 256>& byte_level_chars() {
  static const std::array<char32_t, 256> chars = [] {
    std::array<char32_t, 256> c{};
    const auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) c[b] = printable(b) ? static_cast<char32_t>(b) : next++;
    return c;
  }();
  return chars;
}

std::string to_byte_level(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) append_utf8(byte_level_chars()[b], out);
  return out;
}

bool from_byte_level(std::string_view text, std::string& bytes) {
  static const std::unordered_map<char32_t, char> byte_of = [] {
    std::unordered_map<char32_t, char> m;
    for (int b = 0; b < 256; ++b) m[byte_level_chars()[b]] = static_cast<char>(b);
    return m;
  }();
  for (size_t at = 0; at < text.size();) {
    char32_t c = 0;
    const size_t n = decode_utf8(text, at, c);
    const auto it = byte_of.find(c);
    if (n == 0 || it == byte_of.end()) return false;
    bytes.push_back(it->second);
    at += n;
  }
  return true;
}

}  // namespace moelab::data
