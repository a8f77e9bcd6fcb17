// Results of a sweep from stored rows: lr selection, R_L(B) on paired seeds with bounds and
// honest intervals, subset-aware averages, Table 3 on paired runs. Jobs and summaries are built
// here as the store would hold them.
#include "server/results/analysis.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "results_format.h"
#include "server/api/results_proto.h"
#include "server/results/config_columns.h"
#include "server/results/paired_ratio.h"
#include "server/results/selection.h"
#include "server/results/student_t.h"
#include "server/results/welch_slope.h"
#include "trainer_core/train/run_records.h"
#include "trainer_core/util/rng.h"

using namespace server;
using nlohmann::json;

namespace {

struct JobSpec {
  std::string optimizer = "adamw";
  double lr = 3e-3;
  int64_t batch = 1024;
  int64_t seed = 1;
  std::string ablation = "baseline";
  std::string attention = "mha", ffn = "dense";
  JobState state = JobState::kSucceeded;
};

// A job as expansion would label and configure it.
JobRow job(int64_t id, const JobSpec& s, const std::string& label_suffix = "") {
  JobRow j;
  j.id = id;
  j.ablation = s.ablation;
  j.label = s.ablation + label_suffix;
  j.optimizer = s.optimizer;
  j.seed = s.seed;
  j.batch_tokens = s.batch;
  j.state = s.state;
  j.config = json{{"name", j.label + "/seed=" + std::to_string(s.seed)},
                  {"seed", s.seed},
                  {"model", {{"attention", s.attention}, {"ffn", s.ffn}}},
                  {"optimizer", {{"name", s.optimizer}, {"lr", s.lr}, {"weight_decay", 0.1}}},
                  {"training",
                   {{"batch_tokens", s.batch}, {"checkpoint_dir", "/ckpt/" + std::to_string(id)}}}}
                 .dump();
  return j;
}

// A summary as the trainer writes it (the run-record contract's writer): final val loss, tokens
// trained, and tokens to each target (<= 0: not reached).
std::string summary(double final_loss, double tokens_trained, std::vector<double> tokens_to_target,
                    double flops_per_token = 1.0) {
  trainer_core::RunSummary s;
  s.final_val_loss = final_loss;
  s.final_val_ppl = std::exp(final_loss);
  s.loss_spikes = {trainer_core::Spike{}};
  s.peak_memory_bytes = 1048576 * 10;
  for (double tokens : tokens_to_target)
    s.targets.push_back(
        {3.0, tokens > 0, tokens / 100, tokens, tokens / 1000, tokens * flops_per_token});
  s.tokens_seen = int64_t(tokens_trained);
  s.flops.train_per_token = flops_per_token;
  s.inference_tokens_per_second = 1000;
  return to_json(s).dump();
}

// Seeds 1-3 of each (optimizer, lr, final loss, tokens to the target) cell, the loss and tokens
// varied a little by seed.
void add_lr_grid(const std::vector<std::tuple<std::string, double, double, double>>& cells,
                 std::vector<JobRow>& jobs, std::map<int64_t, std::string>& summaries,
                 int64_t& id) {
  for (const auto& [opt, lr, loss, tokens] : cells)
    for (int64_t seed : {1, 2, 3}) {
      JobSpec s;
      s.optimizer = opt;
      s.lr = lr;
      s.seed = seed;
      jobs.push_back(job(++id, s, "/optimizer=" + opt + "/lr=" + std::to_string(lr)));
      summaries[id] =
          summary(loss + 0.01 * double(seed), 20000, {tokens * (1 + 0.1 * double(seed))});
    }
}

SweepRow sweep_with_targets(std::vector<double> targets) {
  SweepRow s;
  s.baseline = "baseline";
  s.targets = std::move(targets);
  return s;
}

const AblationRow& row_named(const SweepResults& r, const std::string& label) {
  for (const auto& a : r.ablation)
    if (a.label == label) return a;
  throw std::runtime_error("no row " + label);
}

// An lr grid per optimizer: each row keeps its best lr (lowest mean final val loss), R_L(B) pairs
// the two best cells, and the row whose best lr is the largest tried is flagged.
TEST(Analysis, RowsWithAnLrGridUseTheirBestLrAndFlagTheGridEdge) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  int64_t id = 0;
  // AdamW: 1e-3 (loss 3.2), 3e-3 (3.0, best, interior), 1e-2 (3.1). Muon: 1e-2 (2.9), 2e-2 (2.8,
  // best, edge). Tokens to target: AdamW 3e-3 -> 4000; Muon 2e-2 -> 1000; every other cell reaches
  // at 8000.
  const std::vector<std::tuple<std::string, double, double, double>> cells = {
      {"adamw", 1e-3, 3.2, 8000},
      {"adamw", 3e-3, 3.0, 4000},
      {"adamw", 1e-2, 3.1, 8000},
      {"muon", 1e-2, 2.9, 8000},
      {"muon", 2e-2, 2.8, 1000}};
  add_lr_grid(cells, jobs, summaries, id);
  const SweepResults r = analyze_sweep(sweep_with_targets({3.0}), jobs, summaries);
  ASSERT_EQ(r.ablation.size(), 2u);
  const AblationRow& adamw = row_named(r, "baseline/optimizer=adamw");
  const AblationRow& muon = row_named(r, "baseline/optimizer=muon");
  EXPECT_DOUBLE_EQ(adamw.lr.lr, 3e-3);
  EXPECT_EQ(adamw.lr.candidates, 3);
  EXPECT_FALSE(adamw.lr.at_grid_edge);
  EXPECT_DOUBLE_EQ(muon.lr.lr, 2e-2);
  EXPECT_TRUE(muon.lr.at_grid_edge);
  EXPECT_EQ(adamw.runs, 3);       // the selected cell's runs, not the row's 9
  EXPECT_FALSE(adamw.has_delta);  // no ablations: no baseline to compare with
  EXPECT_NEAR(adamw.val_ppl.mean, (std::exp(3.01) + std::exp(3.02) + std::exp(3.03)) / 3, 1e-9);
  // The final val loss is the mean of the runs' losses, not the log of their mean PPL.
  EXPECT_NEAR(adamw.final_val_loss.mean, 3.02, 1e-12);
  EXPECT_GT(std::log(adamw.val_ppl.mean), adamw.final_val_loss.mean + 1e-6);
  ASSERT_EQ(r.ratios.size(), 1u);
  EXPECT_NEAR(r.ratios[0].ratio.value, 4.0, 1e-9);  // best vs best, each seed 4000k / 1000k
  EXPECT_EQ(r.ratios[0].ratio.kind, RatioKind::kEstimate);
  EXPECT_DOUBLE_EQ(r.ratios[0].adamw_lr, 3e-3);
  EXPECT_DOUBLE_EQ(r.ratios[0].muon_lr, 2e-2);
  ASSERT_EQ(r.lr_sensitivity.size(), 5u);
  int selected = 0;
  for (const auto& p : r.lr_sensitivity) selected += p.selected;
  EXPECT_EQ(selected, 2);
  EXPECT_FALSE(r.notes.empty());
  // sweepctl shows the chosen lrs and the edge warning.
  const std::string text = sweepctl::format_results(results_to_proto(r), sweepctl::Format::kTable);
  EXPECT_NE(text.find("0.02 (best of 2, at grid edge: widen the grid)"), std::string::npos) << text;
  EXPECT_NE(text.find("Learning-rate sensitivity"), std::string::npos) << text;
}

