// A Hugging Face model folder's weights: one model.safetensors or the shards of model.safetensors.index.json, and
// every way the index and the shards can disagree, each an error naming the file and the tensor or shard.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_folder.h"
#include "support/errors.h"
#include "support/temp_dir.h"

namespace moelab {
namespace {

using testing::error_of;
using testing::TempDir;
using testing::write_all;

// Writes a shard holding one F32 vector per name, element i of tensor j being 10 j + i.
void write_shard(const std::string& path, const std::vector<std::string>& names) {
  std::vector<std::vector<float>> values;
  std::vector<TensorView> views;
  for (size_t j = 0; j < names.size(); ++j) values.push_back({10.0f * j, 10.0f * j + 1});
  for (size_t j = 0; j < names.size(); ++j) views.push_back({names[j], DType::F32, {2}, values[j].data()});
  write_safetensors(path, views, {{"format", "pt"}});
}

const std::string kIndex =
    R"({"metadata":{"total_size":32},"weight_map":{"a.weight":"model-00001-of-00002.safetensors",)"
    R"("b.weight":"model-00001-of-00002.safetensors","c.weight":"model-00002-of-00002.safetensors",)"
    R"("d.weight":"model-00002-of-00002.safetensors"}})";

// A sharded folder as save_pretrained writes one: two shards and the index.
void write_sharded(const TempDir& dir, const std::string& index = kIndex) {
  write_shard(dir.file("model-00001-of-00002.safetensors"), {"a.weight", "b.weight"});
  write_shard(dir.file("model-00002-of-00002.safetensors"), {"c.weight", "d.weight"});
  write_all(dir.file("model.safetensors.index.json"), index);
}

TEST(SafetensorsFolder, ReadsASingleFile) {
  TempDir dir;
  write_shard(dir.file("model.safetensors"), {"x", "y"});
  const auto folder = SafetensorsFolder::open(dir.path().string());
  EXPECT_EQ(folder.files().size(), 1u);
  EXPECT_EQ(folder.names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(folder.info("y").shape, std::vector<int64_t>{2});
  float y[2];
  folder.file_of("y").read("y", DType::F32, std::vector<int64_t>{2}, y);
  EXPECT_EQ(y[1], 11.0f);
}

TEST(SafetensorsFolder, ReadsShardsThroughTheIndex) {
  TempDir dir;
  write_sharded(dir);
  const auto folder = SafetensorsFolder::open(dir.path().string());
  EXPECT_EQ(folder.files().size(), 2u);
  EXPECT_EQ(folder.names(), (std::vector<std::string>{"a.weight", "b.weight", "c.weight", "d.weight"}));
  EXPECT_EQ(folder.file_of("d.weight").path(), dir.file("model-00002-of-00002.safetensors"));
  float d[2];
  folder.file_of("d.weight").read("d.weight", DType::F32, std::vector<int64_t>{2}, d);
  EXPECT_EQ(d[0], 10.0f);  // the second tensor of its shard
  EXPECT_TRUE(folder.contains("a.weight"));
  EXPECT_FALSE(folder.contains("e.weight"));
  const std::string err = error_of([&] { folder.file_of("e.weight"); });
  EXPECT_CONTAINS(err, "folder " + dir.path().string() + ": no tensor 'e.weight'");
}

TEST(SafetensorsFolder, AFolderWithoutSafetensorsIsRefusedWithTheReason) {
  TempDir dir;
  const std::string path = dir.path().string();
  EXPECT_CONTAINS(error_of([&] { SafetensorsFolder::open(path); }),
                  "folder " + path + ": no model.safetensors or model.safetensors.index.json found");
  write_all(dir.file("pytorch_model.bin"), "pickle");
  EXPECT_CONTAINS(error_of([&] { SafetensorsFolder::open(path); }), "moelab reads safetensors only");
  EXPECT_CONTAINS(error_of([&] { SafetensorsFolder::open(dir.file("nowhere")); }), "does not exist or is not a folder");
}

TEST(SafetensorsFolder, AMissingShardIsNamed) {
  TempDir dir;
  write_sharded(dir);
  std::filesystem::remove(dir.file("model-00002-of-00002.safetensors"));
  EXPECT_CONTAINS(error_of([&] { SafetensorsFolder::open(dir.path().string()); }),
                  "file " + dir.file("model.safetensors.index.json") +
                      ": the shard model-00002-of-00002.safetensors (holding 'c.weight' and 1 more tensors) is "
                      "missing from the folder");
}

struct Disagreement {
  const char* what;
  std::string index;     // model.safetensors.index.json
  const char* expected;  // a piece of the error
};

// Shards hold a, b (first) and c, d (second); each index below disagrees with them or is malformed.
TEST(SafetensorsFolder, EveryDisagreementIsAnErrorNamingTheFile) {
  const std::string first = "model-00001-of-00002.safetensors", second = "model-00002-of-00002.safetensors";
  const auto map = [](const std::string& entries) { return R"({"weight_map":{)" + entries + "}}"; };
  const std::vector<Disagreement> cases = {
      {"not JSON", "{", "not valid JSON"},
      {"not an object", "[]", "expected a JSON object, found array"},
      {"no weight_map", R"({"metadata":{}})", "missing 'weight_map'"},
      {"weight_map not object", R"({"weight_map":[]})", "'weight_map' must be an object"},
      {"empty weight_map", map(""), "'weight_map' lists no tensor"},
      {"shard not a string", map(R"("a.weight":3)"), "weight_map 'a.weight' must name a shard file, found 3"},
      {"shard outside", map(R"("a.weight":"../model.safetensors")"), "expected a file name inside the folder"},
      {"listed but absent",
       map(R"("a.weight":")" + first + R"(","b.weight":")" + first + R"(","x.weight":")" + first + R"(",)" +
           R"("c.weight":")" + second + R"(","d.weight":")" + second + R"(")"),
       "lists tensor 'x.weight' in model-00001-of-00002.safetensors, which does not hold it"},
      {"held but not listed",
       map(R"("a.weight":")" + first + R"(","c.weight":")" + second + R"(","d.weight":")" + second + R"(")"),
       "does not list"},
      {"listed in another shard",
       map(R"("a.weight":")" + first + R"(","b.weight":")" + second + R"(","c.weight":")" + second +
           R"(","d.weight":")" + second + R"(")"),
       "puts in model-00002-of-00002.safetensors"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    write_sharded(dir, c.index);
    const std::string err = error_of([&] { SafetensorsFolder::open(dir.path().string()); });
    EXPECT_CONTAINS(err, "file " + dir.path().string() + "/") << " case: " << c.what;
    EXPECT_CONTAINS(err, c.expected) << " case: " << c.what;
  }
}

// A corrupt shard is reported as its own file's error.
TEST(SafetensorsFolder, ACorruptShardNamesItself) {
  TempDir dir;
  write_sharded(dir);
  write_all(dir.file("model-00001-of-00002.safetensors"), "abc");
  EXPECT_CONTAINS(error_of([&] { SafetensorsFolder::open(dir.path().string()); }),
                  "file " + dir.file("model-00001-of-00002.safetensors") + ": too short for a safetensors file");
}

}  // namespace
}  // namespace moelab
