// R_L(B) at the end of annealing: a sweep with budgets reads each seed's tokens to target from
// its ladder's annealed final losses against budget (analysis_ladders.cpp), beside the ratios
// read within each run. Jobs and summaries are built as the store would hold them.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "results_format.h"
#include "server/api/results_proto.h"
#include "server/results/analysis.h"
#include "server/results/analysis_parts.h"
#include "server/results/paired_ratio.h"
#include "trainer_core/train/run_records.h"

using namespace server;
using nlohmann::json;

namespace {

TEST(AnnealedTarget, TIsLogLinearBetweenTheBudgetsAroundTheTargetAndABoundOutsideTheLadder) {
  const std::vector<LadderPoint> rungs = {{4000, 3.0}, {1000, 3.5}, {2000, 3.2}};
  const AnnealedCrossing mid = annealed_tokens_to_target(rungs, 3.1);
  ASSERT_TRUE(mid.reached);
  EXPECT_NEAR(mid.tokens, std::sqrt(2000.0 * 4000.0), 1e-9) << "halfway in loss, halfway in log B";
  EXPECT_NEAR(annealed_tokens_to_target(rungs, 3.2).tokens, 2000, 1e-9) << "on a rung: its budget";
  const AnnealedCrossing missed = annealed_tokens_to_target(rungs, 2.9);
  EXPECT_FALSE(missed.reached) << "the largest budget misses 2.9: T > 4000";
  const AnnealedCrossing below = annealed_tokens_to_target(rungs, 3.6);
  EXPECT_TRUE(below.reached && below.at_most) << "the smallest budget reaches 3.6 already";
  EXPECT_EQ(below.tokens, 1000) << "T <= 1000, not T = 1000";
  // A rung that did not succeed has no annealed loss: no interpolation across it, only a bound.
  const AnnealedCrossing across =
      annealed_tokens_to_target({{1000, 3.5}, {2000, NAN}, {4000, 3.0}}, 3.1);
  EXPECT_TRUE(across.reached && across.at_most);
  EXPECT_EQ(across.tokens, 4000);
  EXPECT_FALSE(mid.at_most);
}

// T known only as at most a budget (left-censored) bounds R the other way from a miss.
TEST(AnnealedTarget, ATKnownOnlyAsAtMostABudgetBoundsTheRatio) {
  const RunAmount exact{true, 2000, 4000, false}, at_most{true, 1000, 4000, true},
      missed{false, 0, 4000, false};
  auto r = [](RunAmount num, RunAmount den) { return paired_ratio({{num, den}}, "AdamW", "Muon"); };
  EXPECT_EQ(r(exact, at_most).kind, RatioKind::kLowerBound);
  EXPECT_EQ(r(exact, at_most).value, 2.0) << "T_Muon <= 1000: R >= 2000 / 1000";
  EXPECT_EQ(r(at_most, exact).kind, RatioKind::kUpperBound);
  EXPECT_EQ(r(at_most, exact).value, 0.5);
  EXPECT_EQ(r(missed, at_most).kind, RatioKind::kLowerBound);
  EXPECT_EQ(r(missed, at_most).value, 4.0) << "T_AdamW > 4000, T_Muon <= 1000";
  EXPECT_EQ(r(at_most, missed).kind, RatioKind::kUpperBound);
  EXPECT_EQ(r(at_most, missed).value, 0.25);
  EXPECT_EQ(r(at_most, at_most).kind, RatioKind::kMissing) << "both only bounded from above";
  EXPECT_EQ(r(exact, exact).kind, RatioKind::kEstimate);
}

// Budgets 1000, 2000, 4000, ... tokens: one per annealed loss.
std::vector<int64_t> budgets_for(size_t rungs) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < rungs; ++i) out.push_back(int64_t(1000) << i);
  return out;
}

// AdamW and Muon, three seeds, budgets 1000, 2000, 4000 (, ...) tokens (separate runs).
struct Ladder {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  void add(const std::string& optimizer, const std::vector<double>& annealed_losses,
           double within_run_tokens) {
    const std::vector<int64_t> budgets = budgets_for(annealed_losses.size());
    for (int64_t seed : {1, 2, 3})
      for (size_t b = 0; b < budgets.size(); ++b) {
        JobRow j;
        j.id = int64_t(jobs.size()) + 1;
        j.ablation = "baseline";
        j.label = "baseline/optimizer=" + optimizer + "/tokens=" + std::to_string(budgets[b]);
        j.optimizer = optimizer;
        j.seed = seed;
        j.batch_tokens = 100;
        j.max_steps = budgets[b] / 100;
        j.state = JobState::kSucceeded;
        j.config = json{{"seed", seed},
                        {"model", {{"attention", "mha"}}},
                        {"optimizer", {{"name", optimizer}, {"lr", 1e-3}}},
                        {"training", {{"batch_tokens", 100}, {"max_tokens", budgets[b]}}}}
                       .dump();
        trainer_core::RunSummary s;
        s.final_val_loss = annealed_losses[b];
        s.tokens_seen = budgets[b];
        s.steps_completed = budgets[b] / 100;
        s.train_seconds = 0.01 * double(s.steps_completed);
        s.targets.push_back({3.1, true, within_run_tokens / 100, within_run_tokens, 1, 1});
        summaries[j.id] = to_json(s).dump();
        jobs.push_back(j);
      }
  }
};