// R_L(B) chooses each side's lr by the sweep's rule, apart from Table 2's final-loss choice: by
// default the lr that reaches the target soonest; final_loss when the sweep says so; held out
// seeds choose and the others measure. The rule, the edges and R at the neighbouring lrs are in
// the results and in what sweepctl prints.
TEST(Analysis, RatioChoosesEachSidesLrByTheSweepsRuleAndShowsItsNeighbours) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  int64_t id = 0;
  // (optimizer, lr, final loss, tokens to 3.0): the lowest final loss and the fewest tokens sit
  // at different lrs on both sides.
  const std::vector<std::tuple<std::string, double, double, double>> cells = {
      {"adamw", 1e-3, 3.2, 8000}, {"adamw", 3e-3, 3.0, 6000}, {"adamw", 1e-2, 3.05, 3000},
      {"muon", 1e-2, 2.9, 2000},  {"muon", 2e-2, 2.8, 2500},  {"muon", 4e-2, 2.85, 4000}};
  add_lr_grid(cells, jobs, summaries, id);
  SweepRow sweep = sweep_with_targets({3.0});
  const SweepResults by_tokens = analyze_sweep(sweep, jobs, summaries);
  ASSERT_EQ(by_tokens.ratios.size(), 1u);
  const RatioPoint& t = by_tokens.ratios[0];
  EXPECT_EQ(t.selection, sweep_file::SelectionRule::kTokensToTarget);
  EXPECT_DOUBLE_EQ(t.adamw_lr, 1e-2);
  EXPECT_DOUBLE_EQ(t.muon_lr, 1e-2);
  EXPECT_NEAR(t.ratio.value, 1.5, 1e-9);
  EXPECT_TRUE(t.ratio.has_interval);
  EXPECT_TRUE(t.adamw_lr_at_edge && t.muon_lr_at_edge);
  // Where each side crosses the target in its 20,000-token budget, on the runs R uses (lr 1e-2 on
  // both sides: 3000 and 2000 tokens x 1.1, 1.2, 1.3), not on the rows' final-loss lrs.
  EXPECT_EQ(t.adamw_crossing.reached, 3);
  EXPECT_EQ(t.adamw_crossing.missed, 0);
  EXPECT_NEAR(t.adamw_crossing.mean_share, 3000 * 1.2 / 20000, 1e-12);
  EXPECT_NEAR(t.adamw_crossing.earliest_share, 3000 * 1.1 / 20000, 1e-12);
  EXPECT_NEAR(t.muon_crossing.mean_share, 2000 * 1.2 / 20000, 1e-12);
  ASSERT_EQ(t.neighbours.size(), 2u);  // one step inward on each side: the edges have no outward
  for (const NeighbourRatio& n : t.neighbours)
    EXPECT_NEAR(n.ratio.value, n.side == "adamw" ? 6000.0 / 2000 : 3000.0 / 2500, 1e-9) << n.side;
  // Table 2 keeps its own rule: the lowest final loss.
  EXPECT_DOUBLE_EQ(row_named(by_tokens, "baseline/optimizer=adamw").lr.lr, 3e-3);
  const std::string text =
      sweepctl::format_results(results_to_proto(by_tokens), sweepctl::Format::kTable);
  EXPECT_NE(text.find("tokens_to_target"), std::string::npos) << text;
  EXPECT_NE(text.find("0.01 (edge)"), std::string::npos) << text;
  EXPECT_NE(text.find("AdamW 0.003: 3.000; Muon 0.02: 1.200"), std::string::npos) << text;
  EXPECT_NE(text.find("T / budget AdamW"), std::string::npos) << text;
  EXPECT_NE(text.find(" 18% "), std::string::npos) << text;  // AdamW's mean crossing
  EXPECT_NE(text.find(" 12% "), std::string::npos) << text;  // Muon's

  sweep.analysis.selection = sweep_file::SelectionRule::kFinalLoss;
  const RatioPoint f = analyze_sweep(sweep, jobs, summaries).ratios.at(0);
  EXPECT_DOUBLE_EQ(f.adamw_lr, 3e-3);
  EXPECT_DOUBLE_EQ(f.muon_lr, 2e-2);
  EXPECT_NEAR(f.ratio.value, 6000.0 / 2500, 1e-9);
  EXPECT_FALSE(f.adamw_lr_at_edge || f.muon_lr_at_edge);
  EXPECT_EQ(f.neighbours.size(), 4u);

  sweep.analysis = {sweep_file::SelectionRule::kHeldOutSeeds, {1}};
  const SweepResults held = analyze_sweep(sweep, jobs, summaries);
  const RatioPoint& h = held.ratios.at(0);
  EXPECT_DOUBLE_EQ(h.adamw_lr, 1e-2);
  EXPECT_EQ(h.ratio.pairs, 2) << "seed 1 chose; seeds 2 and 3 measure";
  EXPECT_NEAR(h.ratio.value, 1.5, 1e-9);
  EXPECT_FALSE(h.ratio.has_interval) << "two measuring seeds give no interval";
  EXPECT_EQ(h.adamw_crossing.reached, 2) << "the measuring seeds only";
  EXPECT_NEAR(h.adamw_crossing.earliest_share, 3000 * 1.2 / 20000, 1e-12);
  bool named = false;
  for (const std::string& note : held.notes)
    named = named || note.find("over seeds [1] only") != std::string::npos;
  EXPECT_TRUE(named);

  // A Muon row without an AdamW partner gets no ratio, and a note says which.
  JobSpec lone;
  lone.optimizer = "muon";
  lone.ablation = "no_rms";
  jobs.push_back(job(++id, lone, "/optimizer=muon"));
  summaries[id] = summary(2.9, 20000, {3000});
  const SweepResults with_lone = analyze_sweep(sweep, jobs, summaries);
  EXPECT_EQ(with_lone.ratios.size(), 1u);
  bool said = false;
  for (const std::string& note : with_lone.notes)
    said = said || note.find(
                       "1 Muon row(s) have no AdamW row of the same setting, so no R_L(B): "
                       "no_rms/optimizer=muon") != std::string::npos;
  EXPECT_TRUE(said);
}

