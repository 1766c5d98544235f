#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "core/error.h"
#include "io/atomic_file.h"

namespace moelab {
namespace {

// Ordered, so that tensors at the same offset (empty ones) keep the header's order in names().
using json = nlohmann::ordered_json;

struct DTypeEntry {
  DType dtype;
  std::string_view name;
  size_t size;
};

constexpr std::array<DTypeEntry, 16> kDTypes = {{{DType::BOOL, "BOOL", 1},
                                                 {DType::U8, "U8", 1},
                                                 {DType::I8, "I8", 1},
                                                 {DType::F8_E4M3, "F8_E4M3", 1},
                                                 {DType::F8_E5M2, "F8_E5M2", 1},
                                                 {DType::F8_E8M0, "F8_E8M0", 1},
                                                 {DType::U16, "U16", 2},
                                                 {DType::I16, "I16", 2},
                                                 {DType::F16, "F16", 2},
                                                 {DType::BF16, "BF16", 2},
                                                 {DType::U32, "U32", 4},
                                                 {DType::I32, "I32", 4},
                                                 {DType::F32, "F32", 4},
                                                 {DType::U64, "U64", 8},
                                                 {DType::I64, "I64", 8},
                                                 {DType::F64, "F64", 8}}};

// A header larger than this is corruption, not a model (the reference implementation uses the same bound).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const DTypeEntry& entry_of(DType dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e;
  MOELAB_ASSERT(false, "DType missing from kDTypes");
  return kDTypes[0];
}

std::string known_dtypes() {
  std::string s;
  for (const auto& e : kDTypes) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

// product(shape) * elem_size, or nullopt when it does not fit in 64 bits.
std::optional<uint64_t> byte_count(std::span<const int64_t> shape, size_t elem_size) {
  uint64_t n = elem_size;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  return n;
}

// Rejects duplicate keys in any object of the header: nlohmann would otherwise keep the last one silently, and a
// tensor listed twice is a corrupt file, not a choice.
json parse_header(const std::string& path, std::string_view text) {
  std::vector<std::set<std::string>> seen;  // keys of each open object, innermost last
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) seen.emplace_back();
    if (event == json::parse_event_t::object_end) seen.pop_back();
    if (event == json::parse_event_t::key && !seen.back().insert(parsed.get<std::string>()).second) {
      if (depth == 1) throw_error("file ", path, ": tensor '", parsed.get<std::string>(), "' is listed twice");
      throw_error("file ", path, ": header has the key '", parsed.get<std::string>(), "' twice in one object");
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    throw_error("file ", path, ": header is not valid JSON (", e.what(), ")");
  }
}

struct MappedFile {
  std::shared_ptr<const std::byte> data;
  uint64_t size = 0;
};

MappedFile map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_error("file ", path, ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw_error("file ", path, ": cannot stat (", why, ")");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw_error("file ", path, ": too short for a safetensors file: ", size,
                " bytes, expected at least 8 (the header length)");
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const std::string why = p == MAP_FAILED ? std::strerror(errno) : "";
  ::close(fd);  // the mapping keeps the file open
  if (p == MAP_FAILED) throw_error("file ", path, ": cannot map (", why, ")");
  auto unmap = [size](const std::byte* q) { ::munmap(const_cast<std::byte*>(q), size); };
  return {std::shared_ptr<const std::byte>(static_cast<const std::byte*>(p), unmap), size};
}

// One header entry, checked against the data section of `data_size` bytes.
TensorInfo parse_entry(const std::string& path, const std::string& name, const json& entry, uint64_t data_size) {
  const std::string where = "file " + path + ": tensor '" + name + "'";
  if (!entry.is_object())
    throw_error(where, ": expected an object {dtype, shape, data_offsets}, found ", entry.type_name());
  for (const auto& [key, value] : entry.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      throw_error(where, ": unexpected key '", key, "' (expected dtype, shape, data_offsets)");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(key)) throw_error(where, ": missing '", key, "'");

  const json& jd = entry["dtype"];
  if (!jd.is_string()) throw_error(where, ": 'dtype' must be a string, found ", jd.type_name());
  const auto dtype = dtype_from_name(jd.get<std::string>());
  if (!dtype) throw_error(where, ": unknown dtype '", jd.get<std::string>(), "' (known: ", known_dtypes(), ")");

  const json& js = entry["shape"];
  if (!js.is_array()) throw_error(where, ": 'shape' must be an array of integers, found ", js.type_name());
  TensorInfo info{*dtype, {}, 0, 0};
  for (const json& d : js) {
    if (!d.is_number_integer()) throw_error(where, ": 'shape' must hold integers, found ", d.dump());
    if (d.is_number_unsigned() && d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      throw_error(where, ": dimension ", d.dump(), " is too large");
    if (d.get<int64_t>() < 0) throw_error(where, ": negative dimension ", d.get<int64_t>(), " in shape ", js.dump());
    info.shape.push_back(d.get<int64_t>());
  }

  const json& jo = entry["data_offsets"];
  if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
    throw_error(where, ": 'data_offsets' must be [begin, end] with non-negative integers, found ", jo.dump());
  const uint64_t begin = jo[0].get<uint64_t>(), end = jo[1].get<uint64_t>();
  if (end < begin) throw_error(where, ": data_offsets [", begin, ", ", end, "] end before they begin");
  if (end > data_size)
    throw_error(where, ": data_offsets [", begin, ", ", end, "] run past the data section (", data_size, " bytes)");
  const auto nbytes = byte_count(info.shape, dtype_size(*dtype));
  if (!nbytes) throw_error(where, ": shape ", shape_text(info.shape), " is too large");
  if (end - begin != *nbytes)
    throw_error(where, ": shape ", shape_text(info.shape), " of ", dtype_name(*dtype), " needs ", *nbytes,
                " bytes, but data_offsets [", begin, ", ", end, "] hold ", end - begin);
  info.offset = begin;
  info.nbytes = *nbytes;
  return info;
}

}  // namespace

std::string shape_text(std::span<const int64_t> shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

size_t dtype_size(DType dtype) { return entry_of(dtype).size; }

std::string_view dtype_name(DType dtype) { return entry_of(dtype).name; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& e : kDTypes)
    if (e.name == name) return e.dtype;
  return std::nullopt;
}

void write_safetensors(const std::string& path, std::span<const TensorView> tensors,
                       const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps the header in the order given, so the header reads in the same order as the data.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const std::string where = "file " + path + ": tensor '" + t.name + "'";
    if (t.name.empty()) throw_error("file ", path, ": a tensor has an empty name");
    if (t.name == "__metadata__") throw_error(where, ": the name is reserved for the metadata");
    if (header.contains(t.name)) throw_error(where, ": given twice");
    for (int64_t d : t.shape)
      if (d < 0) throw_error(where, ": negative dimension in shape ", shape_text(t.shape));
    const auto nbytes = byte_count(t.shape, dtype_size(t.dtype));
    if (!nbytes) throw_error(where, ": shape ", shape_text(t.shape), " is too large");
    if (*nbytes > 0 && t.data == nullptr) throw_error(where, ": no data for ", *nbytes, " bytes");
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + *nbytes}}};
    offset += *nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw_error("file ", path, ": cannot encode the header (", e.what(), ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned
  std::array<unsigned char, 8> length{};
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(uint64_t{text.size()} >> (8 * i));

  AtomicFileWriter out(path);
  out.write(length.data(), length.size());
  out.write(text);
  for (const auto& t : tensors) {
    const uint64_t nbytes = *byte_count(t.shape, dtype_size(t.dtype));
    if (nbytes > 0) out.write(t.data, nbytes);
  }
  out.commit();
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  MappedFile file = map_file(path);
  f.map_ = file.data;
  const std::byte* base = file.data.get();

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(base[i]);
  if (header_len > file.size - 8)
    throw_error("file ", path, ": header length ", header_len, " runs past the end of the file (", file.size - 8,
                " bytes follow the length)");
  if (header_len > kMaxHeaderBytes)
    throw_error("file ", path, ": header length ", header_len, " is beyond the limit of ", kMaxHeaderBytes, " bytes");
  f.data_start_ = 8 + header_len;
  const uint64_t data_size = file.size - f.data_start_;

  // The reference reader refuses anything else before the JSON (whitespace included).
  if (header_len == 0 || static_cast<char>(base[8]) != '{')
    throw_error("file ", path, ": header must start with '{' (a JSON object)",
                header_len == 0 ? ", found an empty header" : "");
  const json header = parse_header(path, {reinterpret_cast<const char*>(base) + 8, header_len});
  if (!header.is_object()) throw_error("file ", path, ": header must be a JSON object, found ", header.type_name());

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object())
        throw_error("file ", path, ": '__metadata__' must be an object of strings, found ", entry.type_name());
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          throw_error("file ", path, ": __metadata__ '", key, "' must be a string, found ", value.dump());
        f.metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    f.tensors_.emplace(name, parse_entry(path, name, entry, data_size));
  }

  // As the reference reader requires: ordered by position, the tensors tile the data section exactly, each
  // beginning where the one before ends, from byte 0 to the end of the file (no holes, no overlaps, no trailing
  // bytes). Empty tensors sort before a non-empty one at the same offset; ties keep the header's order.
  for (const auto& [name, entry] : header.items())
    if (name != "__metadata__") f.names_.push_back(name);
  std::stable_sort(f.names_.begin(), f.names_.end(), [&](const std::string& a, const std::string& b) {
    const TensorInfo &x = f.tensors_.at(a), &y = f.tensors_.at(b);
    return std::pair(x.offset, x.nbytes) < std::pair(y.offset, y.nbytes);
  });
  const std::string* last = nullptr;  // the tensor ending at `end`, if any
  uint64_t end = 0;
  for (const auto& name : f.names_) {
    const TensorInfo& info = f.tensors_.at(name);
    if (info.offset < end)
      throw_error("file ", path, ": tensor '", name, "' at bytes [", info.offset, ", ", info.offset + info.nbytes,
                  ") overlaps tensor '", *last, "' ending at byte ", end);
    if (info.offset > end)
      throw_error("file ", path, ": a hole in the data section: bytes [", end, ", ", info.offset, ") before tensor '",
                  name, "' belong to no tensor");
    last = &name;
    end = info.offset + info.nbytes;
  }
  if (end != data_size)
    throw_error("file ", path, ": the tensors end at byte ", end, " of the data section, but the file holds ",
                data_size, " bytes of data (", data_size - end, " bytes belong to no tensor)");
  return f;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) throw_error("file ", path_, ": missing tensor '", name, "'");
  return it->second;
}

void SafetensorsFile::release(std::span<const std::byte> bytes) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(bytes.data()), end = begin + bytes.size();
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;  // whole pages inside
  // Advice only: a failure leaves the pages where they are, which costs memory, not correctness.
  if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

std::span<const std::byte> SafetensorsFile::bytes(const std::string& name) const {
  const TensorInfo& t = info(name);
  return {map_.get() + data_start_ + t.offset, t.nbytes};
}

void SafetensorsFile::read(const std::string& name, DType expected, std::span<const int64_t> expected_shape,
                           void* dst) const {
  const TensorInfo& t = info(name);
  if (t.dtype != expected)
    throw_error("file ", path_, ": tensor '", name, "': expected ", dtype_name(expected), ", found ",
                dtype_name(t.dtype));
  if (!std::equal(t.shape.begin(), t.shape.end(), expected_shape.begin(), expected_shape.end()))
    throw_error("file ", path_, ": tensor '", name, "': expected shape ", shape_text(expected_shape), ", found ",
                shape_text(t.shape));
  if (t.nbytes > 0) std::memcpy(dst, map_.get() + data_start_ + t.offset, t.nbytes);
}

}  // namespace moelab
