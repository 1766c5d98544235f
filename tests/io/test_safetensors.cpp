#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

using testing::error_of;

using testing::read_all;
using testing::TempDir;
using testing::write_all;

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

// A file laid out by the format's rules from a header text and a data section: the header is padded with spaces
// to a multiple of 8, as the reference implementation does.
std::string make_file(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(Safetensors, DTypeNamesAndSizes) {
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::I32), 4u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_size(DType::U8), 1u);
  EXPECT_EQ(dtype_size(DType::U16), 2u);
  EXPECT_EQ(dtype_size(DType::U32), 4u);
  EXPECT_EQ(dtype_size(DType::F8_E4M3), 1u);
  EXPECT_EQ(dtype_name(DType::BF16), "BF16");
  EXPECT_EQ(dtype_from_name("F8_E4M3"), DType::F8_E4M3);
  EXPECT_EQ(dtype_from_name("F8_E5M2"), DType::F8_E5M2);
  EXPECT_EQ(dtype_from_name("F8_E8M0"), DType::F8_E8M0);
  EXPECT_EQ(dtype_from_name("I64"), DType::I64);
  EXPECT_EQ(dtype_from_name("f32"), std::nullopt);  // the format spells dtypes in capitals only
}

TEST(Safetensors, RoundTripOfDTypesShapesAndMetadata) {
  TempDir dir;
  const std::string path = dir.file("rt.safetensors");
  const std::vector<float> f32 = {1.5f, -2.25f, 3.0f, 0.0f, 1e-30f, -7.0f};
  const std::vector<double> f64 = {3.141592653589793, -1e300, 2.0, 0.5, -0.0};
  const std::vector<uint16_t> bf16 = {0x3f80, 0xbf80, 0x4000, 0x0000, 0x7f80, 0x1234};
  const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x7bff};
  const std::vector<int32_t> i32 = {1, -2, 3, -4, 5, -6, 2147483647};
  const std::vector<int64_t> i64 = {-9007199254740993};
  const std::vector<uint32_t> u32 = {0, 1, 4294967295u, 7, 8, 9, 10, 11, 12, 13, 14};
  const std::vector<uint8_t> u8 = {255, 0, 17};
  const std::vector<TensorView> tensors = {{"z.f32", DType::F32, {2, 3}, f32.data()},
                                           {"a.f64", DType::F64, {5}, f64.data()},
                                           {"m.bf16", DType::BF16, {3, 1, 2}, bf16.data()},
                                           {"m.f16", DType::F16, {3}, f16.data()},
                                           {"i32", DType::I32, {7}, i32.data()},
                                           {"scalar", DType::I64, {}, i64.data()},
                                           {"empty.u8", DType::U8, {0}, nullptr},
                                           {"empty.u16", DType::U16, {1, 0, 4}, nullptr},
                                           {"u32", DType::U32, {11}, u32.data()},
                                           {"u8", DType::U8, {3, 1}, u8.data()}};
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"step", "12"}, {"note", "ünïcode \"q\""}};
  write_safetensors(path, tensors, meta);

  const auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.metadata(), meta);
  // Names come back in data order, which is the order given, and the data section has no gaps.
  std::vector<std::string> expected_names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    expected_names.push_back(t.name);
    const TensorInfo& info = f.info(t.name);
    EXPECT_EQ(info.dtype, t.dtype) << t.name;
    EXPECT_EQ(info.shape, t.shape) << t.name;
    EXPECT_EQ(info.offset, offset) << t.name;
    offset += info.nbytes;
  }
  EXPECT_EQ(f.names(), expected_names);
  const std::string file = read_all(path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, file.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  EXPECT_EQ(file.size(), 8 + header_len + offset);

  std::vector<float> f32_back(6);
  f.read("z.f32", DType::F32, std::vector<int64_t>{2, 3}, f32_back.data());
  EXPECT_EQ(f32_back, f32);
  std::vector<double> f64_back(5);
  f.read("a.f64", DType::F64, std::vector<int64_t>{5}, f64_back.data());
  EXPECT_EQ(bytes_of(f64_back), bytes_of(f64));  // bitwise, so -0.0 counts
  std::vector<uint16_t> bf16_back(6), f16_back(3);
  f.read("m.bf16", DType::BF16, std::vector<int64_t>{3, 1, 2}, bf16_back.data());
  f.read("m.f16", DType::F16, std::vector<int64_t>{3}, f16_back.data());
  EXPECT_EQ(bf16_back, bf16);
  EXPECT_EQ(f16_back, f16);
  std::vector<int32_t> i32_back(7);
  f.read("i32", DType::I32, std::vector<int64_t>{7}, i32_back.data());
  EXPECT_EQ(i32_back, i32);
  int64_t scalar = 0;
  f.read("scalar", DType::I64, std::vector<int64_t>{}, &scalar);
  EXPECT_EQ(scalar, i64[0]);
  std::vector<uint32_t> u32_back(11);
  f.read("u32", DType::U32, std::vector<int64_t>{11}, u32_back.data());
  EXPECT_EQ(u32_back, u32);
  std::vector<uint8_t> u8_back(3);
  f.read("u8", DType::U8, std::vector<int64_t>{3, 1}, u8_back.data());
  EXPECT_EQ(u8_back, u8);
  f.read("empty.u16", DType::U16, std::vector<int64_t>{1, 0, 4}, nullptr);
  EXPECT_EQ(f.bytes("empty.u8").size(), 0u);
  EXPECT_EQ(f.bytes("u8").size(), 3u);
}