// AdamW and Muon at B = 1024, 2048 and 4096, seeds 1-3: AdamW's tokens to the target grow with B
// (4000 · B / 1024, 2% more a seed), Muon's do not (2000, 1% more a seed), so R = 2 · (B / 1024) ·
// (seed factor) doubles with every doubling of B. `summary_of(optimizer, tokens)` writes a run's
// summary.
void add_doubling_ratio(std::vector<JobRow>& jobs, std::map<int64_t, std::string>& summaries,
                        const std::function<std::string(const std::string&, double)>& summary_of) {
  int64_t id = int64_t(jobs.size());
  for (int64_t batch : {1024, 2048, 4096})
    for (const std::string opt : {"adamw", "muon"})
      for (int64_t seed : {1, 2, 3}) {
        JobSpec s;
        s.optimizer = opt;
        s.batch = batch;
        s.seed = seed;
        jobs.push_back(
            job(++id, s, "/optimizer=" + opt + "/batch_tokens=" + std::to_string(batch)));
        summaries[id] = summary_of(
            opt, opt == "adamw" ? 4000.0 * double(batch) / 1024 * (1 + 0.02 * double(seed))
                                : 2000.0 * (1 + 0.01 * double(seed)));
      }
}

// How R moves with B is a slope over every batch size with its interval, not a comparison of the
// end points, and it is withheld where a ratio is only a bound.
TEST(Analysis, TheTrendOfRWithBatchSizeIsASlopeOverEveryBatchSize) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  add_doubling_ratio(jobs, summaries,
                     [](const std::string&, double tokens) { return summary(3.0, 1e6, {tokens}); });
  const int64_t id = int64_t(jobs.size());
  const SweepResults r = analyze_sweep(sweep_with_targets({3.0}), jobs, summaries);
  ASSERT_EQ(r.trends.size(), 1u);
  const RatioTrend& t = r.trends[0];
  EXPECT_EQ(t.batch_sizes, 3);
  EXPECT_EQ(t.points, 9);
  ASSERT_TRUE(t.has_slope) << t.withheld;
  EXPECT_NEAR(t.per_doubling, 2.0, 1e-9);
  EXPECT_LT(t.low, 2.0);
  EXPECT_GT(t.high, 2.0);
  EXPECT_EQ(t.margin, 0.9);
  EXPECT_TRUE(t.does_not_fall) << "its interval lies far above the margin";
  EXPECT_GT(t.degrees_of_freedom, 2.0) << "Welch–Satterthwaite's, from three batch sizes' noise";
  const std::string text = sweepctl::format_results(results_to_proto(r), sweepctl::Format::kTable);
  EXPECT_NE(text.find("R per doubling of B"), std::string::npos) << text;

  // Muon misses the target at the largest batch for one seed: that ratio is a bound, so no slope.
  summaries[id] = summary(3.1, 1e6, {-1});
  const RatioTrend w = analyze_sweep(sweep_with_targets({3.0}), jobs, summaries).trends.at(0);
  EXPECT_FALSE(w.has_slope);
  EXPECT_EQ(w.withheld, "R at batch 4096 is a bound, not a value");
}

// The compute–time plane (section 3.2): with AdamW's tokens to target growing with B and Muon's
// not, AdamW's time to target stays flat as devices grow and Muon's halves with every doubling;
// Muon dominates unless its seconds per step make its one-device point slower than AdamW's.
TEST(Analysis, TheParetoPlanePlacesEachBatchSizeAndJudgesDominanceWithIntervals) {
  const auto frontier_with = [](double muon_step_seconds) {
    std::vector<JobRow> jobs;
    std::map<int64_t, std::string> summaries;
    add_doubling_ratio(jobs, summaries, [&](const std::string& opt, double tokens) {
      trainer_core::RunSummary r;
      r.targets.push_back({3.0, true, 0, tokens, 0, 0});
      r.tokens_seen = 100000;
      r.steps_completed = 100;
      r.train_seconds = 100 * (opt == "adamw" ? 0.10 : muon_step_seconds);
      return trainer_core::to_json(r).dump();
    });
    const SweepResults r = analyze_sweep(sweep_with_targets({3.0}), jobs, summaries);
    EXPECT_EQ(r.pareto.size(), 1u);
    return r.pareto.at(0);
  };
  const ParetoFrontier f = frontier_with(0.11);
  EXPECT_EQ(f.device_batch_tokens, 1024);
  EXPECT_NEAR(f.adamw_step_seconds, 0.10, 1e-12);
  ASSERT_EQ(f.points.size(), 6u);
  for (const ParetoPoint& p : f.points) {
    EXPECT_TRUE(p.reached);
    EXPECT_TRUE(p.has_interval) << "three seeds";
    EXPECT_EQ(p.devices, double(p.batch_tokens) / 1024);
    // Steps to target (geometric mean over the seeds' factors) × seconds per step at B = 1024.
    const double k = p.optimizer == "adamw" ? 0.02 : 0.01;
    const double seeds = std::cbrt((1 + k) * (1 + 2 * k) * (1 + 3 * k));
    const double steps =
        (p.optimizer == "adamw" ? 4000.0 / 1024 : 2000.0 / double(p.batch_tokens)) * seeds;
    EXPECT_NEAR(p.seconds, steps * (p.optimizer == "adamw" ? 0.10 : 0.11), 1e-9);
    // AdamW's time does not fall with more devices: only its one-device point is on its frontier.
    EXPECT_EQ(p.on_frontier, p.optimizer == "muon" || p.devices == 1) << p.optimizer << p.devices;
  }
  EXPECT_EQ(f.verdict, ParetoVerdict::kMuonDominates) << f.why;

  const ParetoFrontier slow = frontier_with(0.25);  // Muon's one-device point: 0.49 s > 0.39 s
  EXPECT_EQ(slow.verdict, ParetoVerdict::kNotDominated) << slow.why;
  EXPECT_EQ(slow.why.find("AdamW at B = 1024 (1 device): 0.4"), 0u) << slow.why;
  SweepResults only_plane;
  only_plane.pareto = {slow};
  const orchestrator::v1::GetResultsResponse proto = results_to_proto(only_plane);
  EXPECT_EQ(proto.pareto(0).verdict(), orchestrator::v1::PARETO_NOT_DOMINATED);
  EXPECT_EQ(proto.pareto(0).points_size(), 6);
}