// A sweep of the Ladder's budgets with `targets`.
SweepRow ladder_sweep(std::vector<double> targets, sweep_file::LadderVia via, size_t rungs = 3) {
  SweepRow sweep;
  sweep.baseline = "baseline";
  sweep.targets = std::move(targets);
  sweep.budgets = sweep_file::BudgetLadder{budgets_for(rungs), via};
  return sweep;
}

TEST(AnnealedTarget, ALaddersRatioPairsEachSeedsAnnealedTAndTheWithinRunRatiosFollowLabelled) {
  Ladder ladder;
  ladder.add("adamw", {3.5, 3.2, 3.0}, 500);  // annealed T(3.1) = sqrt(2000 * 4000)
  ladder.add("muon", {3.3, 3.05, 2.9}, 500);  // 1000 * 2^0.8
  SweepRow sweep = ladder_sweep({3.1}, sweep_file::LadderVia::kSeparate);
  const SweepResults r = analyze_sweep(sweep, ladder.jobs, ladder.summaries);
  ASSERT_FALSE(r.ratios.empty());
  const RatioPoint& annealed = r.ratios.front();
  EXPECT_EQ(annealed.reading, TargetReading::kAnnealed);
  EXPECT_EQ(annealed.group, "baseline") << "one ladder row, not one per budget";
  EXPECT_EQ(annealed.ratio.kind, RatioKind::kEstimate);
  EXPECT_EQ(annealed.ratio.pairs, 3);
  EXPECT_NEAR(annealed.ratio.value, std::sqrt(2000.0 * 4000.0) / (1000 * std::pow(2.0, 0.8)), 1e-9);
  // Within each run both cross at 500 tokens: R = 1 at every budget, labelled as such.
  ASSERT_EQ(r.ratios.size(), 4u) << "the annealed ratio, then one within-run ratio per budget";
  for (size_t i = 1; i < r.ratios.size(); ++i) {
    EXPECT_EQ(r.ratios[i].reading, TargetReading::kWithinRun);
    EXPECT_NEAR(r.ratios[i].ratio.value, 1.0, 1e-12);
  }
  bool said = false;
  for (const std::string& note : r.notes)
    said = said || note.starts_with("R_L(B) at the end of annealing");
  EXPECT_TRUE(said) << "the notes say how T was read";
}

TEST(AnnealedTarget, TheTablesReadEveryRowAtTheBudgetTheSweepChooses) {
  Ladder ladder;
  ladder.add("adamw", {3.5, 3.2, 3.0}, 500);
  ladder.add("muon", {3.3, 3.05, 2.9}, 500);
  SweepRow sweep = ladder_sweep({3.1}, sweep_file::LadderVia::kSeparate);
  EXPECT_EQ(analyze_sweep(sweep, ladder.jobs, ladder.summaries).ablation.size(), 6u)
      << "without a choice every rung is a row";
  sweep.analysis.tables_at_budget = 2000;
  const SweepResults r = analyze_sweep(sweep, ladder.jobs, ladder.summaries);
  ASSERT_EQ(r.ablation.size(), 2u);
  for (const AblationRow& row : r.ablation) {
    EXPECT_NE(row.label.find("tokens=2000"), std::string::npos) << row.label;
    EXPECT_NEAR(row.final_val_loss.mean, row.optimizer == "adamw" ? 3.2 : 3.05, 1e-12);
  }
  EXPECT_EQ(r.ratios.front().reading, TargetReading::kAnnealed) << "R still reads every budget";
}

