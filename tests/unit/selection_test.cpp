// The lr choice for R_L(B) and its interval (server/results/selection.h): each rule picks what
// docs/statistics.md says, and the coverage of the intervals with the choice in the loop, which
// docs/statistics.md reports, is measured here by simulation.
#include "server/results/selection.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

namespace server {
namespace {

using sweep_file::SelectionRule;

SeedRun finished(double tokens, double final_loss, double budget = 1e9) {
  SeedRun r;
  r.present = r.finished = true;
  r.final_loss = final_loss;
  r.amount.reached = tokens > 0;
  r.amount.value = tokens > 0 ? tokens : 0;
  r.amount.budget = budget;
  return r;
}

// Three lrs, two seeds: the middle lr has the lowest final loss, the largest reaches the target
// soonest, the smallest diverged once.
RowTable three_lrs() {
  RowTable t;
  t.lrs = {1e-3, 2e-3, 4e-3};
  SeedRun diverged = finished(900, 0);
  diverged.bad = true;
  t.cells = {{finished(1000, 3.10), diverged},
             {finished(1200, 3.00), finished(1100, 3.01)},
             {finished(800, 3.05), finished(900, 3.04)}};
  return t;
}

TEST(Selection, EachRuleChoosesWhatTheDocsSay) {
  const RowTable t = three_lrs();
  EXPECT_EQ(select_cell(t, SelectionRule::kFinalLoss, {0, 1}), 1u);
  EXPECT_EQ(select_cell(t, SelectionRule::kTokensToTarget, {0, 1}), 2u);
  // On seed 0 alone the smallest lr reaches the target in 1000 tokens, but the largest in 800.
  EXPECT_EQ(select_cell(t, SelectionRule::kTokensToTarget, {0}), 2u);
  // A diverged seed ranks its lr after every clean one, even when it reached the target first.
  RowTable fast_but_unstable = t;
  fast_but_unstable.cells[0][0] = finished(100, 3.2);
  EXPECT_EQ(select_cell(fast_but_unstable, SelectionRule::kTokensToTarget, {0, 1}), 2u);
  // A run that never reached the target ranks its lr after every lr whose runs all reached it.
  RowTable missed = t;
  missed.cells[2][1] = finished(0, 3.2);
  EXPECT_EQ(select_cell(missed, SelectionRule::kTokensToTarget, {0, 1}), 1u);
  // Ties go to the smaller lr.
  RowTable tie = t;
  tie.cells[1] = tie.cells[2];
  EXPECT_EQ(select_cell(tie, SelectionRule::kTokensToTarget, {0, 1}), 1u);
  // No finished run on those seeds: no choice.
  RowTable empty = t;
  for (auto& cell : empty.cells) cell[1] = SeedRun{};
  EXPECT_EQ(select_cell(empty, SelectionRule::kTokensToTarget, {1}), kNoCell);
}

TEST(Selection, PooledRatioIsTheGeometricMeanOverSeedsBothFinished) {
  RowTable a, b;
  a.lrs = b.lrs = {1e-3};
  a.cells = {{finished(400, 3), finished(900, 3), SeedRun{}}};
  b.cells = {{finished(100, 3), finished(100, 3), finished(50, 3)}};
  EXPECT_NEAR(*pooled_ratio(a, 0, b, 0, {0, 1, 2}), 6.0, 1e-12);  // sqrt(4 * 9)
  EXPECT_NEAR(*pooled_ratio(a, 0, b, 0, {0, 0, 1}), std::cbrt(4.0 * 4 * 9), 1e-12);
  EXPECT_FALSE(pooled_ratio(a, 0, b, 0, {2}).has_value());
}

// The coverage of 95% intervals for R at each optimizer's best lr of the grid, with the choice in
// the loop. Each trial: two optimizers, a grid of 5 lrs a factor 2 apart; tokens to target are
// T0 · exp(κ (g − g*)²) at grid position g with the optimum g* anywhere inside the grid, times
// per-seed noise (a seed's data order shared by every lr and both optimizers, σ = 0.03, plus
// each run's own, σ = 0.05 or 0.15); the final val loss has its optimum elsewhere (g* + N(0, 0.7)),
// as the two quantities do in practice. The true R is min_g T0_AdamW(g) / min_g T0_Muon(g). Printed
// for docs/statistics.md; asserted where a method is expected to hold its level.
struct Trial {
  RowTable adamw, muon;
  double truth = 0;
};

Trial simulate(std::mt19937_64& rng, int seeds, double kappa, double own_sd) {
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> inside(0.5, 3.5);
  const double shared_sd = 0.03, loss_shift_sd = 0.7;
  std::vector<double> shared(static_cast<size_t>(seeds));
  for (double& z : shared) z = shared_sd * normal(rng);
  Trial t;
  double best[2] = {1e300, 1e300};
  for (int side = 0; side < 2; ++side) {
    RowTable& row = side == 0 ? t.adamw : t.muon;
    const double t0 = side == 0 ? 2000.0 : 1000.0;
    const double optimum = inside(rng), loss_optimum = optimum + loss_shift_sd * normal(rng);
    for (int g = 0; g < 5; ++g) {
      row.lrs.push_back(1e-3 * std::pow(2.0, g));
      const double expected = t0 * std::exp(kappa * (g - optimum) * (g - optimum));
      best[side] = std::min(best[side], expected);
      std::vector<SeedRun> cell;
      for (int s = 0; s < seeds; ++s) {
        const double tokens = expected * std::exp(shared[size_t(s)] + own_sd * normal(rng));
        const double loss =
            3.0 + 0.02 * (g - loss_optimum) * (g - loss_optimum) + 0.004 * normal(rng);
        cell.push_back(finished(tokens, loss));
      }
      row.cells.push_back(cell);
    }
  }
  t.truth = best[0] / best[1];
  return t;
}

// The t-interval paired_ratio gives over `measure` at the cells each row chose over `choose`.
PairedRatio t_interval_at_choice(const Trial& t, SelectionRule rule,
                                 const std::vector<size_t>& choose,
                                 const std::vector<size_t>& measure) {
  const size_t a = select_cell(t.adamw, rule, choose), m = select_cell(t.muon, rule, choose);
  std::vector<std::pair<RunAmount, RunAmount>> pairs;
  for (size_t s : measure) pairs.push_back({t.adamw.cells[a][s].amount, t.muon.cells[m][s].amount});
  return paired_ratio(pairs, "AdamW", "Muon");
}

TEST(Selection, CoverageOfTheIntervalsWithTheChoiceInTheLoop) {
  constexpr int kTrials = 1000;
  std::mt19937_64 rng(20261204);
  for (const auto& [kappa, own_sd] : {std::pair{0.08, 0.05}, std::pair{0.02, 0.05},
                                      std::pair{0.08, 0.15}, std::pair{0.02, 0.15}}) {
    int naive_final = 0, naive_tokens = 0, boot_tokens = 0, boot_final = 0, held_out = 0;
    int boot_n = 0;
    for (int i = 0; i < kTrials; ++i) {
      const Trial t = simulate(rng, 4, kappa, own_sd);
      const std::vector<size_t> three = {0, 1, 2}, fourth = {3};
      const auto covers = [&](double low, double high) {
        return low <= t.truth && t.truth <= high;
      };
      const PairedRatio f = t_interval_at_choice(t, SelectionRule::kFinalLoss, three, three);
      naive_final += covers(f.ci_low, f.ci_high);
      const PairedRatio k = t_interval_at_choice(t, SelectionRule::kTokensToTarget, three, three);
      naive_tokens += covers(k.ci_low, k.ci_high);
      // Held out: seed 4 chooses, seeds 1-3 measure.
      const PairedRatio h = t_interval_at_choice(t, SelectionRule::kTokensToTarget, fourth, three);
      held_out += covers(h.ci_low, h.ci_high);
      // The bootstrap sees seeds 1-3 only.
      Trial three_seeds = t;
      for (RowTable* row : {&three_seeds.adamw, &three_seeds.muon})
        for (auto& cell : row->cells) cell.resize(3);
      const BootstrapInterval b = selection_bootstrap(three_seeds.adamw, three_seeds.muon,
                                                      SelectionRule::kTokensToTarget, 500, i);
      boot_n += b.has_interval;
      boot_tokens += b.has_interval && covers(b.low, b.high);
      const BootstrapInterval bf = selection_bootstrap(three_seeds.adamw, three_seeds.muon,
                                                       SelectionRule::kFinalLoss, 500, i);
      boot_final += bf.has_interval && covers(bf.low, bf.high);
    }
    const auto share = [&](int n) { return double(n) / kTrials; };
    std::printf(
        "COVERAGE kappa %.2f, own noise %.2f, 3 seeds, %d trials: t-interval at the final-loss "
        "choice %.3f; "
        "t-interval at the tokens-to-target choice %.3f; bootstrap with the choice in the loop "
        "(tokens_to_target) %.3f, (final_loss) %.3f; held out (1 seed chooses, 3 measure, "
        "t-interval) %.3f\n",
        kappa, own_sd, kTrials, share(naive_final), share(naive_tokens), share(boot_tokens),
        share(boot_final), share(held_out));
    EXPECT_EQ(boot_n, kTrials);
    // What docs/statistics.md relies on: the t-interval at the tokens-to-target choice keeps its
    // level with the choice in the loop, and so does the held-out choice's (slightly below: one
    // seed's choice is not always the best lr). The percentile bootstrap does not, at 3 seeds.
    EXPECT_GT(share(naive_tokens), 0.94) << kappa << " " << own_sd;
    EXPECT_GT(share(held_out), 0.90) << kappa << " " << own_sd;
    EXPECT_LT(share(boot_tokens), share(naive_tokens)) << kappa << " " << own_sd;
  }
}

}  // namespace
}  // namespace server