// Over batch sizes, each row's best lr (lowest mean final loss, bracketed by its grid) doubles
// with every doubling of B: lr* ∝ B^1, fitted; the width is not varied and not fitted.
TEST(Analysis, HowTheBestLrScalesIsFittedOverRowsThatDifferOnlyInTheBatch) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  int64_t id = 0;
  for (int64_t batch : {1024, 2048, 4096})
    for (double lr : {5e-4, 1e-3, 2e-3, 4e-3, 8e-3})
      for (int64_t seed : {1, 2}) {
        JobSpec s;
        s.batch = batch;
        s.lr = lr;
        s.seed = seed;
        jobs.push_back(
            job(++id, s, "/batch_tokens=" + std::to_string(batch) + "/lr=" + std::to_string(lr)));
        const double best = 1e-3 * double(batch) / 1024;
        summaries[id] = summary(3.0 + 0.1 * std::pow(std::log2(lr / best), 2), 1e6, {-1});
      }
  const SweepResults r = analyze_sweep(sweep_with_targets({2.0}), jobs, summaries);
  ASSERT_EQ(r.lr_laws.size(), 1u);
  const LrLaw& law = r.lr_laws[0];
  EXPECT_EQ(law.rows, 3);
  EXPECT_EQ(law.left_out_at_edge, 0);
  EXPECT_FALSE(law.fit.fits_width);
  ASSERT_TRUE(law.fit.fits_batch);
  EXPECT_NEAR(law.fit.batch_exponent, 1.0, 1e-9);
  EXPECT_EQ(law.fit.degrees_of_freedom, 1);
  const std::string text = sweepctl::format_results(results_to_proto(r), sweepctl::Format::kTable);
  EXPECT_NE(text.find("How the best lr scales"), std::string::npos) << text;
}

// Targets from the data: losses every run of the chosen lrs reaches, and only in the last third of
// its budget; every run's tokens to them come from its stored evaluations.
TEST(Analysis, TargetsFromTheDataAreReachedByEveryRunInItsLastThird) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  std::map<int64_t, std::vector<EvalRow>> evals;
  int64_t id = 0;
  // Val loss at steps 0, 30, 60, 90 (+0.01 per seed).
  const auto add = [&](const std::map<std::string, std::vector<double>>& curves) {
    for (const auto& [opt, curve] : curves)
      for (int64_t seed : {1, 2, 3}) {
        JobSpec s;
        s.optimizer = opt;
        s.seed = seed;
        jobs.push_back(job(++id, s, "/optimizer=" + opt));
        jobs.back().max_steps = 90;
        summaries[id] = summary(curve.back() + 0.01 * double(seed), 90 * 1024, {90 * 1024});
        for (int i = 0; i < 4; ++i)
          evals[id].push_back({30 * i, curve[size_t(i)] + 0.01 * double(seed), 30.0 * i * 1024, 0});
      }
  };
  add({{"adamw", {5.0, 3.6, 3.1, 2.8}}, {"muon", {5.0, 3.4, 3.0, 2.75}}});
  SweepRow sweep = sweep_with_targets({3.5});
  sweep.analysis.targets = sweep_file::TargetRule::kFromData;
  const SweepResults r = analyze_sweep(sweep, jobs, summaries, evals);
  // Every run reaches 2.83 (AdamW seed 3's lowest); none reaches below 3.01 (Muon seed 1 at step
  // 60) before its last third: targets a third and two thirds of the way down.
  ASSERT_EQ(r.targets, (std::vector<double>{2.95, 2.89}));
  ASSERT_EQ(r.ratios.size(), 2u);
  // At 2.95: AdamW crosses at step 75 + s, Muon at 66 + 1.2 s (linear between evaluations).
  double log_sum = 0;
  for (double s : {1.0, 2.0, 3.0}) log_sum += std::log((75 + s) / (66 + 1.2 * s));
  const RatioPoint& at_295 = r.ratios[0].target == 2.95 ? r.ratios[0] : r.ratios[1];
  EXPECT_NEAR(at_295.ratio.value, std::exp(log_sum / 3), 1e-9);
  bool said = false;
  for (const std::string& note : r.notes) said = said || note.starts_with("Targets from the data");
  EXPECT_TRUE(said);
  EXPECT_EQ(r.target_source, TargetSource::kFromData);
  EXPECT_EQ(analyze_sweep(sweep_with_targets({3.5}), jobs, summaries, evals).target_source,
            TargetSource::kGiven);

  // Curves too far apart: no loss is reached by every run only in its last third. One target,
  // the lowest loss every run reaches, and the note says so.
  jobs.clear();
  summaries.clear();
  evals.clear();
  add({{"adamw", {5.0, 3.5, 3.0, 2.8}}, {"muon", {5.0, 3.2, 2.7, 2.5}}});
  const SweepResults apart = analyze_sweep(sweep, jobs, summaries, evals);
  EXPECT_EQ(apart.targets, (std::vector<double>{2.83}));
  EXPECT_EQ(apart.target_source, TargetSource::kFromDataFallback) << "the report withholds on it";
  EXPECT_EQ(results_to_proto(apart).target_source(), orchestrator::v1::TARGETS_FROM_DATA_FALLBACK);
  said = false;
  for (const std::string& note : apart.notes)
    said = said ||
           note.find("no loss is reached by every run only in its last third") != std::string::npos;
  EXPECT_TRUE(said);
}