TEST(AnnealedTarget, ASeedWhoseLadderLacksARungIsLeftOutAndATargetBelowTheLadderIsNamed) {
  Ladder ladder;
  ladder.add("adamw", {3.5, 3.2, 3.0}, 500);
  ladder.add("muon", {3.3, 3.05, 2.9}, 500);
  ladder.jobs[1].state = JobState::kFailed;  // AdamW seed 1's 2000-token rung
  ladder.summaries.erase(ladder.jobs[1].id);
  SweepRow sweep = ladder_sweep({3.1, 3.4}, sweep_file::LadderVia::kCooldown);
  const SweepResults r = analyze_sweep(sweep, ladder.jobs, ladder.summaries);
  ASSERT_GE(r.ratios.size(), 2u);
  EXPECT_EQ(r.ratios[0].reading, TargetReading::kAnnealed);
  EXPECT_EQ(r.ratios[0].ratio.pairs, 2) << r.ratios[0].ratio.note;
  EXPECT_NE(r.ratios[0].ratio.note.find("1 seed pair left out (a run failed"), std::string::npos)
      << r.ratios[0].ratio.note;
  // L = 3.4: Muon's smallest budget reaches it (3.3), so T_Muon <= 1000 and R >= T_AdamW / 1000,
  // a lower bound from every pair: left-censored, not dropped.
  EXPECT_EQ(r.ratios[1].reading, TargetReading::kAnnealed);
  EXPECT_EQ(r.ratios[1].target, 3.4);
  EXPECT_EQ(r.ratios[1].ratio.kind, RatioKind::kLowerBound) << r.ratios[1].ratio.note;
  EXPECT_EQ(r.ratios[1].ratio.pairs, 2);
  EXPECT_NEAR(r.ratios[1].ratio.value, std::pow(2.0, 1.0 / 3), 1e-9);
  EXPECT_NE(r.ratios[1].ratio.note.find("a side reached the target at its ladder's smallest budget "
                                        "already"),
            std::string::npos)
      << r.ratios[1].ratio.note;
  // Muon's time to 3.4 is only bounded above: the compute–time plane is not judged without it.
  const ParetoFrontier& plane = r.pareto.at(1);
  ASSERT_EQ(plane.target, 3.4);
  EXPECT_EQ(plane.reading, TargetReading::kAnnealed);
  EXPECT_EQ(plane.verdict, ParetoVerdict::kUndecided);
  EXPECT_NE(plane.why.find("Muon at B = 100 reaches the target at its ladder's smallest budget"),
            std::string::npos)
      << plane.why;
}

// Each ladder row is fitted by E + A·D^(−α), and the compute multiplier says how many times the
// tokens AdamW's law needs for Muon's loss at each budget; with 3 seeds, no interval.
TEST(AnnealedTarget, LadderRowsGetScalingFitsAndTheComputeMultiplierOverTheBudgets) {
  Ladder ladder;
  ladder.add("adamw", {3.5, 3.2, 3.0}, 500);
  ladder.add("muon", {3.3, 3.05, 2.9}, 500);
  SweepRow sweep = ladder_sweep({3.1}, sweep_file::LadderVia::kSeparate);
  const SweepResults r = analyze_sweep(sweep, ladder.jobs, ladder.summaries);
  ASSERT_EQ(r.scaling.size(), 2u);
  for (const ScalingRow& row : r.scaling) {
    const std::vector<double> losses =
        row.optimizer == "adamw" ? std::vector<double>{3.5, 3.2, 3.0} : std::vector{3.3, 3.05, 2.9};
    EXPECT_EQ(row.seeds, 3);
    EXPECT_EQ(row.points, 9);
    EXPECT_FALSE(row.has_interval) << "3 seeds";
    EXPECT_EQ(row.draws, 0) << "no interval to show: no bootstrap drawn";
    for (size_t i = 0; i < 3; ++i)  // three budgets, three parameters: the law goes through them
      EXPECT_NEAR(row.fit.loss_at(1000.0 * double(1 << i)), losses[i], 1e-6) << row.optimizer;
    // The points fitted travel with the fit (the dashboard draws them and their residuals).
    ASSERT_EQ(row.observed.size(), 3u);
    for (const SeedLadder& seed : row.observed) ASSERT_EQ(seed.points.size(), 3u);
    EXPECT_EQ(results_to_proto(r).scaling_fits(0).observations_size(), 9);
  }
  // T read annealed, as a share of the largest budget (4000): AdamW crosses 3.1 between 2000 and
  // 4000, Muon between 1000 and 2000, every seed of both.
  ASSERT_FALSE(r.ratios.empty());
  EXPECT_EQ(r.ratios[0].adamw_crossing.reached, 3);
  EXPECT_EQ(r.ratios[0].adamw_crossing.missed, 0);
  EXPECT_GT(r.ratios[0].adamw_crossing.mean_share, 0.5);
  EXPECT_LT(r.ratios[0].adamw_crossing.mean_share, 1.0);
  EXPECT_GT(r.ratios[0].muon_crossing.earliest_share, 0.25);
  EXPECT_LT(r.ratios[0].muon_crossing.mean_share, 0.5);
  ASSERT_EQ(r.multipliers.size(), 1u);
  const MultiplierRow& m = r.multipliers[0];
  ASSERT_EQ(m.at.size(), 3u);
  EXPECT_EQ(m.seeds, 3);
  const PowerLaw& adamw = r.scaling[0].optimizer == "adamw" ? r.scaling[0].fit : r.scaling[1].fit;
  // Muon's 3.3 at 1000 tokens: AdamW's law gets there between its 1000 and 2000.
  EXPECT_NEAR(m.at[0].value, adamw.tokens_to(3.3) / 1000, 1e-9);
  EXPECT_GT(m.at[0].value, 1.0);
  EXPECT_LT(m.at[0].value, 2.0);
  EXPECT_FALSE(m.at[0].extrapolated);
  EXPECT_TRUE(m.at[2].extrapolated || std::isinf(m.at[2].value))
      << "Muon's 2.9 at 4000 is below every loss AdamW measured";
  const std::string text = sweepctl::format_results(results_to_proto(r), sweepctl::Format::kTable);
  EXPECT_NE(text.find("Compute multiplier: tokens AdamW needs"), std::string::npos) << text;
  EXPECT_NE(text.find("- (fewer than 5 seeds)"), std::string::npos) << text;
}

