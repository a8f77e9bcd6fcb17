#include <gtest/gtest.h>

#include <cmath>

#include "trainer_core/backend/cpu/cpu_backend.h"
#include "trainer_core/optim/clip.h"
#include "trainer_core/optim/schedule.h"

using trainer_core::DecayShape;
using trainer_core::LrSchedule;
using trainer_core::scheduled_lr;
using trainer_core::ScheduleKind;

namespace {
LrSchedule cosine(int warmup, int max_steps, double min_lr_ratio) {
  return {ScheduleKind::kCosine, warmup, max_steps, 0, min_lr_ratio, DecayShape::kLinear};
}
LrSchedule wsd(int warmup, int max_steps, int decay, double min_lr_ratio, DecayShape shape) {
  return {ScheduleKind::kWsd, warmup, max_steps, decay, min_lr_ratio, shape};
}
}  // namespace

TEST(Schedule, LinearWarmupThenCosineToTheFloor) {
  const double lr = 1.0;
  const LrSchedule s = cosine(10, 110, 0.1);
  EXPECT_DOUBLE_EQ(scheduled_lr(lr, 0, s), 0.1);      // first warm-up step: lr/10
  EXPECT_DOUBLE_EQ(scheduled_lr(lr, 9, s), 1.0);      // end of warm-up: peak
  EXPECT_DOUBLE_EQ(scheduled_lr(lr, 10, s), 1.0);     // cosine starts at the peak
  EXPECT_NEAR(scheduled_lr(lr, 60, s), 0.55, 1e-12);  // halfway: mid of [0.1, 1]
  EXPECT_NEAR(scheduled_lr(lr, 110, s), 0.1, 1e-12);
  double prev = 2.0;
  for (int step = 10; step <= 110; ++step) {
    const double v = scheduled_lr(lr, step, s);
    EXPECT_LE(v, prev);
    prev = v;
  }
}

TEST(Schedule, NoWarmup) { EXPECT_DOUBLE_EQ(scheduled_lr(2.0, 0, cosine(0, 100, 0.0)), 2.0); }

// Warmup-stable-decay: warm-up to the peak, the peak until the decay's first step, and the run's
// last step at exactly lr * min_lr_ratio, for every decay shape.
TEST(Schedule, WsdHoldsThePeakThenDecaysToTheFloorAtTheLastStep) {
  for (DecayShape shape : {DecayShape::kLinear, DecayShape::kCosine, DecayShape::kOneMinusSqrt,
                           DecayShape::kInverseSqrt}) {
    SCOPED_TRACE(trainer_core::name_of(shape));
    const LrSchedule s = wsd(10, 100, 20, 0.1, shape);  // stable 10..79, decay 80..99
    EXPECT_DOUBLE_EQ(scheduled_lr(2.0, 0, s), 0.2);
    EXPECT_DOUBLE_EQ(scheduled_lr(2.0, 9, s), 2.0);      // end of warm-up
    EXPECT_DOUBLE_EQ(scheduled_lr(2.0, 10, s), 2.0);     // stable
    EXPECT_DOUBLE_EQ(scheduled_lr(2.0, 79, s), 2.0);     // the stable phase's last step
    EXPECT_LT(scheduled_lr(2.0, 80, s), 2.0);            // the decay's first step
    EXPECT_NEAR(scheduled_lr(2.0, 99, s), 0.2, 1e-12);   // the last step: the floor
    EXPECT_NEAR(scheduled_lr(2.0, 150, s), 0.2, 1e-12);  // past the end: stays there
    double prev = 2.0;
    for (int step = 80; step < 100; ++step) {
      EXPECT_LT(scheduled_lr(2.0, step, s), prev) << step;
      prev = scheduled_lr(2.0, step, s);
    }
  }
  // Halfway through the decay (p = 10/20), each shape's value.
  const auto half = [](DecayShape shape) {
    return scheduled_lr(1.0, 89, wsd(0, 100, 20, 0.1, shape));
  };
  EXPECT_NEAR(half(DecayShape::kLinear), 0.55, 1e-12);
  EXPECT_NEAR(half(DecayShape::kCosine), 0.55, 1e-12);
  EXPECT_NEAR(half(DecayShape::kOneMinusSqrt), 0.1 + 0.9 * (1 - std::sqrt(0.5)), 1e-12);
  EXPECT_NEAR(half(DecayShape::kInverseSqrt), 1 / std::sqrt(1 + 99 * 0.5), 1e-12);
  // A floor of 0 decays to 0 (linear), and a one-step decay drops straight to the floor.
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 99, wsd(0, 100, 20, 0.0, DecayShape::kLinear)), 0.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 98, wsd(0, 100, 1, 0.1, DecayShape::kLinear)), 1.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 99, wsd(0, 100, 1, 0.1, DecayShape::kLinear)), 0.1);
}

TEST(Schedule, ConstantHoldsThePeakAfterWarmup) {
  const LrSchedule s{ScheduleKind::kConstant, 4, 50, 0, 0.1, DecayShape::kLinear};
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 0, s), 0.25);
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 3, s), 1.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(1.0, 49, s), 1.0);
}

TEST(Clipping, ScalesToTheMaxNormOnlyWhenAbove) {
  auto backend = trainer_core::make_cpu_backend(1);
  std::vector<float> g = {3.0f, 4.0f};  // norm 5
  EXPECT_DOUBLE_EQ(trainer_core::clip_by_global_norm(*backend, g.data(), 2, 1.0), 5.0);
  EXPECT_NEAR(std::hypot(g[0], g[1]), 1.0, 1e-6);
  EXPECT_NEAR(g[0] / g[1], 0.75, 1e-6);  // direction kept
  std::vector<float> small = {0.3f, 0.4f};
  trainer_core::clip_by_global_norm(*backend, small.data(), 2, 1.0);
  EXPECT_EQ(small[0], 0.3f);
  std::vector<float> off = {30.0f, 40.0f};
  trainer_core::clip_by_global_norm(*backend, off.data(), 2, 0.0);
  EXPECT_EQ(off[0], 30.0f);
}