// Paths that never change what a run computes (its checkpoint cadence, where it finds the BPE
// files, the targets it reports) neither split a row nor become a settings column: the analysis
// and the columns leave out the same list.
TEST(Analysis, BookkeepingPathsNeitherSplitRowsNorBecomeColumns) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  for (int64_t seed : {1, 2}) {
    JobSpec s;
    s.seed = seed;
    JobRow j = job(seed, s);
    json config = json::parse(j.config);
    config["training"]["checkpoint_every"] = 10 * seed;
    config["data"] = {{"bpe_dir", "/bpe/" + std::to_string(seed)}};
    config["metrics"] = {{"target_losses", {3.0 + double(seed)}}};
    j.config = config.dump();
    jobs.push_back(j);
    summaries[seed] = summary(3.0, 20000, {4000});
  }
  const SweepResults r = analyze_sweep(sweep_with_targets({3.0}), jobs, summaries);
  ASSERT_EQ(r.ablation.size(), 1u);
  EXPECT_EQ(r.ablation[0].runs, 2);
  EXPECT_TRUE(varying_config(jobs).paths.empty());
}

// A cancelled seed counts against its lr too: the lr's mean over the seeds that finished would
// otherwise compete with complete ones on less evidence.
TEST(Analysis, AnLrWithADivergedOrCancelledSeedLosesToAStableOne) {
  for (const JobState lost : {JobState::kDiverged, JobState::kCancelled}) {
    std::vector<JobRow> jobs;
    std::map<int64_t, std::string> summaries;
    int64_t id = 0;
    for (double lr : {1e-2, 3e-2})
      for (int64_t seed : {1, 2}) {
        JobSpec s;
        s.optimizer = "muon";
        s.lr = lr;
        s.seed = seed;
        if (lr == 3e-2 && seed == 2) s.state = lost;
        jobs.push_back(job(++id, s, "/lr=" + std::to_string(lr)));
        if (s.state != JobState::kCancelled)
          summaries[id] = summary(lr == 3e-2 ? 2.5 : 2.9, 10000, {lr == 3e-2 ? 2000.0 : 5000.0});
      }
    const SweepResults r = analyze_sweep(sweep_with_targets({3.0}), jobs, summaries);
    ASSERT_EQ(r.ablation.size(), 1u);
    EXPECT_DOUBLE_EQ(r.ablation[0].lr.lr, 1e-2) << job_state_name(lost);
    // The tokens-to-target choice ranks it the same way.
    RowTable table;
    table.lrs = {1e-2, 3e-2};
    SeedRun ok;
    ok.present = ok.finished = true;
    ok.amount = {true, 5000, 10000};
    SeedRun fast = ok, missing;
    fast.amount.value = 2000;
    missing.present = true;
    missing.bad = true;
    table.cells = {{ok, ok}, {fast, missing}};
    EXPECT_EQ(select_cell(table, sweep_file::SelectionRule::kTokensToTarget, {0, 1}), 0u);
  }
}

// A row none of whose lrs has a finished run has no lr to show yet.
TEST(Analysis, ARowWithoutFinishedRunsHasNoChosenLr) {
  std::vector<JobRow> jobs;
  for (double lr : {1e-2, 2e-2}) {
    JobSpec s;
    s.optimizer = "muon";
    s.lr = lr;
    s.state = JobState::kRunning;
    jobs.push_back(job(int64_t(jobs.size()) + 1, s, "/lr=" + std::to_string(lr)));
  }
  const SweepResults r = analyze_sweep(sweep_with_targets({3.0}), jobs, {});
  ASSERT_EQ(r.ablation.size(), 1u);
  EXPECT_FALSE(r.ablation[0].lr.decided);
  EXPECT_TRUE(r.ablation[0].lr.provisional);
  EXPECT_FALSE(r.ablation[0].baseline);  // no ablations: nothing to compare with
  for (const auto& p : r.lr_sensitivity) EXPECT_FALSE(p.selected);
  const std::string text = sweepctl::format_results(results_to_proto(r), sweepctl::Format::kTable);
  EXPECT_NE(text.find("- (none of 2 finished)"), std::string::npos) << text;
}

// Runs trained on different data are never compared, and the results say which data they used.
TEST(Analysis, RunsOnDifferentDatasetsAreNotPaired) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  int64_t id = 0;
  for (const std::string opt : {"adamw", "muon"}) {
    JobSpec s;
    s.optimizer = opt;
    jobs.push_back(job(++id, s, "/optimizer=" + opt));
    json summ = json::parse(summary(3.0, 1e6, {opt == "adamw" ? 2000.0 : 1000.0}));
    summ["dataset"] = {{"id", opt == "adamw" ? std::string(64, 'a') : std::string(64, 'b')},
                       {"source", "shards"},
                       {"train_tokens", 1000},
                       {"val_tokens", 10}};
    summaries[id] = summ.dump();
  }
  const SweepResults r = analyze_sweep(sweep_with_targets({3.0}), jobs, summaries);
  ASSERT_EQ(r.ratios.size(), 1u);
  EXPECT_EQ(r.ratios[0].ratio.kind, RatioKind::kMissing);
  EXPECT_NE(r.ratios[0].ratio.note.find("trained on different datasets"), std::string::npos)
      << r.ratios[0].ratio.note;
  bool noted = false;
  for (const auto& n : r.notes)
    noted = noted || n.find("Runs trained on 2 different datasets") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(Analysis, RatioRowsAreOrderedByBatchSizeAsNumbers) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  int64_t id = 0;
  for (int64_t batch : {4096, 512, 2048, 1024})
    for (const std::string opt : {"adamw", "muon"}) {
      JobSpec s;
      s.optimizer = opt;
      s.batch = batch;
      jobs.push_back(job(++id, s, "/optimizer=" + opt + "/batch_tokens=" + std::to_string(batch)));
      summaries[id] = summary(3.0, 1e6, {opt == "adamw" ? 2000.0 : 1000.0});
    }
  const SweepResults r = analyze_sweep(sweep_with_targets({3.0}), jobs, summaries);
  ASSERT_EQ(r.ratios.size(), 4u);
  EXPECT_EQ(r.ratios[0].batch_tokens, 512);
  EXPECT_EQ(r.ratios[1].batch_tokens, 1024);
  EXPECT_EQ(r.ratios[2].batch_tokens, 2048);
  EXPECT_EQ(r.ratios[3].batch_tokens, 4096);
  EXPECT_EQ(r.ratios[0].group, "baseline");
}

