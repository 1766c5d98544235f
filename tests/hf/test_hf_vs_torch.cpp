// An imported Mixtral against an independent reference: tests/oracle/hf_mixtral.py, PyTorch in float64 written
// from transformers' modeling_mixtral.py, reads the same folder itself. Logits within 1e-4 relative and the same
// experts for every token in every layer, for per-expert BF16 shards and for the fused F32 layout.
// Needs Debian's python3-torch, which the test command installs: without it this test fails, it is not skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "hf/hf_config.h"
#include "hf/hf_weights.h"
#include "hf/tiny_mixtral.h"
#include "io/safetensors.h"
#include "io/safetensors_folder.h"
#include "model/model.h"
#include "support/gradcheck.h"
#include "support/temp_dir.h"

namespace moelab::hf {
namespace {

using namespace tiny_mixtral;

const std::vector<int32_t> kTokens = {3, 17, 5, 39, 0, 22, 8, 11, 17, 17, 30, 2};

std::vector<double> read_f64(const SafetensorsFile& f, const std::string& name) {
  const TensorInfo& info = f.info(name);
  std::vector<double> out(info.nbytes / sizeof(double));
  f.read(name, DType::F64, info.shape, out.data());
  return out;
}

void expect_matches_oracle(const testing::TempDir& dir) {
  const std::string model_dir = dir.path().string();
  const HfConfig hf = read_hf_config(model_dir + "/config.json");
  Model model(hf.config);
  load_hf_weights(SafetensorsFolder::open(model_dir), hf.model_type, model);
  const int64_t T = static_cast<int64_t>(kTokens.size()), V = hf.config.model.vocab_size;
  model.forward(kTokens.data(), nullptr, 1, T);
  const std::vector<float> logits(model.logits(), model.logits() + T * V);

  testing::TempDir out;
  std::string tokens;
  for (int32_t t : kTokens) tokens += (tokens.empty() ? "" : ",") + std::to_string(t);
  const std::string cmd = "/usr/bin/python3 " + std::string(MOELAB_TEST_DIR) + "/oracle/hf_mixtral.py --model " +
                          model_dir + " --tokens " + tokens + " --out " + out.file("oracle.safetensors") + " 2> " +
                          out.file("oracle.log");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "the PyTorch reference failed (is python3-torch installed?): "
                                         << testing::read_all(out.file("oracle.log"));
  const SafetensorsFile oracle = SafetensorsFile::open(out.file("oracle.safetensors"));
  EXPECT_LT(testing::max_rel_error(logits, read_f64(oracle, "logits")), 1e-4);

  const int64_t k = hf.config.routing.top_k;
  for (const Model::LayerRouting& layer : model.layer_routing()) {
    const TensorInfo& info = oracle.info("experts." + std::to_string(layer.layer));
    std::vector<int64_t> chosen(info.nbytes / sizeof(int64_t));
    oracle.read("experts." + std::to_string(layer.layer), DType::I64, info.shape, chosen.data());
    const auto& plan = *layer.token_plan;
    for (int64_t t = 0; t < T; ++t) {
      const std::set<int64_t> want(chosen.begin() + t * k, chosen.begin() + (t + 1) * k);
      std::set<int64_t> got;
      for (int32_t s = plan.token_offsets[t]; s < plan.token_offsets[t + 1]; ++s) got.insert(plan.slot_expert[s]);
      EXPECT_EQ(got, want) << "layer " << layer.layer << " token " << t;
    }
  }
}

// A tiny Mixtral folder in the layout `write` stores (one of tiny_mixtral's), against the reference.
template <typename Write>
void check_layout(Write write) {
  testing::TempDir dir;
  testing::write_all(dir.file("config.json"), kConfig);
  const Model shape_of(read_hf_config(dir.file("config.json")).config);
  write(dir, shape_of, random_weights(shape_of));
  expect_matches_oracle(dir);
}

TEST(HfMixtralVsTorch, PerExpertBf16Shards) { check_layout(write_per_expert); }

TEST(HfMixtralVsTorch, FusedF32Experts) { check_layout(write_fused); }

}  // namespace
}  // namespace moelab::hf
