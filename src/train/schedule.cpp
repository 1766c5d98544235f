#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace moelab {

double learning_rate(const TrainConfig& train, int64_t step) {
  if (step < train.warmup_steps) return train.lr * static_cast<double>(step + 1) / train.warmup_steps;
  const double decay_steps = std::max<int64_t>(1, train.steps - train.warmup_steps);
  const double progress = std::min(1.0, (step - train.warmup_steps) / decay_steps);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return train.lr * (train.min_lr_ratio + (1.0 - train.min_lr_ratio) * cosine);
}

}  // namespace moelab
