// Per-expert gradient norms: the L2 norm of each routed expert's gradient (w1, w3 and w2 together) in every MoE
// layer. The trainer logs them at evaluation steps so that a report can show experts that stopped learning (a
// dead expert gets no tokens, hence a zero gradient) or that dominate the updates.
#pragma once

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace moelab {

// [{"layer": i, "norms": [E values]}, ...] in depth order, from model.grads() as they are now (call it after
// backward and before clipping to see the raw gradient of the step).
nlohmann::json expert_grad_norms(const Model& model);

}  // namespace moelab
