// GPT-2's byte-level alphabet, which byte-level BPE vocabularies (GPT-2, Qwen, OLMoE, DeepSeek, GPT-OSS) are
// spelled in: each of the 256 byte values stands for one printable Unicode character (printable Latin-1 bytes for
// themselves, the others for U+0100 onwards in byte order, so a space is "Ġ" U+0120 and a newline "Ċ" U+010A).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace moelab::data {

// [256] the code point each byte stands for.
const std::array<char32_t, 256>& byte_level_chars();

// The bytes of `bytes`, each spelled as its byte-level character (UTF-8).
std::string to_byte_level(std::string_view bytes);

// The bytes a byte-level spelling stands for; false when `text` holds a character outside the alphabet.
bool from_byte_level(std::string_view text, std::string& bytes);

}  // namespace moelab::data