// With one or two seed pairs there is no interval, and the reason is given.
TEST(PairedRatio, AnIntervalNeedsThreeSeedPairs) {
  auto exact = [](double num, double den) {
    return std::pair{RunAmount{true, num, 1e9}, RunAmount{true, den, 1e9}};
  };
  const PairedRatio one = paired_ratio({exact(2, 1)}, "AdamW", "Muon");
  EXPECT_EQ(one.kind, RatioKind::kEstimate);
  EXPECT_DOUBLE_EQ(one.value, 2.0);
  EXPECT_FALSE(one.has_interval);
  EXPECT_NE(one.note.find("no interval: 1 seed pair"), std::string::npos) << one.note;
  const PairedRatio two = paired_ratio({exact(2, 1), exact(8, 1)}, "AdamW", "Muon");
  EXPECT_FALSE(two.has_interval);
  EXPECT_NEAR(two.value, 4.0, 1e-12);  // geometric mean
  const PairedRatio three = paired_ratio({exact(2, 1), exact(3, 1), exact(4, 1)}, "AdamW", "Muon");
  ASSERT_TRUE(three.has_interval);
  EXPECT_LT(three.ci_low, three.value);
  EXPECT_GT(three.ci_high, three.value);
  EXPECT_GT(three.ci_low, 1.0);
}

// The interval's coverage, measured: log ratios drawn from a normal distribution (spread like
// seeds of one setting) must be covered about 95% of the time at 3, 5 and 10 seed pairs.
TEST(PairedRatio, TheIntervalCoversTheTrueRatioAboutNinetyFivePercentOfTheTime) {
  trainer_core::NormalRng normal(2024);
  const double true_ratio = 1.6, sigma = 0.15;
  for (int n : {3, 5, 10}) {
    constexpr int kTrials = 4000;
    int covered = 0;
    for (int trial = 0; trial < kTrials; ++trial) {
      std::vector<std::pair<RunAmount, RunAmount>> pairs;
      for (int i = 0; i < n; ++i) {
        const double muon_tokens = 1e6 * std::exp(0.3 * normal.next());
        const double ratio = true_ratio * std::exp(sigma * normal.next());
        pairs.push_back({{true, ratio * muon_tokens, 1e12}, {true, muon_tokens, 1e12}});
      }
      const PairedRatio p = paired_ratio(pairs, "AdamW", "Muon");
      ASSERT_TRUE(p.has_interval);
      covered += p.ci_low <= true_ratio && true_ratio <= p.ci_high;
    }
    const double coverage = double(covered) / kTrials;
    std::printf("coverage of the 95%% interval at %d seed pairs: %.3f (%d trials)\n", n, coverage,
                kTrials);
    EXPECT_GT(coverage, 0.935) << n;
    EXPECT_LT(coverage, 0.965) << n;
  }
}

// R's trend with B when the batch sizes' noise differs (SDs of log R like those the reproduction
// measured: 0.139, 0.047, 0.291 at three batch sizes, three seed pairs each). The Welch interval
// must cover the true slope at least 94% of the time, where one pooled residual (the former
// interval) covers far less; and "does not fall" at margin 0.9 must be said of a trend that falls
// by exactly that factor at most 2.5% of the time (its one-sided level), plus simulation noise.
TEST(RatioTrend, TheWelchIntervalCoversUnderUnequalNoiseAndNonInferiorityKeepsItsLevel) {
  trainer_core::NormalRng normal(37);
  const std::vector<double> x = {10, 11, 12}, sd = {0.139, 0.047, 0.291};
  constexpr int kTrials = 20000, kPairs = 3;
  const auto draw = [&](double slope) {
    std::vector<SampleGroup> groups;
    for (size_t j = 0; j < x.size(); ++j) {
      SampleGroup g{x[j], {}};
      for (int i = 0; i < kPairs; ++i) g.y.push_back(slope * (x[j] - 11) + sd[j] * normal.next());
      groups.push_back(g);
    }
    return groups;
  };
  int welch_covered = 0, pooled_covered = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    const std::vector<SampleGroup> groups = draw(0.0);
    const std::optional<SlopeEstimate> e = welch_slope(groups);
    ASSERT_TRUE(e);
    welch_covered += e->low <= 0 && 0 <= e->high;
    // The former interval: every seed pair a point, one residual variance, n - 2 df.
    double sxx = 0, sxy = 0, sse = 0;
    for (const SampleGroup& g : groups)
      for (double y : g.y) {
        sxx += (g.x - 11) * (g.x - 11);
        sxy += (g.x - 11) * y;
      }
    double mean_y = 0;
    for (const SampleGroup& g : groups)
      for (double y : g.y) mean_y += y / 9;
    const double slope = sxy / sxx;
    for (const SampleGroup& g : groups)
      for (double y : g.y) sse += std::pow(y - mean_y - slope * (g.x - 11), 2);
    const double half = student_t_quantile(7, 0.975) * std::sqrt(sse / 7 / sxx);
    pooled_covered += slope - half <= 0 && 0 <= slope + half;
  }
  const double welch = double(welch_covered) / kTrials, pooled = double(pooled_covered) / kTrials;
  std::printf("trend interval coverage under unequal noise: Welch %.3f, pooled %.3f (%d trials)\n",
              welch, pooled, kTrials);
  EXPECT_GE(welch, 0.94);
  EXPECT_LT(pooled, 0.92) << "the case the Welch interval exists for";

  int said_not_falling = 0;
  const double margin = 0.9;
  for (int trial = 0; trial < kTrials; ++trial) {
    const std::optional<SlopeEstimate> e = welch_slope(draw(std::log(margin)));
    said_not_falling += std::exp(e->low) > margin;
  }
  const double level = double(said_not_falling) / kTrials;
  std::printf("'does not fall' said of a trend falling by the margin: %.4f\n", level);
  EXPECT_LE(level, 0.03);
}

