// Fuzzes the safetensors reader: any bytes must open as a valid file (every tensor then readable) or be refused
// with moelab::Error; any other outcome (a crash, a sanitizer report, another exception) is a bug.
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "fuzz_input_file.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string seeds = moelab::fuzz::seeds_dir();
  if (seeds.empty()) return 0;
  const float a[6] = {1, 2, 3, 4, 5, 6};
  const uint16_t b[2] = {0x3f80, 0x4000};
  const std::vector<moelab::TensorView> tensors = {{"a.weight", moelab::DType::F32, {2, 3}, a},
                                                   {"b", moelab::DType::BF16, {2}, b}};
  moelab::write_safetensors(seeds + "/two_tensors.safetensors", tensors, {{"format", "pt"}});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = moelab::SafetensorsFile::open(moelab::fuzz::input_file("x.safetensors", data, size));
    for (const auto& name : file.names()) {
      const moelab::TensorInfo& info = file.info(name);
      std::vector<std::byte> out(info.nbytes);
      file.read(name, info.dtype, info.shape, out.data());
    }
  } catch (const moelab::Error&) {
  }
  return 0;
}
