// Scaling fits (server/results/scaling_fit.h): the fit recovers a known law, its bootstrap
// intervals cover the truth as often as measured here (docs/statistics.md quotes these figures),
// and the compute multiplier is the tokens ratio the laws imply.
#include "server/results/scaling_fit.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "trainer_core/util/rng.h"

using namespace server;

namespace {

const PowerLaw kAdamW{2.0, 60.0, 0.35}, kMuon{2.0, 40.0, 0.35};
const std::vector<double> kBudgets = {16384, 32768, 65536, 131072, 262144};

// `seeds` ladders of `law` at kBudgets, each point with Gaussian noise of `sd` nats (a seed's
// final val loss), drawn from `rng`.
std::vector<SeedLadder> noisy_ladders(const PowerLaw& law, int seeds, double sd,
                                      trainer_core::NormalRng& rng) {
  std::vector<SeedLadder> out;
  for (int s = 1; s <= seeds; ++s) {
    SeedLadder l{s, {}};
    for (double d : kBudgets) l.points.push_back({d, law.loss_at(d) + sd * rng.next()});
    out.push_back(l);
  }
  return out;
}

TEST(ScalingFit, RecoversAKnownLawFromExactPoints) {
  std::vector<LossPoint> points;
  for (double d : kBudgets) points.push_back({d, kAdamW.loss_at(d)});
  const std::optional<PowerLaw> fit = fit_power_law(points);
  ASSERT_TRUE(fit);
  EXPECT_NEAR(fit->E, kAdamW.E, 1e-6);
  EXPECT_NEAR(fit->alpha, kAdamW.alpha, 1e-6);
  EXPECT_NEAR(fit->A / kAdamW.A, 1.0, 1e-5);
  EXPECT_NEAR(kAdamW.tokens_to(kAdamW.loss_at(50000)), 50000, 1e-6);
  EXPECT_TRUE(std::isinf(kAdamW.tokens_to(1.9))) << "below E: never";
  EXPECT_FALSE(alpha_at_bound(*fit));
  // A fall far steeper than any exponent searched: the fit stops at the bound, and says so.
  std::vector<LossPoint> steep;
  for (double d : kBudgets) steep.push_back({d, 2.0 + std::pow(d / 16384, -8.0)});
  const std::optional<PowerLaw> bounded = fit_power_law(steep);
  ASSERT_TRUE(bounded);
  EXPECT_TRUE(alpha_at_bound(*bounded)) << bounded->alpha;

  EXPECT_FALSE(fit_power_law({{16384, 3}, {32768, 2.9}, {65536, 2.8}})) << "three points";
  EXPECT_FALSE(fit_power_law({{16384, 3}, {16384, 3.1}, {32768, 2.9}, {32768, 2.8}}))
      << "two budgets";
  EXPECT_FALSE(fit_power_law({{16384, 2.8}, {32768, 2.9}, {65536, 3.0}, {131072, 3.1}}))
      << "a loss rising with the budget is no power law";
}

// The percentile bootstrap over seeds covers less than its nominal 95% with few seeds (a draw of
// 3 seeds has 10 distinct outcomes); measured, not assumed.
TEST(ScalingFit, TheBootstrapIntervalsCoverTheTrueExponentAsMeasured) {
  trainer_core::NormalRng rng(2026);
  for (int seeds : {3, 8}) {
    constexpr int kTrials = 150;
    int covered = 0, fitted = 0;
    for (int trial = 0; trial < kTrials; ++trial) {
      const std::optional<FittedRow> row =
          fit_row(noisy_ladders(kAdamW, seeds, 0.01, rng), 200, uint64_t(trial) + 1);
      if (!row) continue;
      ++fitted;
      covered += row->alpha.low <= kAdamW.alpha && kAdamW.alpha <= row->alpha.high;
    }
    const double coverage = double(covered) / fitted;
    std::printf("bootstrap 95%% interval of alpha, %d seeds: coverage %.3f (%d of %d trials)\n",
                seeds, coverage, fitted, kTrials);
    EXPECT_EQ(fitted, kTrials);
    EXPECT_GE(coverage, seeds == 3 ? 0.6 : 0.85) << seeds;
  }
}

TEST(ScalingFit, TheComputeMultiplierIsTheTokensRatioTheLawsImply) {
  // AdamW needs (60/40)^(1/0.35) = 3.18 times Muon's tokens to reach Muon's loss, at every D.
  const double expected = std::pow(1.5, 1 / 0.35);
  EXPECT_NEAR(compute_multiplier(kAdamW, kMuon, 65536), expected, 1e-9);
  trainer_core::NormalRng rng(7);
  const auto adamw = noisy_ladders(kAdamW, 8, 0.005, rng),
             muon = noisy_ladders(kMuon, 8, 0.005, rng);
  const std::vector<MultiplierAt> m = multipliers(adamw, muon, kBudgets, 300, 11);
  ASSERT_EQ(m.size(), kBudgets.size());
  for (const MultiplierAt& at : m) {
    EXPECT_NEAR(at.value / expected, 1.0, 0.15) << at.tokens;
    EXPECT_LT(at.interval.low, at.value);
    EXPECT_GT(at.interval.high, at.value);
    // AdamW's tokens for Muon's loss at D are 3.18 D: past the measured 262144 from 131072 on.
    EXPECT_EQ(at.extrapolated, at.tokens * at.value > 262144) << at.tokens;
  }
  // A faster side whose loss floor lies below the slower's: at large budgets the slower never
  // gets there.
  const PowerLaw lower_floor{1.9, 40.0, 0.35};
  EXPECT_TRUE(std::isinf(compute_multiplier(kAdamW, lower_floor, 1e9)));
}

}  // namespace
