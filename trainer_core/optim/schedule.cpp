#include "trainer_core/optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace trainer_core {

LrSchedule lr_schedule_of(const TrainConfig& c) {
  return {c.schedule.kind, c.warmup_steps(),        c.training.max_steps,
          c.decay_steps(), c.schedule.min_lr_ratio, c.schedule.decay_shape};
}

namespace {
double cosine_from_peak(double p, double r) {
  return r + (1.0 - r) * 0.5 * (1.0 + std::cos(M_PI * p));
}

double wsd_decay(DecayShape shape, double p, double r) {
  switch (shape) {
    case DecayShape::kLinear:
      return r + (1.0 - r) * (1.0 - p);
    case DecayShape::kCosine:
      return cosine_from_peak(p, r);
    case DecayShape::kOneMinusSqrt:
      return r + (1.0 - r) * (1.0 - std::sqrt(p));
    case DecayShape::kInverseSqrt:
      return 1.0 / std::sqrt(1.0 + (1.0 / (r * r) - 1.0) * p);
  }
  return 1.0;
}
}  // namespace

double lr_multiplier(const LrSchedule& s, int step) {
  if (step < s.warmup_steps) return double(step + 1) / double(s.warmup_steps);
  switch (s.kind) {
    case ScheduleKind::kConstant:
      return 1.0;
    case ScheduleKind::kWsd: {
      const int decay = std::max(1, s.decay_steps);
      const int stable_end = s.max_steps - decay;
      if (step < stable_end) return 1.0;
      const double p = std::clamp(double(step - stable_end + 1) / decay, 0.0, 1.0);
      return wsd_decay(s.decay_shape, p, s.min_lr_ratio);
    }
    case ScheduleKind::kCosine:
      break;
  }
  const int decay_steps = std::max(1, s.max_steps - s.warmup_steps);
  const double progress = std::clamp(double(step - s.warmup_steps) / decay_steps, 0.0, 1.0);
  return cosine_from_peak(progress, s.min_lr_ratio);
}

}  // namespace trainer_core
