// Learning-rate schedules (schedule.kind; docs/science.md, "Training recipe"). Steps are 0-based;
// T = max_steps, W = warm-up steps, r = min_lr_ratio. The lr at a step is lr * multiplier:
//   warm-up (step < W):  (step + 1) / W
//   cosine:    p = (step - W) / (T - W);         r + (1 - r) * (1 + cos(pi * p)) / 2
//   constant:  1
//   wsd:       the peak until S = T - D (D = decay steps), then p = (step - S + 1) / D, so the
//              run's last step trains at exactly lr * r, and by decay_shape:
//                linear          r + (1 - r) * (1 - p)
//                cosine          r + (1 - r) * (1 + cos(pi * p)) / 2
//                one_minus_sqrt  r + (1 - r) * (1 - sqrt(p))   (the "1-sqrt" cooldown of Hägele
//                                et al. 2024, "Scaling Laws and Compute-Optimal Training Beyond
//                                Fixed Training Durations")
//                inverse_sqrt    1 / sqrt(1 + (1/r^2 - 1) * p)  (an inverse square root in p
//                                from 1 down to r; needs r > 0)
// The cosine schedule's first decay step is at the peak and its last is a step short of r: kept
// as it was, so that runs from before WSD replay bit-identically.
#pragma once

#include "trainer_core/config/train_config.h"

namespace trainer_core {

struct LrSchedule {
  ScheduleKind kind = ScheduleKind::kCosine;
  int warmup_steps = 0;
  int max_steps = 1;
  int decay_steps = 0;  // wsd only
  double min_lr_ratio = 0.1;
  DecayShape decay_shape = DecayShape::kLinear;
};

LrSchedule lr_schedule_of(const TrainConfig& config);
double lr_multiplier(const LrSchedule& schedule, int step);
inline double scheduled_lr(double base_lr, int step, const LrSchedule& schedule) {
  return base_lr * lr_multiplier(schedule, step);
}

}  // namespace trainer_core
