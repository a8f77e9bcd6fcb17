#include "trainer_core/optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace trainer_core {

double scheduled_lr(double base_lr, int step, int warmup_steps, int max_steps,
                    double min_lr_ratio) {
  if (step < warmup_steps) return base_lr * double(step + 1) / double(warmup_steps);
  const int decay_steps = std::max(1, max_steps - warmup_steps);
  const double progress = std::clamp(double(step - warmup_steps) / decay_steps, 0.0, 1.0);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * cosine);
}

}  // namespace trainer_core
