// bf16 (the upper 16 bits of an IEEE float) conversions, inline so that the loops calling them vectorise: the
// GEMM's operand copies, the weights' mirror and AdamW's pass that writes it.
#pragma once

#include <bit>
#include <cstdint>

namespace moelab::cpu {

// Round to nearest, ties to even (finite inputs); what gemm_bf16 does to its inputs.
inline uint16_t to_bf16(float x) {
  uint32_t bits = std::bit_cast<uint32_t>(x);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline float from_bf16(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

}  // namespace moelab::cpu
