#include <gtest/gtest.h>

#include <cmath>

#include "trainer_core/backend/cpu/cpu_backend.h"
#include "trainer_core/optim/clip.h"
#include "trainer_core/optim/schedule.h"

using trainer_core::scheduled_lr;

TEST(Schedule, LinearWarmupThenCosineToTheFloor) {
  const double lr = 1.0;
  EXPECT_DOUBLE_EQ(scheduled_lr(lr, 0, 10, 110, 0.1), 0.1);      // first warm-up step: lr/10
  EXPECT_DOUBLE_EQ(scheduled_lr(lr, 9, 10, 110, 0.1), 1.0);      // end of warm-up: peak
  EXPECT_DOUBLE_EQ(scheduled_lr(lr, 10, 10, 110, 0.1), 1.0);     // cosine starts at the peak
  EXPECT_NEAR(scheduled_lr(lr, 60, 10, 110, 0.1), 0.55, 1e-12);  // halfway: mid of [0.1, 1]
  EXPECT_NEAR(scheduled_lr(lr, 110, 10, 110, 0.1), 0.1, 1e-12);
  double prev = 2.0;
  for (int s = 10; s <= 110; ++s) {
    const double v = scheduled_lr(lr, s, 10, 110, 0.1);
    EXPECT_LE(v, prev);
    prev = v;
  }
}

TEST(Schedule, NoWarmup) { EXPECT_DOUBLE_EQ(scheduled_lr(2.0, 0, 0, 100, 0.0), 2.0); }

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