// analysis.fit_from_tokens leaves the smallest budgets out of the fits and the multiplier (rungs
// of a few steps lie before the power-law regime); the ratios still read every budget.
TEST(AnnealedTarget, FitsStartAtTheBudgetTheSweepNames) {
  Ladder ladder;
  ladder.add("adamw", {4.5, 3.5, 3.2, 3.0},
             500);  // 1000 tokens: far above any law through the rest
  ladder.add("muon", {4.4, 3.3, 3.05, 2.9}, 500);
  SweepRow sweep = ladder_sweep({3.1}, sweep_file::LadderVia::kSeparate, 4);
  sweep.analysis.fit_from_tokens = 2000;
  const SweepResults r = analyze_sweep(sweep, ladder.jobs, ladder.summaries);
  ASSERT_EQ(r.scaling.size(), 2u);
  for (const ScalingRow& row : r.scaling) {
    EXPECT_EQ(row.points, 9) << "3 budgets x 3 seeds: the 1000-token rung is left out";
    const double first = row.optimizer == "adamw" ? 3.5 : 3.3;
    EXPECT_NEAR(row.fit.loss_at(2000), first, 1e-6) << "through the three fitted budgets exactly";
  }
  ASSERT_EQ(r.multipliers.size(), 1u);
  ASSERT_EQ(r.multipliers[0].at.size(), 3u);
  EXPECT_EQ(r.multipliers[0].at[0].tokens, 2000);
  bool said = false;
  for (const std::string& n : r.notes)
    said = said || n.find("from 2000 tokens up") != std::string::npos;
  EXPECT_TRUE(said);
  ASSERT_FALSE(r.ratios.empty());
  EXPECT_EQ(r.ratios[0].ratio.pairs, 3);
}

// A cooldown ladder whose trunk diverged before a rung's branch step: that rung diverged with it
// (it ended DIVERGED with no summary of its own); the seed is a result, not a pair left out.
TEST(AnnealedTarget, ASeedWhoseTrunkDivergedBeforeARungsBranchIsKeptAsNotReaching) {
  Ladder ladder;
  ladder.add("adamw", {3.5, 3.2, 3.0}, 500);
  ladder.add("muon", {3.3, 3.05, 2.9}, 500);
  ladder.jobs[1].state = JobState::kDiverged;  // AdamW seed 1's 2000-token rung, ended with it
  ladder.summaries.erase(ladder.jobs[1].id);
  ladder.jobs[2].state = JobState::kDiverged;  // and its trunk, which sent a summary
  SweepRow sweep = ladder_sweep({3.1}, sweep_file::LadderVia::kCooldown);
  const SweepResults r = analyze_sweep(sweep, ladder.jobs, ladder.summaries);
  ASSERT_FALSE(r.ratios.empty());
  EXPECT_EQ(r.ratios[0].reading, TargetReading::kAnnealed);
  EXPECT_EQ(r.ratios[0].ratio.pairs, 3) << r.ratios[0].ratio.note;
  EXPECT_EQ(r.ratios[0].ratio.note.find("left out"), std::string::npos) << r.ratios[0].ratio.note;
  EXPECT_EQ(r.ratios[0].ratio.kind, RatioKind::kLowerBound)
      << "AdamW's seed 1 never reaches 3.1: T_AdamW > 4000 there";
  EXPECT_EQ(r.ratios[0].adamw_crossing.missed, 1) << "no budget of its ladder annealed to 3.1";
  EXPECT_EQ(r.ratios[0].adamw_crossing.reached, 2);
}

}  // namespace
