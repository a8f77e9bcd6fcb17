// Learning-rate schedule: linear warm-up from 0, then cosine decay to lr * min_lr_ratio at
// max_steps (docs/science.md, training recipe). Steps are 0-based.
#pragma once

namespace trainer_core {

double scheduled_lr(double base_lr, int step, int warmup_steps, int max_steps, double min_lr_ratio);

}  // namespace trainer_core
