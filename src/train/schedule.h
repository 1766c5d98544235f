// Learning-rate schedule: linear warmup to the peak over warmup_steps, then cosine decay to lr * min_lr_ratio at
// the last step. Step numbers are 0-based; the same formula as the PyTorch peer's --lr-schedule cosine.
#pragma once

#include <cstdint>

#include "moelab/config.h"

namespace moelab {

double learning_rate(const TrainConfig& train, int64_t step);

}  // namespace moelab
