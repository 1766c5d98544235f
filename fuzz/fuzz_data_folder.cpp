// Fuzzes the data-folder reader: a valid little folder is written once, then each input replaces one of its files
// (the first byte picks meta.json, train.bin or train.genre.u8). TokenData::open must accept a consistent folder
// (every token and every label then readable) or refuse it with moelab::Error.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/token_file.h"
#include "fuzz_input_file.h"

namespace {

std::filesystem::path folder() { return moelab::fuzz::scratch_dir() / "data"; }

void write_valid_folder() {
  moelab::data::SplitTokens split;
  for (uint32_t i = 0; i < 60; ++i) {
    split.tokens.push_back(i % 20 == 19 ? 0 : 1 + i % 7);
    split.labels.resize(1);
    split.labels[0].push_back(static_cast<uint8_t>((i / 20) % 2));
    split.documents += i % 20 == 19;
  }
  moelab::data::write_data_folder(folder().string(),
                                  {"fuzz", 8, 0, {{"genre", moelab::data::LabelScope::document, {"a", "b"}}}},
                                  {split, split, split}, "model");
}

const char* kFiles[] = {"meta.json", "train.bin", "train.genre.u8"};
std::string g_original[3];  // the valid folder's bytes of each file, to put back what the last input replaced
int g_replaced = -1;

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  write_valid_folder();
  for (int which = 0; which < 3; ++which) g_original[which] = read_bytes(folder() / kFiles[which]);
  const std::string seeds = moelab::fuzz::seeds_dir();
  if (!seeds.empty()) {
    for (uint8_t which = 0; which < 3; ++which) {
      std::string bytes = g_original[which];
      bytes.insert(bytes.begin(), static_cast<char>(which));
      moelab::fuzz::write_bytes(std::filesystem::path(seeds) / ("valid_" + std::to_string(which)), bytes.data(),
                                bytes.size());
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (g_replaced >= 0)
    moelab::fuzz::write_bytes(folder() / kFiles[g_replaced], g_original[g_replaced].data(),
                              g_original[g_replaced].size());
  g_replaced = data[0] % 3;
  moelab::fuzz::write_bytes(folder() / kFiles[g_replaced], data + 1, size - 1);
  try {
    const auto d = moelab::data::TokenData::open(folder().string());
    for (const char* split : {"train", "val", "test"}) {
      std::vector<int32_t> out(d.split_tokens(split));
      d.copy_tokens(split, 0, static_cast<int64_t>(out.size()), out.data());
      // Every class id of every channel, read where the sanitizers see an out-of-bounds byte.
      for (size_t c = 0; c < d.label_channels().size(); ++c) {
        const uint8_t* labels = d.labels(split, c);  // [split_tokens]
        volatile uint32_t sum = 0;
        for (size_t i = 0; i < out.size(); ++i) sum = sum + labels[i];
      }
    }
  } catch (const moelab::Error&) {
  }
  return 0;
}
