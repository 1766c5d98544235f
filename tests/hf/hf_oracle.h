// Runs tests/oracle/hf_reference.py (the float64 PyTorch reference of Hugging Face MoE models) on a model folder and
// a token sequence, and reads back what it wrote: logits [T, V] and, per MoE layer i, experts.i [T, k].
// Needs Debian's python3-torch, which the test command installs: without it a test using this fails, it is not
// skipped.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "support/temp_dir.h"

namespace moelab::hf {

inline std::vector<double> read_f64(const SafetensorsFile& f, const std::string& name) {
  const TensorInfo& info = f.info(name);
  std::vector<double> out(info.nbytes / sizeof(double));
  f.read(name, DType::F64, info.shape, out.data());
  return out;
}

// The reference's output for `tokens` through the model in `model_dir`, written into `out`.
inline SafetensorsFile run_hf_oracle(const std::string& model_dir, const std::vector<int32_t>& tokens,
                                     const testing::TempDir& out) {
  std::string list;
  for (int32_t t : tokens) {
    if (!list.empty()) list += ',';
    list += std::to_string(t);
  }
  const std::string cmd = "/usr/bin/python3 " + std::string(MOELAB_TEST_DIR) + "/oracle/hf_reference.py --model " +
                          model_dir + " --tokens " + list + " --out " + out.file("oracle.safetensors") + " 2> " +
                          out.file("oracle.log");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << "the PyTorch reference failed (is python3-torch installed?): "
                                         << testing::read_all(out.file("oracle.log"));
  return SafetensorsFile::open(out.file("oracle.safetensors"));
}

}  // namespace moelab::hf
