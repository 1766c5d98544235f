#include "io/npy.h"

#include <array>

#include "core/error.h"
#include "io/atomic_file.h"

namespace moelab {
namespace {

struct NpyEntry {
  DType dtype;
  std::string_view descr;
};

// '|' marks single-byte types, whose byte order does not apply; BF16 is absent (NumPy has no such type).
constexpr std::array<NpyEntry, 12> kDescrs = {{{DType::BOOL, "|b1"},
                                               {DType::U8, "|u1"},
                                               {DType::I8, "|i1"},
                                               {DType::U16, "<u2"},
                                               {DType::I16, "<i2"},
                                               {DType::F16, "<f2"},
                                               {DType::U32, "<u4"},
                                               {DType::I32, "<i4"},
                                               {DType::F32, "<f4"},
                                               {DType::U64, "<u8"},
                                               {DType::I64, "<i8"},
                                               {DType::F64, "<f8"}}};

constexpr size_t kAlign = 64;     // the data starts at a multiple of this (what numpy itself writes)
constexpr size_t kPreamble = 10;  // magic (6) + version (2) + header length (2)

// A Python tuple: "()", "(5,)", "(2, 3)".
std::string shape_tuple(std::span<const int64_t> shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

std::string_view npy_descr(DType dtype) {
  for (const auto& e : kDescrs)
    if (e.dtype == dtype) return e.descr;
  throw_error(".npy: the element type ", dtype_name(dtype), " has no NumPy dtype");
}

std::string npy_header(DType dtype, std::span<const int64_t> shape) {
  for (int64_t d : shape)
    if (d < 0) throw_error(".npy: negative dimension in shape ", shape_tuple(shape));
  std::string dict = "{'descr': '" + std::string(npy_descr(dtype)) +
                     "', 'fortran_order': False, 'shape': " + shape_tuple(shape) + ", }";
  const size_t unpadded = kPreamble + dict.size() + 1;  // + the closing '\n'
  dict.append((kAlign - unpadded % kAlign) % kAlign, ' ');
  dict += '\n';
  if (dict.size() > 0xFFFF)
    throw_error(".npy: the header of shape ", shape_tuple(shape), " exceeds version 1.0's 65535 bytes");
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xFF);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict;
}

void write_npy(const std::string& path, DType dtype, std::span<const int64_t> shape, const void* data) {
  std::string header;
  try {
    header = npy_header(dtype, shape);
  } catch (const Error& e) {
    throw_error("file ", path, ": ", e.what());
  }
  uint64_t nbytes = dtype_size(dtype);
  for (int64_t d : shape)
    if (__builtin_mul_overflow(nbytes, static_cast<uint64_t>(d), &nbytes))
      throw_error("file ", path, ": the array's byte count overflows 64 bits");
  MOELAB_ASSERT(data != nullptr || nbytes == 0, "a non-empty array needs its data");
  AtomicFileWriter w(path);
  w.write(header);
  if (nbytes > 0) w.write(data, nbytes);
  w.commit();
}

}  // namespace moelab
