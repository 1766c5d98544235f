// The weights of a Hugging Face model folder: one `model.safetensors`, or the shards that
// `model.safetensors.index.json` lists, opened (memory-mapped, validated) and looked up by tensor name.
//
// The index is {"metadata": {...}, "weight_map": {"<tensor name>": "<shard file name>", ...}}. As llama.cpp's
// converter does, the index and the shards must agree exactly: every tensor the index lists is in the shard it
// names, and every tensor of a shard is listed. A shard is a plain file name inside the folder. Every error names
// the file and the tensor or shard concerned.
#pragma once

#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace moelab {

class SafetensorsFolder {
 public:
  // Throws moelab::Error when the folder holds neither file, or on any inconsistency.
  static SafetensorsFolder open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  // The files read: model.safetensors, or the shards in the order of their names.
  const std::vector<SafetensorsFile>& files() const { return files_; }
  // Every tensor, sorted by name.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  // The file holding the tensor; throws "folder X: no tensor 'name'" when absent.
  const SafetensorsFile& file_of(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const { return file_of(name).info(name); }
  std::span<const std::byte> bytes(const std::string& name) const { return file_of(name).bytes(name); }

 private:
  std::string dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index in files_
};

}  // namespace moelab