// Released pages read back the same from the file (what leaving the process's memory costs is a measurement:
// docs/import.md).
TEST(Safetensors, ReleasedBytesReadBackTheSame) {
  TempDir dir;
  std::vector<float> values(5 * 4096);  // a few pages
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f;
  const std::vector<TensorView> views = {{"w", DType::F32, {static_cast<int64_t>(values.size())}, values.data()}};
  write_safetensors(dir.file("a.safetensors"), views);
  const SafetensorsFile f = SafetensorsFile::open(dir.file("a.safetensors"));
  const std::span<const std::byte> bytes = f.bytes("w");
  const std::vector<std::byte> before(bytes.begin(), bytes.end());
  SafetensorsFile::release(bytes);
  SafetensorsFile::release(bytes.subspan(3, 10));  // less than a page: nothing to release, no harm
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), before.begin(), before.end()));
}

TEST(Safetensors, WriterOutputMatchesReferenceLayoutByteForByte) {
  // What Python's safetensors.torch.save_file writes for {"w": tensor([1.5, -2.0])} with metadata {"format": "pt"}:
  // compact JSON, metadata first, fields in the order dtype, shape, data_offsets, spaces up to a multiple of 8.
  const std::string header = R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::vector<float> w = {1.5f, -2.0f};
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  const std::vector<TensorView> tensors = {{"w", DType::F32, {2}, w.data()}};
  write_safetensors(path, tensors, {{"format", "pt"}});
  EXPECT_EQ(read_all(path), make_file(header, bytes_of(w)));
}

TEST(Safetensors, ReadsHandWrittenFileInReferenceConventions) {
  // Header order differs from data order (JSON objects are unordered); "b" comes first in the data.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]},)"
      R"("b":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"c":{"dtype":"BF16","shape":[0],"data_offsets":[24,24]}})";
  const std::vector<int64_t> b = {-7};
  const std::vector<float> a = {1.0f, 2.0f, -0.5f, 4.0f};
  TempDir dir;
  const std::string path = dir.file("py.safetensors");
  write_all(path, make_file(header, bytes_of(b) + bytes_of(a)));

  const auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  std::vector<float> a_back(4);
  f.read("a", DType::F32, std::vector<int64_t>{2, 2}, a_back.data());
  EXPECT_EQ(a_back, a);
  int64_t b_back = 0;
  f.read("b", DType::I64, std::vector<int64_t>{}, &b_back);
  EXPECT_EQ(b_back, -7);
  EXPECT_EQ(f.info("c").shape, std::vector<int64_t>{0});
}

