#include "model/check_finite.h"

#include <cmath>

#include "core/error.h"

namespace moelab {

void check_finite(const Model& model, const std::string& checkpoint) {
  const std::vector<float>& params = model.params();
  for (const ParamSpec& spec : model.table().specs()) {
    const float* w = params.data() + spec.offset;
    for (int64_t i = 0; i < spec.numel; ++i)
      if (!std::isfinite(w[i]))
        throw_error("checkpoint ", checkpoint, ": tensor '", spec.name, "' holds ", w[i], " at element ", i,
                    ": expected finite weights (was the run diverging when it was saved?)");
  }
}

}  // namespace moelab
