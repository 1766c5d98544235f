// NumPy .npy files (format version 1.0), written so that `numpy.load(path)` reads them with no other code: the
// exported analysis arrays (routing traces) are meant for numpy/pandas users.
//
// Layout of a file:
//   [6 bytes]  magic "\x93NUMPY"
//   [2 bytes]  format version 1, 0
//   [2 bytes]  H, the header length, unsigned little-endian
//   [H bytes]  a Python dict literal, e.g. "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", padded
//              with spaces and ended by '\n' so that the data starts at a multiple of 64 bytes (10 + H)
//   [rest]     the elements in C (row-major) order, little-endian
//
// Element types reuse the safetensors DType (io/safetensors.h); every one has a NumPy descriptor but BF16.
// Files are replaced atomically (io/atomic_file.h) and streamed from the caller's buffer. The host is little-endian
// (asserted in safetensors.h), so '<' descriptors describe the bytes as they are in memory.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "io/safetensors.h"

namespace moelab {

// The NumPy type descriptor of the dtype ("<f4", "|u1", ...). Throws moelab::Error for BF16, which has none.
std::string_view npy_descr(DType dtype);

// The bytes before the data of an array of this dtype and shape: magic, version, length and padded header.
// Throws moelab::Error for a negative dimension.
std::string npy_header(DType dtype, std::span<const int64_t> shape);

// Writes data (product(shape) elements of dtype, C order; may be null only when there are none) to path
// atomically. Errors name the path.
void write_npy(const std::string& path, DType dtype, std::span<const int64_t> shape, const void* data);

// The DType of a C++ element type, for the typed overload below.
template <typename T>
constexpr DType npy_dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return DType::F32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::F64;
  else if constexpr (std::is_same_v<T, int64_t>)
    return DType::I64;
  else if constexpr (std::is_same_v<T, int32_t>)
    return DType::I32;
  else if constexpr (std::is_same_v<T, int16_t>)
    return DType::I16;
  else if constexpr (std::is_same_v<T, uint8_t>)
    return DType::U8;
  else
    static_assert(sizeof(T) == 0, "no .npy dtype for this element type");
}

template <typename T>
void write_npy(const std::string& path, std::span<const int64_t> shape, const T* data /*[product(shape)]*/) {
  write_npy(path, npy_dtype_of<T>(), shape, data);
}

}  // namespace moelab