// A side that never reached the target makes the ratio a bound, never a number from a subset.
TEST(PairedRatio, AMissedTargetGivesABoundOrNothing) {
  const RunAmount reached{true, 1000, 10000}, missed{false, 0, 10000};
  const RunAmount reached2{true, 2000, 10000};
  const PairedRatio lower = paired_ratio({{missed, reached}, {reached2, reached}}, "AdamW", "Muon");
  EXPECT_EQ(lower.kind, RatioKind::kLowerBound);
  EXPECT_NEAR(lower.value, std::sqrt(10.0 * 2.0), 1e-12);  // missed AdamW counts its whole budget
  EXPECT_EQ(lower.censored, 1);
  EXPECT_FALSE(lower.has_interval);
  const PairedRatio upper = paired_ratio({{reached, missed}}, "AdamW", "Muon");
  EXPECT_EQ(upper.kind, RatioKind::kUpperBound);
  EXPECT_NEAR(upper.value, 0.1, 1e-12);
  EXPECT_EQ(paired_ratio({{missed, missed}}, "AdamW", "Muon").kind, RatioKind::kMissing);
  EXPECT_EQ(paired_ratio({{missed, reached}, {reached, missed}}, "AdamW", "Muon").kind,
            RatioKind::kMissing);
  EXPECT_EQ(paired_ratio({}, "AdamW", "Muon").kind, RatioKind::kMissing);
}

// Averages over a subset say so; diverged and failed runs are counted, not dropped silently; an
// AdamW side that diverged before the target makes R_L(B) a lower bound.
TEST(Analysis, SubsetsAreCountedAndDivergedRunsBoundTheRatio) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  int64_t id = 0;
  for (int64_t seed : {1, 2, 3}) {
    JobSpec a;
    a.seed = seed;
    if (seed == 3) a.state = JobState::kDiverged;
    jobs.push_back(job(++id, a, "/optimizer=adamw"));
    summaries[id] =
        seed == 3 ? summary(NAN, 3000, {-1}) : summary(3.0, 10000, {seed == 1 ? 4000.0 : -1});
    JobSpec m = a;
    m.optimizer = "muon";
    m.lr = 0.02;
    m.state = JobState::kSucceeded;
    jobs.push_back(job(++id, m, "/optimizer=muon"));
    summaries[id] = summary(2.9, 10000, {1000});
  }
  JobSpec failed;
  failed.seed = 4;
  failed.state = JobState::kFailed;
  jobs.push_back(job(++id, failed, "/optimizer=adamw"));
  const SweepResults r = analyze_sweep(sweep_with_targets({3.0}), jobs, summaries);
  const AblationRow& adamw = row_named(r, "baseline/optimizer=adamw");
  EXPECT_EQ(adamw.counts.total, 4);
  EXPECT_EQ(adamw.counts.succeeded, 2);
  EXPECT_EQ(adamw.counts.diverged, 1);
  EXPECT_EQ(adamw.counts.failed, 1);
  EXPECT_EQ(adamw.steps_to_target.n, 1);
  EXPECT_EQ(adamw.steps_to_target.of, 4);
  EXPECT_EQ(adamw.val_ppl.n, 2);
  const std::string text = sweepctl::format_results(results_to_proto(r), sweepctl::Format::kTable);
  EXPECT_NE(text.find("40 (1/4 reached)"), std::string::npos) << text;
  EXPECT_NE(text.find("2/4 ok, 1 diverged, 1 failed"), std::string::npos) << text;
  ASSERT_EQ(r.ratios.size(), 1u);
  // Seeds 2 and 3 of AdamW never reached 3.0 (one trained 10000 tokens, one diverged at 3000).
  EXPECT_EQ(r.ratios[0].ratio.kind, RatioKind::kLowerBound);
  EXPECT_NEAR(r.ratios[0].ratio.value, std::cbrt(4.0 * 10.0 * 3.0), 1e-9);
  EXPECT_NE(text.find(">"), std::string::npos);
}

// Table 3: rows are whole settings (here two batch sizes stay apart), and FLOPs relative to
// Table 3 at targets chosen after the runs: train time to them is read off the evaluations'
// training clock (train_s), interpolated as tokens are; evaluations stored without one (workers
// older than it) give no time rather than a wrong one.
TEST(Analysis, TrainTimeToTargetsFromTheDataComesFromTheEvaluationsTrainingClock) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  std::map<int64_t, std::vector<EvalRow>> evals;
  int64_t id = 0;
  for (const std::string attention : {"mha", "mla"})
    for (int64_t seed : {1, 2, 3}) {
      JobSpec s;
      s.attention = attention;
      s.seed = seed;
      jobs.push_back(job(++id, s, "/model=" + attention + "-dense"));
      jobs.back().max_steps = 90;
      summaries[id] = summary(2.8, 90 * 1024, {90 * 1024});
      const std::vector<double> curve = {5.0, 3.6, 3.1, 2.8};
      for (int i = 0; i < 4; ++i)  // 0.1 s of training a step; twice that on the wall clock
        evals[id].push_back(
            {30 * i, curve[size_t(i)] + 0.01 * double(seed), 30.0 * i * 1024, 6.0 * i, 3.0 * i});
    }
  SweepRow sweep = sweep_with_targets({3.5});
  sweep.analysis.targets = sweep_file::TargetRule::kFromData;
  const SweepResults r = analyze_sweep(sweep, jobs, summaries, evals);
  ASSERT_EQ(r.architecture.size(), 2u);
  for (const ArchitectureRow& a : r.architecture) {
    ASSERT_EQ(a.tokens_to_target.n, 3) << a.label;
    ASSERT_EQ(a.seconds_to_target.n, 3) << a.label;
    EXPECT_NEAR(a.seconds_to_target.mean, 0.1 * a.tokens_to_target.mean / 1024, 1e-9) << a.label;
  }
  for (auto& [job_id, rows] : evals)
    for (EvalRow& e : rows) e.train_s = kUnknownSeconds;
  for (const ArchitectureRow& a : analyze_sweep(sweep, jobs, summaries, evals).architecture) {
    EXPECT_EQ(a.tokens_to_target.n, 3) << a.label;
    EXPECT_EQ(a.seconds_to_target.n, 0) << a.label;
  }
}