// Tensors at the same offset: the empty ones first, whatever the header's order (as the reference sorts them).
TEST(Safetensors, EmptyTensorsMaySitWhereAnotherBegins) {
  const std::string header = R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                             R"("y":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                             R"("e":{"dtype":"F32","shape":[0,3],"data_offsets":[2,2]}})";
  TempDir dir;
  const std::string path = dir.file("empty.safetensors");
  write_all(path, make_file(header, "abcd"));
  EXPECT_EQ(SafetensorsFile::open(path).names(), (std::vector<std::string>{"x", "e", "y"}));
}

TEST(Safetensors, ReadChecksNameDTypeAndShape) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  const std::vector<uint16_t> w(128, 0x3f80);
  const std::vector<TensorView> tensors = {{"model.norm.weight", DType::BF16, {128}, w.data()}};
  write_safetensors(path, tensors);
  const auto f = SafetensorsFile::open(path);
  std::vector<float> dst(256);
  const std::string dtype_err =
      error_of([&] { f.read("model.norm.weight", DType::F32, std::vector<int64_t>{128}, dst.data()); });
  EXPECT_CONTAINS(dtype_err, "file " + path + ": tensor 'model.norm.weight': expected F32, found BF16");
  const std::string shape_err =
      error_of([&] { f.read("model.norm.weight", DType::BF16, std::vector<int64_t>{256}, dst.data()); });
  EXPECT_CONTAINS(shape_err, "file " + path + ": tensor 'model.norm.weight': expected shape [256], found [128]");
  const std::string rank_err = error_of([&] {
    f.read("model.norm.weight", DType::BF16, std::vector<int64_t>{1, 128}, dst.data());
  });
  EXPECT_CONTAINS(rank_err, "expected shape [1, 128], found [128]");
  EXPECT_CONTAINS(error_of([&] { f.read("lm_head.weight", DType::F32, std::vector<int64_t>{1}, dst.data()); }),
                  "file " + path + ": missing tensor 'lm_head.weight'");
  EXPECT_CONTAINS(error_of([&] { f.info("nope"); }), "missing tensor 'nope'");
  EXPECT_FALSE(f.contains("nope"));
  EXPECT_TRUE(f.contains("model.norm.weight"));
}

TEST(Safetensors, OpenMissingFileNamesIt) {
  TempDir dir;
  const std::string path = dir.file("absent.safetensors");
  const std::string err = error_of([&] { SafetensorsFile::open(path); });
  EXPECT_CONTAINS(err, path);
  EXPECT_CONTAINS(err, "No such file or directory");
}

struct Corruption {
  const char* what;
  std::string bytes;
  const char* expected;  // a piece of the error message naming the specific problem
};

