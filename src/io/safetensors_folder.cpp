#include "io/safetensors_folder.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "data/read_file.h"

namespace moelab {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

// The index's weight_map: tensor name -> shard file name, checked for type and for shard names that stay inside
// the folder.
std::map<std::string, std::string> read_weight_map(const std::string& index_path) {
  const std::string text = data::read_file_bytes(index_path);
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw_error("file ", index_path, ": not valid JSON (", e.what(), ")");
  }
  if (!index.is_object()) throw_error("file ", index_path, ": expected a JSON object, found ", index.type_name());
  if (!index.contains("weight_map"))
    throw_error("file ", index_path, ": missing 'weight_map' (tensor name -> shard file)");
  const nlohmann::json& map = index["weight_map"];
  if (!map.is_object())
    throw_error("file ", index_path, ": 'weight_map' must be an object of tensor name -> shard file, found ",
                map.type_name());
  std::map<std::string, std::string> out;
  for (const auto& [name, shard] : map.items()) {
    if (!shard.is_string())
      throw_error("file ", index_path, ": weight_map '", name, "' must name a shard file, found ", shard.dump());
    const std::string file = shard.get<std::string>();
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos)
      throw_error("file ", index_path, ": weight_map '", name, "' names the shard '", file,
                  "', expected a file name inside the folder");
    out[name] = file;
  }
  if (out.empty()) throw_error("file ", index_path, ": 'weight_map' lists no tensor");
  return out;
}

}  // namespace

SafetensorsFolder SafetensorsFolder::open(const std::string& dir) {
  SafetensorsFolder f;
  f.dir_ = dir;
  const fs::path folder(dir);
  const std::string index_path = (folder / kIndexFile).string();
  const std::string single_path = (folder / kSingleFile).string();
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw_error("folder ", dir, ": does not exist or is not a folder");
  if (!fs::exists(index_path, ec)) {
    if (!fs::exists(single_path, ec)) {
      const bool pickle =
          fs::exists(folder / "pytorch_model.bin", ec) || fs::exists(folder / "pytorch_model.bin.index.json", ec);
      throw_error("folder ", dir, ": no ", kSingleFile, " or ", kIndexFile, " found",
                  pickle ? " (only PyTorch pickle weights, pytorch_model.bin: moelab reads safetensors only; convert "
                           "them with transformers' save_pretrained(..., safe_serialization=True))"
                         : "");
    }
    f.files_.push_back(SafetensorsFile::open(single_path));
    for (const auto& name : f.files_[0].names()) f.where_[name] = 0;
    return f;
  }

  const std::map<std::string, std::string> weight_map = read_weight_map(index_path);
  std::map<std::string, std::vector<std::string>> by_shard;  // shard -> the tensors the index puts there
  for (const auto& [name, shard] : weight_map) by_shard[shard].push_back(name);
  for (const auto& [shard, listed] : by_shard) {
    const std::string shard_path = (folder / shard).string();
    if (!fs::exists(shard_path, ec))
      throw_error("file ", index_path, ": the shard ", shard, " (holding '", listed.front(), "'",
                  listed.size() > 1 ? " and " + std::to_string(listed.size() - 1) + " more tensors" : "",
                  ") is missing from the folder");
    const size_t i = f.files_.size();
    f.files_.push_back(SafetensorsFile::open(shard_path));
    const SafetensorsFile& file = f.files_.back();
    for (const auto& name : listed)
      if (!file.contains(name))
        throw_error("file ", index_path, ": lists tensor '", name, "' in ", shard, ", which does not hold it");
    const std::set<std::string> expected(listed.begin(), listed.end());
    for (const auto& name : file.names()) {
      if (!expected.count(name)) {
        const auto other = weight_map.find(name);
        throw_error("file ", shard_path, ": holds tensor '", name, "', which ", index_path,
                    other == weight_map.end() ? " does not list" : " puts in " + other->second);
      }
      f.where_[name] = i;
    }
  }
  return f;
}

std::vector<std::string> SafetensorsFolder::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : where_) out.push_back(name);
  return out;
}

const SafetensorsFile& SafetensorsFolder::file_of(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) throw_error("folder ", dir_, ": no tensor '", name, "'");
  return files_[it->second];
}

}  // namespace moelab
