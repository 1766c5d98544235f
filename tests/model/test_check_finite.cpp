// Weights with NaN or infinity are refused, naming the checkpoint and the first tensor that holds one.
#include <gtest/gtest.h>

#include <limits>

#include "model/check_finite.h"
#include "support/errors.h"
#include "support/small_model.h"

namespace moelab {
namespace {

TEST(CheckFinite, NamesTheFirstTensorHoldingANonFiniteValue) {
  Model model(testing::small_model_config("f32", 8, 2));
  model.init_params(1);
  EXPECT_NO_THROW(check_finite(model, "ckpt"));
  const ParamSpec& spec = model.table().find("model.layers.1.block_sparse_moe.experts.2.w3.weight");
  model.mutable_params()[spec.offset + 7] = std::numeric_limits<float>::infinity();
  EXPECT_CONTAINS(testing::error_of([&] { check_finite(model, "runs/x/checkpoints/step-00000010"); }),
                  "checkpoint runs/x/checkpoints/step-00000010: tensor "
                  "'model.layers.1.block_sparse_moe.experts.2.w3.weight' holds inf at element 7");
  model.mutable_params()[model.table().find("model.embed_tokens.weight").offset] =
      std::numeric_limits<float>::quiet_NaN();
  EXPECT_CONTAINS(testing::error_of([&] { check_finite(model, "c"); }), "'model.embed_tokens.weight' holds nan");
}

}  // namespace
}  // namespace moelab