// MHA + AdamW are paired by seed within the same setting.
TEST(Analysis, ArchitectureTableKeepsSettingsApartAndPairsRelativeFlops) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  int64_t id = 0;
  for (int64_t batch : {1024, 2048})
    for (const auto& [attention, ffn, opt, flops_per_token] :
         std::vector<std::tuple<std::string, std::string, std::string, double>>{
             {"mha", "dense", "adamw", 4.0}, {"mla", "moe", "muon", 1.0}})
      for (int64_t seed : {1, 2, 3}) {
        JobSpec s;
        s.attention = attention;
        s.ffn = ffn;
        s.optimizer = opt;
        s.batch = batch;
        s.seed = seed;
        jobs.push_back(job(++id, s,
                           "/model=" + attention + "-" + ffn + "/optimizer=" + opt +
                               "/batch_tokens=" + std::to_string(batch)));
        // The reference reaches the target at 1000 tokens per seed at batch 1024, 2000 at 2048.
        summaries[id] =
            summary(3.0, 1e6, {double(batch) * (1 + 0.01 * double(seed))}, flops_per_token);
      }
  const SweepResults r = analyze_sweep(sweep_with_targets({3.0}), jobs, summaries);
  ASSERT_EQ(r.architecture.size(), 4u);
  for (const auto& a : r.architecture) {
    ASSERT_TRUE(a.has_relative_flops) << a.label;
    EXPECT_EQ(a.relative_flops.kind, RatioKind::kEstimate);
    EXPECT_EQ(a.relative_flops.pairs, 3);
    EXPECT_NEAR(a.relative_flops.value, a.attention == "mha" ? 1.0 : 0.25, 1e-9) << a.label;
    EXPECT_EQ(a.runs, 3);
  }
  EXPECT_EQ(r.architecture[0].label, "baseline/model=mha-dense/optimizer=adamw/batch_tokens=1024");
  // Tokens, FLOPs and time to the target side by side: 1024 · (1.01, 1.02, 1.03) tokens at 4
  // FLOPs a token.
  EXPECT_NEAR(r.architecture[0].tokens_to_target.mean, 1024 * 1.02, 1e-9);
  EXPECT_NEAR(r.architecture[0].flops_to_target.mean, 4 * 1024 * 1.02, 1e-9);
  const std::string text = sweepctl::format_results(results_to_proto(r), sweepctl::Format::kTable);
  EXPECT_NE(text.find("tokens to 3 "), std::string::npos) << text;
  EXPECT_NE(text.find("1.04e+03 ± 10.2"), std::string::npos) << text;
  // A Muon run recorded before the optimizer's FLOPs were counted (job 4: seed 1 of MLA-MoE at
  // 1024) has no FLOPs to compare: its pair is left out, and the note says why.
  std::map<int64_t, std::string> older = summaries;
  json record = json::parse(older[4]);
  record.erase("optimizer_flops_per_step");
  older[4] = record.dump();
  const SweepResults o = analyze_sweep(sweep_with_targets({3.0}), jobs, older);
  const auto mla = std::find_if(o.architecture.begin(), o.architecture.end(), [](const auto& a) {
    return a.attention == "mla" && a.label.find("batch_tokens=1024") != std::string::npos;
  });
  ASSERT_NE(mla, o.architecture.end());
  EXPECT_EQ(mla->relative_flops.pairs, 2);
  EXPECT_NE(mla->relative_flops.note.find("1 seed pair left out (FLOPs not recorded"),
            std::string::npos)
      << mla->relative_flops.note;
  // One architecture only: no table.
  std::vector<JobRow> mha_only(jobs.begin(), jobs.begin() + 3);
  EXPECT_TRUE(analyze_sweep(sweep_with_targets({3.0}), mha_only, summaries).architecture.empty());
}

// Labels that differ only in lr name one row; ablation rows compare with the baseline row.
TEST(Analysis, AblationDeltaComparesWithTheBaselineOfTheSameGridCell) {
  std::vector<JobRow> jobs;
  std::map<int64_t, std::string> summaries;
  JobSpec base;
  jobs.push_back(job(1, base, "/optimizer=adamw"));
  summaries[1] = summary(std::log(10.0), 1e4, {2000});
  JobSpec nowd = base;
  nowd.ablation = "nowd";
  jobs.push_back(job(2, nowd, "/optimizer=adamw"));
  json config = json::parse(jobs.back().config);
  config["optimizer"]["weight_decay"] = 0.0;
  jobs.back().config = config.dump();
  summaries[2] = summary(std::log(12.0), 1e4, {-1});
  const SweepResults r = analyze_sweep(sweep_with_targets({3.0}), jobs, summaries);
  ASSERT_EQ(r.ablation.size(), 2u);
  EXPECT_TRUE(r.ablation[0].baseline);
  EXPECT_TRUE(r.ablation[1].has_delta);
  EXPECT_NEAR(r.ablation[1].delta_val_ppl, 2.0, 1e-9);
  EXPECT_EQ(r.ablation[1].steps_to_target.n, 0);
  EXPECT_TRUE(r.ratios.empty());  // no Muon rows
}

TEST(ResultsFormat, CsvMarkdownAndLatexCarryTheSameRows) {
  orchestrator::v1::GetResultsResponse r;
  r.add_targets(3.0);
  auto* row = r.add_ablation();
  row->set_label("base,\"x\"");
  row->set_runs(2);
  row->mutable_val_ppl()->set_mean(11);
  row->mutable_val_ppl()->set_std(1.5);
  row->mutable_val_ppl()->set_n(2);
  row->mutable_val_ppl()->set_of(2);
  row->mutable_lr()->set_decided(true);
  row->mutable_lr()->set_lr(3e-3);
  auto* ratio = r.add_ratios();
  ratio->set_group("baseline");
  ratio->set_batch_tokens(1024);
  ratio->set_target(3.0);
  ratio->mutable_ratio()->set_kind(orchestrator::v1::RATIO_LOWER_BOUND);
  ratio->mutable_ratio()->set_value(2.5);
  const std::string csv = sweepctl::format_results(r, sweepctl::Format::kCsv);
  EXPECT_NE(csv.find("\"base,\"\"x\"\"\",0.003,0/0 ok,11.00 +- 1.50"), std::string::npos) << csv;
  EXPECT_NE(csv.find("baseline,1024,3,>2.500,-"), std::string::npos) << csv;
  const std::string md = sweepctl::format_results(r, sweepctl::Format::kMarkdown);
  EXPECT_NE(md.find("| base,\"x\""), std::string::npos) << md;
  const std::string tex = sweepctl::format_results(r, sweepctl::Format::kLatex);
  EXPECT_NE(tex.find("11.00 $\\pm$ 1.50"), std::string::npos) << tex;
  EXPECT_THROW(sweepctl::parse_format("xml"), std::invalid_argument);
}

}  // namespace
