// Decoding checkpoint element types to f32: F16 against the CPU's own conversion for all 65,536 codes, F8_E5M2
// against F16 (it is F16's top byte), F8_E4M3, E8M0 and FP4 by hand-known values and order, and the two quantised
// layouts (FP8 with block scales, MXFP4) on hand-made tensors.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "io/decode_dtype.h"
#include "support/errors.h"

namespace moelab {
namespace {

using testing::error_of;

// The CPU's own binary16 conversion (F16C, on every x86-64 CPU since 2012), whatever the build's -march.
__attribute__((target("f16c"))) float hardware_f16(uint16_t h) { return _cvtsh_ss(h); }

// Equal as floats, NaN equal to NaN.
void expect_same(float got, float want, int code) {
  if (std::isnan(want))
    EXPECT_TRUE(std::isnan(got)) << "code " << code;
  else
    EXPECT_EQ(got, want) << "code " << code;
}

TEST(DecodeDType, F16MatchesTheHardwareConversionForEveryCode) {
  ASSERT_TRUE(__builtin_cpu_supports("f16c")) << "the reference conversion needs F16C";
  for (int h = 0; h < 65536; ++h) expect_same(f16_to_f32(static_cast<uint16_t>(h)), hardware_f16(h), h);
}

TEST(DecodeDType, F8E5M2IsTheTopByteOfF16) {
  ASSERT_TRUE(__builtin_cpu_supports("f16c")) << "the reference conversion needs F16C";
  for (int x = 0; x < 256; ++x) expect_same(f8_e5m2_to_f32(static_cast<uint8_t>(x)), hardware_f16(x << 8), x);
}

TEST(DecodeDType, F8E4M3HandValuesAndOrder) {
  EXPECT_EQ(f8_e4m3_to_f32(0x38), 1.0f);  // exponent 7 = bias
  EXPECT_EQ(f8_e4m3_to_f32(0xB8), -1.0f);
  EXPECT_EQ(f8_e4m3_to_f32(0x40), 2.0f);
  EXPECT_EQ(f8_e4m3_to_f32(0x3C), 1.5f);                      // mantissa 4/8
  EXPECT_EQ(f8_e4m3_to_f32(0x7E), 448.0f);                    // the largest
  EXPECT_EQ(f8_e4m3_to_f32(0x08), std::ldexp(1.0f, -6));      // the smallest normal
  EXPECT_EQ(f8_e4m3_to_f32(0x01), std::ldexp(1.0f, -9));      // the smallest subnormal
  EXPECT_EQ(f8_e4m3_to_f32(0x07), 7 * std::ldexp(1.0f, -9));  // the largest subnormal
  EXPECT_EQ(f8_e4m3_to_f32(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(f8_e4m3_to_f32(0x80)));
  EXPECT_TRUE(std::isnan(f8_e4m3_to_f32(0x7F)));
  EXPECT_TRUE(std::isnan(f8_e4m3_to_f32(0xFF)));
  EXPECT_FALSE(std::isinf(f8_e4m3_to_f32(0x78))) << "no infinities: exponent 15 holds numbers";
  EXPECT_EQ(f8_e4m3_to_f32(0x78), 256.0f);
  for (int x = 1; x < 0x7F; ++x) {  // codes in order are values in order, and the sign bit only negates
    EXPECT_LT(f8_e4m3_to_f32(static_cast<uint8_t>(x - 1)), f8_e4m3_to_f32(static_cast<uint8_t>(x))) << x;
    EXPECT_EQ(f8_e4m3_to_f32(static_cast<uint8_t>(x | 0x80)), -f8_e4m3_to_f32(static_cast<uint8_t>(x))) << x;
  }
}

TEST(DecodeDType, E8M0AndFp4) {
  EXPECT_EQ(e8m0_to_f32(127), 1.0f);
  EXPECT_EQ(e8m0_to_f32(128), 2.0f);
  EXPECT_EQ(e8m0_to_f32(120), 1.0f / 128);
  EXPECT_EQ(e8m0_to_f32(0), std::ldexp(1.0f, -127));
  EXPECT_TRUE(std::isnan(e8m0_to_f32(0xFF)));
  const float fp4[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  for (int c = 0; c < 16; ++c) EXPECT_EQ(fp4_e2m1_to_f32(static_cast<uint8_t>(c)), fp4[c]) << c;
  EXPECT_TRUE(std::signbit(fp4_e2m1_to_f32(8)));
}

// A tensor's bytes at any alignment, every floating dtype; other dtypes are refused naming the tensor.
TEST(DecodeDType, DecodesATensorOfEachFloatingDType) {
  const std::vector<float> want = {1.0f, -2.0f, 0.5f, 448.0f};
  const auto check = [&](DType dtype, const std::vector<uint8_t>& raw) {
    std::vector<std::byte> storage(raw.size() + 1);
    std::memcpy(storage.data() + 1, raw.data(), raw.size());  // one byte in: unaligned for every dtype but 8-bit
    std::vector<float> out(want.size(), -7.0f);
    decode_to_f32(dtype, std::span(storage).subspan(1), 4, out.data(), "t");
    EXPECT_EQ(out, want) << dtype_name(dtype);
  };
  std::vector<uint8_t> f32(16);
  std::memcpy(f32.data(), want.data(), 16);
  check(DType::F32, f32);
  check(DType::F16, {0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0x00, 0x5F});  // little-endian 0x3C00, 0xC000, 0x3800, 0x5F00
  check(DType::BF16, {0x80, 0x3F, 0x00, 0xC0, 0x00, 0x3F, 0xE0, 0x43});
  check(DType::F8_E4M3, {0x38, 0xC0, 0x30, 0x7E});
  check(DType::F8_E5M2, {0x3C, 0xC0, 0x38, 0x5F});
  float out[2];
  const std::vector<std::byte> ints(8);
  EXPECT_CONTAINS(error_of([&] { decode_to_f32(DType::I32, ints, 2, out, "file m.safetensors: tensor 'w'"); }),
                  "file m.safetensors: tensor 'w': dtype I32 cannot be read as floating-point weights");
}

// 5 x 7 weights in 2 x 3 blocks: the last block row and column are partial.
TEST(DecodeDType, Fp8BlockScalesApplyPerBlock) {
  const int64_t rows = 5, cols = 7, br = 2, bc = 3;
  std::vector<uint8_t> w(rows * cols, 0x38);                         // every weight 1.0
  w[0] = 0x40;                                                       // 2.0
  const std::vector<float> scale_inv = {1, 2, 3, 4, 5, 6, 7, 8, 9};  // [3, 3]
  std::vector<float> out(rows * cols);
  dequantize_fp8_blocks(w.data(), scale_inv.data(), rows, cols, br, bc, out.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float want = (r == 0 && c == 0 ? 2.0f : 1.0f) * scale_inv[(r / br) * 3 + c / bc];
      EXPECT_EQ(out[r * cols + c], want) << r << "," << c;
    }
}

// Two rows of two groups: codes packed low nibble first, each group scaled by its own E8M0.
TEST(DecodeDType, Mxfp4UnpacksLowNibbleFirstAndScalesEachGroup) {
  const int64_t rows = 2, groups = 2;
  std::vector<uint8_t> blocks(rows * groups * 16, 0x00), scales = {127, 128, 126, 0xFF};
  blocks[0] = 0x21;        // group (0,0): values 0.5 then 1.0
  blocks[16 + 15] = 0xF7;  // group (0,1), last byte: 6.0 then -6.0
  blocks[32 + 1] = 0x9A;   // group (1,0), second byte: -1.0 then -0.5
  std::vector<float> out(rows * groups * 32, -1.0f);
  dequantize_mxfp4(blocks.data(), scales.data(), rows, groups, out.data());
  EXPECT_EQ(out[0], 0.5f);
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[2], 0.0f);
  EXPECT_EQ(out[32 + 30], 12.0f);  // scale 2
  EXPECT_EQ(out[32 + 31], -12.0f);
  EXPECT_EQ(out[64 + 2], -0.5f);  // scale 1/2
  EXPECT_EQ(out[64 + 3], -0.25f);
  EXPECT_TRUE(std::isnan(out[96 + 5])) << "a NaN scale makes its group NaN";
}

}  // namespace
}  // namespace moelab
