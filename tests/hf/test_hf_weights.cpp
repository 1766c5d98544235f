// A tiny Mixtral folder read into a moelab Model: per-expert tensors in BF16 across two shards, and the same weights
// with the experts fused as transformers v5 may write them, in F32, give the same parameters and the same logits;
// a missing, misshapen or left-over tensor is an error naming it.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "hf/hf_config.h"
#include "hf/hf_weights.h"
#include "hf/tiny_mixtral.h"
#include "io/safetensors.h"
#include "io/safetensors_folder.h"
#include "model/model.h"
#include "support/errors.h"
#include "support/gradcheck.h"
#include "support/temp_dir.h"

namespace moelab::hf {
namespace {

using testing::error_of;
using testing::TempDir;
using testing::write_all;
using namespace tiny_mixtral;

// The model read from `dir`, and its logits on a fixed sequence.
std::vector<float> logits_of(const std::string& dir, std::vector<float>* params = nullptr) {
  const HfConfig hf = read_hf_config(dir + "/config.json");
  Model model(hf.config);
  load_hf_weights(SafetensorsFolder::open(dir), hf.model_type, model);
  if (params) *params = model.params();
  const std::vector<int32_t> tokens = {3, 17, 5, 39, 0, 22, 8, 11};
  model.forward(tokens.data(), nullptr, 1, static_cast<int64_t>(tokens.size()));
  return std::vector<float>(model.logits(), model.logits() + tokens.size() * 40);
}

TEST(HfWeights, PerExpertShardsAndFusedExpertsGiveTheSameModel) {
  TempDir per_expert, fused;
  write_all(per_expert.file("config.json"), kConfig);
  const Model shape_of(read_hf_config(per_expert.file("config.json")).config);
  const auto w = random_weights(shape_of);
  write_per_expert(per_expert, shape_of, w);
  write_fused(fused, shape_of, w);
  std::vector<float> params_a, params_b;
  const std::vector<float> a = logits_of(per_expert.path().string(), &params_a);
  const std::vector<float> b = logits_of(fused.path().string(), &params_b);
  for (const ParamSpec& spec : shape_of.table().specs())
    ASSERT_TRUE(std::equal(w.at(spec.name).begin(), w.at(spec.name).end(), params_a.begin() + spec.offset))
        << spec.name;
  EXPECT_EQ(params_a, params_b);
  EXPECT_EQ(a, b);
}

TEST(HfWeights, AMissingMisshapenOrLeftOverTensorIsNamed) {
  TempDir dir;
  write_all(dir.file("config.json"), kConfig);
  Model model(read_hf_config(dir.file("config.json")).config);
  auto w = random_weights(model);
  const auto attempt = [&](std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> tensors) {
    std::vector<TensorView> views;
    for (const auto& [name, t] : tensors) views.push_back({name, DType::F32, t.first, t.second.data()});
    write_safetensors(dir.file("model.safetensors"), views);
    return error_of([&] { load_hf_weights(SafetensorsFolder::open(dir.path().string()), "mixtral", model); });
  };
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> all;
  for (const ParamSpec& spec : model.table().specs()) all[spec.name] = {spec.shape, w.at(spec.name)};

  auto missing = all;
  missing.erase("model.layers.1.self_attn.k_proj.weight");
  EXPECT_CONTAINS(attempt(missing), "folder " + dir.path().string() +
                                        ": no tensor 'model.layers.1.self_attn.k_proj.weight' (shape [8, 16])");
  auto no_expert = all;
  no_expert.erase("model.layers.0.block_sparse_moe.experts.2.w3.weight");
  EXPECT_CONTAINS(attempt(no_expert),
                  "no tensor 'model.layers.0.block_sparse_moe.experts.2.w3.weight' (shape "
                  "[24, 16]), nor the fused 'model.layers.0.mlp.experts.gate_up_proj'");
  auto misshapen = all;
  misshapen["model.norm.weight"] = {{4, 4}, w.at("model.norm.weight")};
  EXPECT_CONTAINS(attempt(misshapen),
                  "tensor 'model.norm.weight': expected shape [16] for moelab's "
                  "model.norm.weight, found [4, 4]");
  auto extra = all;
  extra["model.layers.0.self_attn.q_norm.weight"] = {{16}, w.at("model.norm.weight")};
  EXPECT_CONTAINS(attempt(extra), "tensor 'model.layers.0.self_attn.q_norm.weight' is not one of the model's");
  auto integers = all;
  std::vector<TensorView> views;
  for (const auto& [name, t] : integers)
    views.push_back({name, name == "lm_head.weight" ? DType::I32 : DType::F32, t.first, t.second.data()});
  write_safetensors(dir.file("model.safetensors"), views);
  EXPECT_CONTAINS(error_of([&] { load_hf_weights(SafetensorsFolder::open(dir.path().string()), "mixtral", model); }),
                  "tensor 'lm_head.weight': dtype I32 cannot be read as floating-point weights");
}

// transformers v5's fused experts with the up and gate halves' axis wrong ([E, H, 2I] instead of [E, 2I, H]).
TEST(HfWeights, AFusedTensorOfTheWrongShapeIsNamed) {
  TempDir fused, dir;
  write_all(fused.file("config.json"), kConfig);
  const Model model(read_hf_config(fused.file("config.json")).config);
  write_fused(fused, model, random_weights(model));
  const SafetensorsFile file = SafetensorsFile::open(fused.file("model.safetensors"));
  std::vector<std::vector<std::byte>> bytes;
  std::vector<TensorView> views;
  for (const auto& name : file.names()) {
    const auto span = file.bytes(name);
    bytes.emplace_back(span.begin(), span.end());
    std::vector<int64_t> shape = file.info(name).shape;
    if (name == "model.layers.1.mlp.experts.gate_up_proj") shape = {E, H, 2 * I};
    views.push_back({name, file.info(name).dtype, shape, bytes.back().data()});
  }
  write_safetensors(dir.file("model.safetensors"), views);
  Model target(model.config());
  EXPECT_CONTAINS(error_of([&] { load_hf_weights(SafetensorsFolder::open(dir.path().string()), "mixtral", target); }),
                  "tensor 'model.layers.1.mlp.experts.gate_up_proj': expected shape [4, 48, 16] for moelab's "
                  "model.layers.1.block_sparse_moe.experts.0.w1.weight, found [4, 16, 48]");
}

}  // namespace
}  // namespace moelab::hf