std::vector<Corruption> corruptions() {
  const std::string d16(16, '\0');
  auto one = [&](const std::string& entry) { return make_file(R"({"t":)" + entry + "}", d16); };
  return {
      {"empty file", "", "too short for a safetensors file: 0 bytes"},
      {"three bytes", "abc", "too short for a safetensors file: 3 bytes"},
      {"length past end", le64(100) + "{}", "header length 100 runs past the end of the file (2 bytes follow"},
      {"length 2^64-1", le64(~uint64_t{0}) + "{}", "runs past the end of the file"},
      {"empty header", le64(0), "header must start with '{' (a JSON object), found an empty header"},
      {"leading space", le64(8) + " {}     ", "header must start with '{'"},
      {"invalid json", make_file(R"({"t": {"dtype": )", d16), "header is not valid JSON"},
      {"trailing garbage", make_file(R"({} x)", ""), "header is not valid JSON"},
      {"header not object", make_file("[1, 2]", ""), "header must start with '{'"},
      {"entry not object", one("3"), "tensor 't': expected an object {dtype, shape, data_offsets}, found number"},
      {"missing dtype", one(R"({"shape":[4],"data_offsets":[0,16]})"), "tensor 't': missing 'dtype'"},
      {"missing shape", one(R"({"dtype":"F32","data_offsets":[0,16]})"), "tensor 't': missing 'shape'"},
      {"missing offsets", one(R"({"dtype":"F32","shape":[4]})"), "tensor 't': missing 'data_offsets'"},
      {"extra key", one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16],"x":1})"), "unexpected key 'x'"},
      {"dtype not string", one(R"({"dtype":4,"shape":[4],"data_offsets":[0,16]})"), "'dtype' must be a string"},
      {"unknown dtype", one(R"({"dtype":"F31","shape":[4],"data_offsets":[0,16]})"), "unknown dtype 'F31' (known:"},
      {"shape not array", one(R"({"dtype":"F32","shape":4,"data_offsets":[0,16]})"), "'shape' must be an array"},
      {"float dim", one(R"({"dtype":"F32","shape":[4.0],"data_offsets":[0,16]})"), "'shape' must hold integers"},
      {"string dim", one(R"({"dtype":"F32","shape":["4"],"data_offsets":[0,16]})"), "'shape' must hold integers"},
      {"negative dim", one(R"({"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]})"), "negative dimension -2"},
      {"huge dim", one(R"({"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,16]})"), "too large"},
      {"overflowing shape", one(R"({"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]})"),
       "is too large"},
      {"offsets not array", one(R"({"dtype":"F32","shape":[4],"data_offsets":16})"), "'data_offsets' must be"},
      {"one offset", one(R"({"dtype":"F32","shape":[4],"data_offsets":[16]})"), "'data_offsets' must be"},
      {"three offsets", one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,8,16]})"), "'data_offsets' must be"},
      {"negative offset", one(R"({"dtype":"F32","shape":[4],"data_offsets":[-4,12]})"), "'data_offsets' must be"},
      {"float offset", one(R"({"dtype":"F32","shape":[4],"data_offsets":[0.0,16]})"), "'data_offsets' must be"},
      {"end before begin", one(R"({"dtype":"F32","shape":[0],"data_offsets":[8,4]})"),
       "data_offsets [8, 4] end before they begin"},
      {"past data", one(R"({"dtype":"F32","shape":[8],"data_offsets":[0,32]})"),
       "data_offsets [0, 32] run past the data section (16 bytes)"},
      {"size mismatch", one(R"({"dtype":"F64","shape":[4],"data_offsets":[0,16]})"),
       "shape [4] of F64 needs 32 bytes, but data_offsets [0, 16] hold 16"},
      {"overlap",
       make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                 d16),
       "tensor 'b' at bytes [8, 16) overlaps tensor 'a' ending at byte 12"},
      {"same range",
       make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                 R"("b":{"dtype":"I32","shape":[4],"data_offsets":[0,16]}})",
                 d16),
       "overlaps tensor 'a'"},
      {"nested overlap",
       make_file(R"({"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},)"
                 R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                 R"("c":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})",
                 d16),
       "overlaps tensor 'a'"},
      {"hole at the start", one(R"({"dtype":"F32","shape":[3],"data_offsets":[4,16]})"),
       "a hole in the data section: bytes [0, 4) before tensor 't' belong to no tensor"},
      {"hole between",
       make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                 d16),
       "a hole in the data section: bytes [4, 8) before tensor 'b'"},
      {"trailing bytes", one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,12]})"),
       "the tensors end at byte 12 of the data section, but the file holds 16 bytes of data (4 bytes belong to no "
       "tensor)"},
      {"no tensors, some data", make_file("{}", d16), "the tensors end at byte 0"},
      {"duplicate tensor",
       make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                 R"("a":{"dtype":"F32","shape":[0],"data_offsets":[16,16]}})",
                 d16),
       "tensor 'a' is listed twice"},
      {"duplicate field", one(R"({"dtype":"F32","dtype":"F32","shape":[4],"data_offsets":[0,16]})"),
       "the key 'dtype' twice"},
      {"metadata not object", make_file(R"({"__metadata__":["pt"]})", ""), "'__metadata__' must be an object"},
      {"metadata value", make_file(R"({"__metadata__":{"step":12}})", ""), "__metadata__ 'step' must be a string"},
  };
}

