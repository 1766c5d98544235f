// The Hugging Face safetensors format: reading with full validation, and atomic streaming writes.
//
// Layout of a file:
//   [8 bytes]  N, the header length, unsigned little-endian
//   [N bytes]  a JSON object, padded with spaces so that 8 + N is a multiple of 8:
//                {"__metadata__": {"key": "value", ...},                      (optional; string values only)
//                 "<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
//   [rest]     the data section: each tensor's elements, row-major, little-endian, at [begin, end) relative to
//              the start of the data section. Scalars have shape [] (one element); empty tensors have begin == end.
//
// Writing (write_safetensors) lays tensors out contiguously in the order given, without gaps. Reading
// (SafetensorsFile::open) checks the whole header against the file before any tensor is read, as the reference
// (Rust) reader does: a header of at most 100 MB that starts with '{', and tensors that tile the data section
// exactly, without holes or overlaps, up to the end of the file. Every error names the file, the tensor if there is
// one, and what was expected against what was found.
// The host is little-endian (x86-64, AArch64); the code asserts it at compile time.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moelab {

static_assert(std::endian::native == std::endian::little, "safetensors I/O copies bytes as they are: little-endian");

// Element types, spelled as in the format ("F32", "BF16", ...). The 8-bit floats are those quantised checkpoints
// ship: F8_E4M3 (DeepSeek-V3's weights, with block scales beside them), F8_E5M2, and F8_E8M0 (a power-of-two scale).
enum class DType { BOOL, U8, I8, F8_E4M3, F8_E5M2, F8_E8M0, U16, I16, F16, BF16, U32, I32, F32, U64, I64, F64 };

size_t dtype_size(DType dtype);                               // bytes per element
std::string_view dtype_name(DType dtype);                     // "F32"
std::optional<DType> dtype_from_name(std::string_view name);  // nullopt for an unknown spelling
std::string shape_text(std::span<const int64_t> shape);       // "[2, 3]", as errors print shapes

// A tensor to write: a view of the caller's buffer, which must hold product(shape) elements of `dtype`.
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // may be null only when the tensor has no elements
};

// Writes `tensors` (in the order given) and `metadata` to `path` atomically (temporary file + rename), streaming
// each tensor from its buffer. Throws moelab::Error for a duplicate or reserved name, a negative dimension, or an
// I/O failure; the file at `path`, if any, is left as it was.
void write_safetensors(const std::string& path, std::span<const TensorView> tensors,
                       const std::map<std::string, std::string>& metadata = {});

struct TensorInfo {
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t offset;  // first byte, relative to the start of the data section
  uint64_t nbytes;  // product(shape) * dtype_size(dtype)
};

// A validated, memory-mapped safetensors file. Copies share the mapping; the mapping lives as long as any copy.
// The file must not be truncated by another process while it is open (the format gives no protection from that).
class SafetensorsFile {
 public:
  // Maps and validates the file; throws moelab::Error on any inconsistency.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // Tensor names in data-section order.
  const std::vector<std::string>& names() const { return names_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws "file X: missing tensor 'name'" when absent.
  const TensorInfo& info(const std::string& name) const;
  // The tensor's raw bytes inside the mapping (not necessarily aligned for its dtype).
  std::span<const std::byte> bytes(const std::string& name) const;
  // Lets the kernel drop the pages of `bytes` (part of this file's mapping) from this process's memory: for bytes
  // read once, so that loading a model bigger than half the memory does not hold its file and its decoded copy at
  // once. The bytes stay readable (read from the file again); pages they share with other bytes are kept.
  static void release(std::span<const std::byte> bytes);
  // Copies the tensor into dst (room for product(expected_shape) elements) after checking that it exists and has
  // exactly this dtype and shape: "file X: tensor 'model.norm.weight': expected shape [256], found [128]".
  void read(const std::string& name, DType expected, std::span<const int64_t> expected_shape, void* dst) const;

 private:
  SafetensorsFile() = default;

  std::string path_;
  std::shared_ptr<const std::byte> map_;  // the whole file; unmapped when the last copy goes
  uint64_t data_start_ = 0;               // 8 + header length
  std::vector<std::string> names_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace moelab
