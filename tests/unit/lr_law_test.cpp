// How the best lr scales (server/results/lr_law.h): exponents recovered from rows on a power law,
// intervals from the residuals, and none where the data cannot give one.
#include "server/results/lr_law.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace server;

namespace {

// lr* = 0.01 · (width / 64)^−1 · (B / 1024)^0.5, at every width and batch size of the grid.
std::vector<LrLawPoint> on_the_law(const std::vector<double>& widths,
                                   const std::vector<double>& batches, double wobble = 0) {
  std::vector<LrLawPoint> out;
  int i = 0;
  for (double w : widths)
    for (double b : batches)
      out.push_back(
          {w, b, 0.01 * (64 / w) * std::sqrt(b / 1024) * std::exp(wobble * std::sin(2.1 * i++))});
  return out;
}

TEST(LrLaw, RecoversTheExponentsOfWidthAndBatch) {
  const std::optional<LrLawFit> both = fit_lr_law(on_the_law({64, 128, 256}, {1024, 2048, 4096}));
  ASSERT_TRUE(both);
  EXPECT_TRUE(both->fits_width && both->fits_batch);
  EXPECT_NEAR(both->width_exponent, -1.0, 1e-12);
  EXPECT_NEAR(both->batch_exponent, 0.5, 1e-12);
  EXPECT_EQ(both->degrees_of_freedom, 6);
  EXPECT_FALSE(both->has_interval) << "no residual: no spread, no interval (not a point interval)";

  const std::optional<LrLawFit> noisy =
      fit_lr_law(on_the_law({64, 128, 256}, {1024, 2048, 4096}, 0.1));
  ASSERT_TRUE(noisy && noisy->has_interval);
  EXPECT_LT(noisy->width_interval.low, -1.0);
  EXPECT_GT(noisy->width_interval.high, -1.0);
  EXPECT_LT(noisy->batch_interval.low, 0.5);
  EXPECT_GT(noisy->batch_interval.high, 0.5);

  const std::optional<LrLawFit> widths = fit_lr_law(on_the_law({64, 256}, {1024}));
  ASSERT_TRUE(widths);
  EXPECT_FALSE(widths->fits_batch);
  EXPECT_NEAR(widths->width_exponent, -1.0, 1e-12);
  EXPECT_FALSE(widths->has_interval) << "two points, two parameters: exact, no interval";

  EXPECT_FALSE(fit_lr_law(on_the_law({64}, {1024}))) << "nothing varies";
  EXPECT_FALSE(fit_lr_law({{64, 1024, 0.01}, {128, 2048, 0.005}, {256, 4096, 0.0025}}))
      << "width and batch always double together: their exponents cannot be told apart";
}

}  // namespace