TEST(Safetensors, EveryCorruptionIsAnErrorNamingFileAndProblem) {
  TempDir dir;
  for (const auto& c : corruptions()) {
    const std::string path = dir.file("bad.safetensors");
    write_all(path, c.bytes);
    const std::string err = error_of([&] { SafetensorsFile::open(path); });
    EXPECT_CONTAINS(err, "file " + path + ": ") << " case: " << c.what;
    EXPECT_CONTAINS(err, c.expected) << " case: " << c.what;
  }
}

TEST(Safetensors, AbsurdHeaderLengthIsRefusedWithoutReadingIt) {
  // A sparse file larger than the limit, whose header length claims 150 MB: no disk or memory is used.
  TempDir dir;
  const std::string path = dir.file("absurd.safetensors");
  write_all(path, le64(150'000'000) + "{}");
  std::filesystem::resize_file(path, 200'000'000);
  EXPECT_CONTAINS(error_of([&] { SafetensorsFile::open(path); }),
                  "file " + path + ": header length 150000000 is beyond the limit of 100000000 bytes");
}

TEST(Safetensors, TruncationAtEveryByteIsAnError) {
  TempDir dir;
  const std::string path = dir.file("full.safetensors");
  const std::vector<float> a = {1, 2, 3};
  const std::vector<int64_t> b = {4, 5};
  const std::vector<TensorView> tensors = {{"a", DType::F32, {3}, a.data()}, {"b", DType::I64, {2}, b.data()}};
  write_safetensors(path, tensors, {{"k", "v"}});
  const std::string full = read_all(path);
  SafetensorsFile::open(path);  // the untruncated file is valid
  const std::string cut_path = dir.file("cut.safetensors");
  for (size_t n = 0; n < full.size(); ++n) {
    write_all(cut_path, full.substr(0, n));
    const std::string err = error_of([&] { SafetensorsFile::open(cut_path); });
    EXPECT_CONTAINS(err, "file " + cut_path + ": ") << " cut at " << n;
  }
}

TEST(Safetensors, WriterRefusesBadTensorsAndKeepsOldFile) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  write_all(path, "old");
  const std::vector<float> x = {1, 2};
  auto attempt = [&](std::vector<TensorView> tensors) { return error_of([&] { write_safetensors(path, tensors); }); };
  EXPECT_CONTAINS(attempt({{"x", DType::F32, {2}, x.data()}, {"x", DType::F32, {2}, x.data()}}),
                  "file " + path + ": tensor 'x': given twice");
  EXPECT_CONTAINS(attempt({{"__metadata__", DType::F32, {2}, x.data()}}), "reserved");
  EXPECT_CONTAINS(attempt({{"", DType::F32, {2}, x.data()}}), "empty name");
  EXPECT_CONTAINS(attempt({{"x", DType::F32, {2, -1}, x.data()}}), "tensor 'x': negative dimension in shape [2, -1]");
  EXPECT_CONTAINS(attempt({{"x", DType::F32, {2}, nullptr}}), "tensor 'x': no data for 8 bytes");
  EXPECT_EQ(read_all(path), "old");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(Safetensors, EmptyFileOfNoTensorsRoundTrips) {
  TempDir dir;
  const std::string path = dir.file("none.safetensors");
  write_safetensors(path, {});
  EXPECT_EQ(read_all(path), le64(8) + "{}      ");
  const auto f = SafetensorsFile::open(path);
  EXPECT_TRUE(f.names().empty());
  EXPECT_TRUE(f.metadata().empty());
}

TEST(Safetensors, CopiesShareTheMapping) {
  TempDir dir;
  const std::string path = dir.file("c.safetensors");
  const std::vector<int32_t> v = {9, 8, 7};
  const std::vector<TensorView> tensors = {{"v", DType::I32, {3}, v.data()}};
  write_safetensors(path, tensors);
  std::optional<SafetensorsFile> copy;
  {
    const auto f = SafetensorsFile::open(path);
    copy = f;
  }
  std::vector<int32_t> back(3);
  copy->read("v", DType::I32, std::vector<int64_t>{3}, back.data());
  EXPECT_EQ(back, v);
}

}  // namespace
}  // namespace moelab
