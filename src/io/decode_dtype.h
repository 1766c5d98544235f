// Checkpoint element types decoded to f32: the half and 8-bit floats the Hugging Face hub ships, and the two
// quantised layouts of the newest MoE checkpoints, dequantised tile by tile as a layer is used.
//
//   F16      IEEE binary16 (the compiler's _Float16 conversion).
//   BF16     the top half of an f32.
//   F8_E4M3  1 sign, 4 exponent (bias 7), 3 mantissa bits, no infinities; S.1111.111 is NaN; largest 448
//            (the "fn" variant of the OCP FP8 formats, which DeepSeek-V3 ships).
//   F8_E5M2  1 sign, 5 exponent (bias 15), 2 mantissa bits, IEEE-like: infinities and NaNs.
//   E8M0     an 8-bit power of two, 2^(x - 127), 0xFF NaN: the shared scale of an MXFP4 block.
//   MXFP4    32 FP4 (E2M1) values sharing one E8M0 scale; the 4-bit codes are packed two per byte, the low
//            nibble first (GPT-OSS's *_blocks [.., groups, 16] and *_scales [.., groups]).
//   FP8 with block scales: W[r, c] = fp8[r, c] * scale_inv[r / block_rows, c / block_cols]
//            (DeepSeek-V3's weight + weight_scale_inv, quantization_config.weight_block_size [128, 128]).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "io/safetensors.h"

namespace moelab {

float f16_to_f32(uint16_t h);
float f8_e4m3_to_f32(uint8_t x);
float f8_e5m2_to_f32(uint8_t x);
float e8m0_to_f32(uint8_t x);
float fp4_e2m1_to_f32(uint8_t code);  // the low 4 bits

// Whether decode_to_f32 reads this dtype.
bool decodes_to_f32(DType dtype);

// out[i] = element i of `bytes` (n elements of `dtype`) as f32. F32, F16, BF16, F8_E4M3 and F8_E5M2 only: any other
// dtype throws moelab::Error naming `what` (e.g. "file X: tensor 'y'") and the dtype.
void decode_to_f32(DType dtype, std::span<const std::byte> bytes, int64_t n, float* out /*[n]*/,
                   const std::string& what);

// out [rows, cols] = fp8 [rows, cols] (F8_E4M3) times its block's scale, scale_inv [ceil(rows / block_rows),
// ceil(cols / block_cols)] (f32).
void dequantize_fp8_blocks(const uint8_t* fp8, const float* scale_inv, int64_t rows, int64_t cols, int64_t block_rows,
                           int64_t block_cols, float* out);

// out [rows, groups * 32] from MXFP4: blocks [rows, groups, 16] (two codes a byte, low nibble first) and scales
// [rows, groups] (E8M0).
void dequantize_mxfp4(const uint8_t* blocks, const uint8_t* scales, int64_t rows, int64_t groups, float* out);

}  // namespace moelab
