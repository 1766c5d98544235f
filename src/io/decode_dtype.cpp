#include "io/decode_dtype.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/bf16.h"
#include "core/error.h"

namespace moelab {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Below this many elements a decode runs on one thread.
constexpr int64_t kParallelElements = 1 << 16;

// out[i] = decode(element i), element i being the T at byte offset i * sizeof(T) (not necessarily aligned).
template <typename T, typename Decode>
void decode_all(const std::byte* bytes, int64_t n, float* out, Decode decode) {
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, bytes + i * sizeof(T), sizeof(T));
    out[i] = decode(v);
  }
}

}  // namespace

float f16_to_f32(uint16_t h) {
  const float sign = h & 0x8000 ? -1.0f : 1.0f;
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  if (e == 0x1F) return m ? kNaN : sign * kInf;
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -24);  // subnormal: m / 1024 * 2^-14
  return sign * std::ldexp(static_cast<float>(1024 + m), e - 25);
}

float f8_e4m3_to_f32(uint8_t x) {
  const float sign = x & 0x80 ? -1.0f : 1.0f;
  const int e = (x >> 3) & 0xF, m = x & 0x7;
  if (e == 0xF && m == 0x7) return kNaN;                            // no infinities in this variant
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -9);  // subnormal: m / 8 * 2^-6
  return sign * std::ldexp(static_cast<float>(8 + m), e - 10);
}

float f8_e5m2_to_f32(uint8_t x) {
  const float sign = x & 0x80 ? -1.0f : 1.0f;
  const int e = (x >> 2) & 0x1F, m = x & 0x3;
  if (e == 0x1F) return m ? kNaN : sign * kInf;
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -16);  // subnormal: m / 4 * 2^-14
  return sign * std::ldexp(static_cast<float>(4 + m), e - 17);
}

float e8m0_to_f32(uint8_t x) { return x == 0xFF ? kNaN : std::ldexp(1.0f, int{x} - 127); }

float fp4_e2m1_to_f32(uint8_t code) {
  const float sign = code & 0x8 ? -1.0f : 1.0f;
  const int e = (code >> 1) & 0x3, m = code & 0x1;
  if (e == 0) return sign * 0.5f * static_cast<float>(m);  // 0 or the subnormal 0.5
  return sign * std::ldexp(static_cast<float>(2 + m), e - 2);
}

bool decodes_to_f32(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F8_E4M3 ||
         dtype == DType::F8_E5M2;
}

void decode_to_f32(DType dtype, std::span<const std::byte> bytes, int64_t n, float* out, const std::string& what) {
  if (!decodes_to_f32(dtype))
    throw_error(what, ": dtype ", dtype_name(dtype), " cannot be read as floating-point weights (expected F32, F16, ",
                "BF16, F8_E4M3 or F8_E5M2)");
  MOELAB_ASSERT(bytes.size() == static_cast<size_t>(n) * dtype_size(dtype), "decode_to_f32: n elements of dtype");
  const std::byte* p = bytes.data();
  switch (dtype) {
    case DType::F32:
      if (n > 0) std::memcpy(out, p, n * sizeof(float));
      return;
    case DType::F16:
      return decode_all<uint16_t>(p, n, out, f16_to_f32);
    case DType::BF16:
      return decode_all<uint16_t>(p, n, out, cpu::from_bf16);
    case DType::F8_E4M3:
      return decode_all<uint8_t>(p, n, out, f8_e4m3_to_f32);
    case DType::F8_E5M2:
      return decode_all<uint8_t>(p, n, out, f8_e5m2_to_f32);
    default:
      MOELAB_ASSERT(false, "decodes_to_f32 and decode_to_f32 disagree");
  }
}

void dequantize_fp8_blocks(const uint8_t* fp8, const float* scale_inv, int64_t rows, int64_t cols, int64_t block_rows,
                           int64_t block_cols, float* out) {
  const int64_t scale_cols = (cols + block_cols - 1) / block_cols;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float* scale_row = scale_inv + (r / block_rows) * scale_cols;
    for (int64_t c = 0; c < cols; ++c)
      out[r * cols + c] = f8_e4m3_to_f32(fp8[r * cols + c]) * scale_row[c / block_cols];
  }
}

void dequantize_mxfp4(const uint8_t* blocks, const uint8_t* scales, int64_t rows, int64_t groups, float* out) {
  constexpr int64_t kBytes = 16, kValues = 32;  // per group
#pragma omp parallel for schedule(static) if (rows * groups * kValues >= kParallelElements)
  for (int64_t g = 0; g < rows * groups; ++g) {
    const float scale = e8m0_to_f32(scales[g]);
    const uint8_t* in = blocks + g * kBytes;
    float* o = out + g * kValues;
    for (int64_t b = 0; b < kBytes; ++b) {
      o[2 * b] = fp4_e2m1_to_f32(in[b] & 0xF) * scale;
      o[2 * b + 1] = fp4_e2m1_to_f32(in[b] >> 4) * scale;
    }
  }
}

}  // namespace moelab
