// Refusing weights that hold NaN or infinity: a model loaded from a diverged or damaged checkpoint would otherwise
// evaluate, generate and analyse to `nan` as if nothing were wrong.
#pragma once

#include <string>

#include "model/model.h"

namespace moelab {

// Throws moelab::Error naming the checkpoint, the first tensor (in ParamTable order) holding a non-finite value,
// the element and the value.
void check_finite(const Model& model, const std::string& checkpoint);

}  // namespace moelab
