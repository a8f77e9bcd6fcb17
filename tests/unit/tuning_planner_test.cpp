// The tuning planner of adaptive sweeps (server/tuning/planner.h) on a real SQLite store: a
// sweep's runs "train" instantly with a synthetic loss-vs-lr table, the planner adds what it
// decides, until its planning closes. What is asserted is what a researcher reads afterwards:
// the chosen lr, whether it is bracketed, how many extensions it took, the confirmation seeds.
#include <thread>

#include "tuning_fixture.h"

using namespace server;
using namespace tuning_test;
using nlohmann::json;

namespace {

constexpr const char* kStart = "{start: [0.001, 0.002, 0.004], max_extensions: 5";

TEST_F(TuningTest, AnOptimumAboveTheStartGridIsBracketedInTheFewestExtensions) {
  const int64_t id = submit(std::string(kStart) + ", confirm_seeds: [1, 2, 3]}");
  run_to_end(id, valley(0.032));
  // 0.008, 0.016, 0.032 climb towards the optimum; 0.064 is the one that shows it is interior.
  EXPECT_EQ(tried(id), (std::vector<double>{0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064}));
  const AblationRow& row = results(id).ablation.at(0);
  EXPECT_DOUBLE_EQ(row.lr.lr, 0.032);
  EXPECT_EQ(row.lr.extensions, 4);
  EXPECT_FALSE(row.lr.at_grid_edge);
  EXPECT_FALSE(row.lr.extensions_exhausted);
  // The chosen lr has the tuning seed and the two confirmation seeds, all succeeded.
  EXPECT_EQ(row.runs, 3);
  EXPECT_EQ(row.tuning_runs, 1);
  EXPECT_EQ(row.confirmation_runs, 2);
  EXPECT_EQ(row.counts.succeeded, 3);
  // Planned configs are resolved as submitted ones: an AdamW run's adamw_lr is its lr.
  for (const JobRow& j : store_->sweeps.jobs(id)) {
    const json o = json::parse(j.config)["optimizer"];
    EXPECT_EQ(o["adamw_lr"], o["lr"]) << j.label;
  }
}

TEST_F(TuningTest, AnOptimumBelowTheStartGridIsBracketedDownward) {
  const int64_t id = submit(std::string(kStart) + "}");
  run_to_end(id, valley(0.000125));
  EXPECT_EQ(tried(id),
            (std::vector<double>{6.25e-5, 0.000125, 0.00025, 0.0005, 0.001, 0.002, 0.004}));
  const AblationRow& row = results(id).ablation.at(0);
  EXPECT_DOUBLE_EQ(row.lr.lr, 0.000125);
  EXPECT_EQ(row.lr.extensions, 4);
  EXPECT_EQ(row.confirmation_runs, 0);  // confirm_seeds defaults to the tuning seeds
  // The note says so, instead of telling of confirmation runs that never ran.
  bool said = false;
  for (const std::string& note : results(id).notes)
    said = said || note.find("no confirmation runs: the confirmation seeds [1] are tuning seeds") !=
                       std::string::npos;
  EXPECT_TRUE(said);
}

TEST_F(TuningTest, AnInteriorStartOptimumNeedsNoExtension) {
  const int64_t id = submit(std::string(kStart) + ", confirm_seeds: [1, 2]}");
  run_to_end(id, valley(0.002));
  EXPECT_EQ(tried(id), (std::vector<double>{0.001, 0.002, 0.004}));
  EXPECT_EQ(results(id).ablation.at(0).lr.extensions, 0);
  EXPECT_EQ(results(id).ablation.at(0).confirmation_runs, 1);
}

TEST_F(TuningTest, MaxExtensionsStopsTheSearchAndTheResultsSaySo) {
  const int64_t id = submit("{start: [0.001, 0.002], max_extensions: 2, confirm_seeds: [1, 2]}");
  run_to_end(id, valley(1.0));
  EXPECT_EQ(tried(id), (std::vector<double>{0.001, 0.002, 0.004, 0.008}));
  const SweepResults r = results(id);
  const AblationRow& row = r.ablation.at(0);
  EXPECT_DOUBLE_EQ(row.lr.lr, 0.008);
  EXPECT_TRUE(row.lr.at_grid_edge);
  EXPECT_TRUE(row.lr.extensions_exhausted);
  EXPECT_EQ(row.confirmation_runs, 1);  // confirmed anyway, and flagged
  bool said = false;
  for (const std::string& note : r.notes) said = said || note.find("Not bracketed") != note.npos;
  EXPECT_TRUE(said);
  for (const JobRow& j : store_->sweeps.jobs(id)) {
    if (j.role == sweep_file::JobRole::kConfirmation) {
      EXPECT_NE(j.reason.find("not bracketed"), std::string::npos) << j.reason;
    }
  }
}

TEST_F(TuningTest, ADivergedEdgeCountsAsWorse) {
  // The loss keeps falling with lr, but runs above 0.005 diverge: 0.004 is the best stable lr.
  const int64_t id = submit(std::string(kStart) + "}");
  run_to_end(id, valley(1.0, /*diverge_above=*/0.005));
  EXPECT_EQ(tried(id), (std::vector<double>{0.001, 0.002, 0.004, 0.008}));
  const AblationRow& row = results(id).ablation.at(0);
  EXPECT_DOUBLE_EQ(row.lr.lr, 0.004);
  EXPECT_FALSE(row.lr.at_grid_edge);
}

TEST_F(TuningTest, EveryTuningRunDivergedExtendsDownward) {
  const int64_t id = submit(std::string(kStart) + "}");
  run_to_end(id, valley(0.0001, /*diverge_above=*/0.0007));
  const std::vector<double> lrs = tried(id);
  EXPECT_EQ(lrs.front(), 6.25e-5);
  EXPECT_DOUBLE_EQ(results(id).ablation.at(0).lr.lr, 0.000125);
}

TEST_F(TuningTest, EveryRowIsTunedOnItsOwnAndConfirmedOnTheSameSeeds) {
  const int64_t id = submit(std::string(kStart) + ", confirm_seeds: [1, 2, 3]}",
                            "grid: {optimizer.name: [adamw, muon]}\n");
  // Muon's optimum is 8x AdamW's, as in the paper's sweeps.
  run_to_end(id, [](double lr, int64_t seed) { return valley(0.0005)(lr, seed); });
  for (const AblationRow& row : results(id).ablation) {
    EXPECT_FALSE(row.lr.at_grid_edge) << row.label;
    EXPECT_EQ(row.runs, 3) << row.label;
  }
}

TEST_F(TuningTest, ConfirmationSeedsNeverChangeTheChoice) {
  // Seeds 2 and 3 are much worse at every lr: a 3-seed mean at the chosen lr would lose to a
  // 1-seed mean elsewhere if confirmation runs took part in the selection.
  const int64_t id = submit(std::string(kStart) + ", confirm_seeds: [1, 2, 3]}");
  run_to_end(id, [](double lr, int64_t seed) {
    Outcome o = valley(0.002)(lr, seed);
    o.loss += seed > 1 ? 1.0 : 0.0;
    return o;
  });
  const AblationRow& row = results(id).ablation.at(0);
  EXPECT_DOUBLE_EQ(row.lr.lr, 0.002);
  EXPECT_EQ(row.confirmation_runs, 2);
}

TEST_F(TuningTest, ConfirmationSeedsApartFromTheTuningSeedMeasureWithoutIt) {
  // Seed 1 chooses and is 1.0 worse everywhere: with confirm_seeds [2, 3] the table averages
  // seeds 2 and 3 only, so the seed that chose the lr is not credited to it.
  const int64_t id = submit(std::string(kStart) + ", confirm_seeds: [2, 3]}");
  run_to_end(id, [](double lr, int64_t seed) {
    Outcome o = valley(0.002)(lr, seed);
    o.loss += seed == 1 ? 1.0 : 0.0;
    return o;
  });
  const SweepResults r = results(id);
  const AblationRow& row = r.ablation.at(0);
  EXPECT_DOUBLE_EQ(row.lr.lr, 0.002);
  EXPECT_EQ(row.runs, 2);
  EXPECT_EQ(row.tuning_runs, 0);
  EXPECT_EQ(row.confirmation_runs, 2);
  EXPECT_EQ(row.final_val_loss.n, 2);
  EXPECT_NEAR(row.final_val_loss.mean, 3.0025, 1e-9);  // seeds 2 and 3, not seed 1's 4.001
  bool said = false;
  for (const std::string& note : r.notes)
    said = said || note.find("average the confirmation seeds' runs") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST_F(TuningTest, RAtATunedRowsNeighbouringLrsPairsTheTuningSeedTheOnlyOneRunThere) {
  // R_L(B) pairs the confirmation seeds 2 and 3 at the chosen lrs; a neighbouring lr ran seed 1
  // only, so R there pairs seed 1 (the tuning runs) instead of showing nothing.
  const int64_t id = submit(std::string(kStart) + ", confirm_seeds: [2, 3]}",
                            "grid: {optimizer.name: [adamw, muon]}\n", "targets: [3.5]\n");
  run_to_end(id, [](double lr, int64_t seed) {
    Outcome o = valley(0.002)(lr, seed);
    o.tokens_to_target = 1000 * (1 + std::abs(std::log2(lr / 0.002))) * (1 + 0.01 * double(seed));
    return o;
  });
  const SweepResults r = results(id);
  ASSERT_EQ(r.ratios.size(), 1u);
  const RatioPoint& p = r.ratios[0];
  EXPECT_EQ(p.ratio.pairs, 2);  // seeds 2 and 3
  EXPECT_NEAR(p.ratio.value, 1.0, 1e-9);
  ASSERT_EQ(p.neighbours.size(), 4u);  // 0.001 and 0.004 on each side
  for (const NeighbourRatio& n : p.neighbours) {
    EXPECT_EQ(n.ratio.pairs, 1) << n.side << " " << n.lr;
    // One step off the optimum costs that side 2x the tokens at seed 1.
    EXPECT_NEAR(n.ratio.value, n.side == "adamw" ? 2.0 : 0.5, 1e-9) << n.side << " " << n.lr;
  }
}

TEST_F(TuningTest, TelescopingTunesEachWidthOnAShrunkGridAroundThePreviousChoice) {
  // Stage 0 at width 32 from a 5-value start grid (h0 = 2 steps each side); shrink 2: stages 1
  // and 2 have 3 values (h = 1) centred on the previous stage's choice. The optimum moves with
  // width (as it does without muP): 0.004 at 32, 0.008 at 64, 0.016 at 128.
  std::map<int, int> runs_by_width;
  const int64_t moving = submit(
      "{start: [0.001, 0.002, 0.004, 0.008, 0.016], max_extensions: 3, confirm_seeds: [1, 2, 3],"
      " telescope: {widths: [32, 64, 128], shrink: 2, final_seeds: [1, 2]}}");
  for (int round = 0; round < 40 && store_->sweeps.sweep(moving)->planning_open; ++round) {
    while (auto job = store_->workers.acquire_job("w", {"cpu", 1, 0}, ++now_, 60000)) {
      const json config = json::parse(job->config);
      const int width = config["model"]["hidden"].get<int>();
      const double optimum = 0.004 * width / 32;
      const Outcome o = valley(optimum)(config["optimizer"]["lr"].get<double>(), job->seed);
      ++runs_by_width[width];
      ASSERT_EQ(store_->workers.complete_job({job->id, job->attempt}, JobState::kSucceeded, "",
                                             summary_of(o), ++now_),
                Fence::kOk);
    }
    planner_->plan(moving, ++now_);
  }
  ASSERT_FALSE(store_->sweeps.sweep(moving)->planning_open);
  EXPECT_EQ(runs_by_width[32], 5);  // the start grid, interior at 0.004
  // The last two widths on both final seeds: 0.002, 0.004, 0.008, best at the edge, then 0.016;
  // 0.008..0.032 at 128, then confirmation seed 3.
  EXPECT_EQ(runs_by_width[64], (3 + 1) * 2);
  EXPECT_EQ(runs_by_width[128], (3 + 1) * 2 + 1);
  const SweepResults r = results(moving);
  ASSERT_EQ(r.ablation.size(), 3u);  // one row per width
  std::map<int, double> chosen;
  for (const JobRow& j : store_->sweeps.jobs(moving)) {
    const json config = json::parse(j.config);
    EXPECT_EQ(j.stage, config["model"]["hidden"].get<int>() == 32   ? 0
                       : config["model"]["hidden"].get<int>() == 64 ? 1
                                                                    : 2)
        << j.label;
    EXPECT_EQ(config["model"]["hidden"].get<int>() / config["model"]["n_head"].get<int>(), 16)
        << "the head size stays";
    if (j.role == sweep_file::JobRole::kConfirmation) {
      EXPECT_EQ(j.stage, 2) << "confirmation seeds run at the last width only";
    }
  }
  for (const AblationRow& row : r.ablation) {
    EXPECT_FALSE(row.lr.at_grid_edge) << row.label;
    chosen[int(row.label.find("width=32") != std::string::npos   ? 32
               : row.label.find("width=64") != std::string::npos ? 64
                                                                 : 128)] = row.lr.lr;
  }
  EXPECT_DOUBLE_EQ(chosen[32], 0.004);
  EXPECT_DOUBLE_EQ(chosen[64], 0.008);
  EXPECT_DOUBLE_EQ(chosen[128], 0.016);
}

// The points (lr, weight decay) the row of `optimizer` tried, in the results' order.
std::vector<std::pair<double, double>> points_tried(const SweepResults& r) {
  std::vector<std::pair<double, double>> out;
  for (const LrPoint& p : r.lr_sensitivity) out.push_back({p.lr, p.weight_decay});
  return out;
}

TEST_F(TuningTest, AnOptimumInLrAndWeightDecayIsBracketedAlongBothAxes) {
  // Start: 3 lrs x 3 weight decays, best (0.002, 0.1) at the weight decay's upper edge. The
  // optimum is at weight decay 0.2: 0.2 is added at the best's lr; the best there has no lr
  // neighbour at its weight decay, nor a larger weight decay: three more points bracket it.
  const int64_t id = submit(
      "{start: [0.001, 0.002, 0.004], weight_decay: {start: [0.025, 0.05, 0.1]},"
      " max_extensions: 4, confirm_seeds: [1, 2]}");
  EXPECT_EQ(store_->sweeps.jobs(id).size(), 9u);
  run_to_end(id, bowl(0.002, 0.2));
  const SweepResults r = results(id);
  ASSERT_EQ(r.ablation.size(), 1u) << "the weight decay is a coordinate of the row, not a setting";
  const AblationRow& row = r.ablation.at(0);
  EXPECT_DOUBLE_EQ(row.lr.lr, 0.002);
  EXPECT_DOUBLE_EQ(row.lr.weight_decay, 0.2);
  EXPECT_TRUE(row.lr.bracketed);
  EXPECT_FALSE(row.lr.at_grid_edge);
  EXPECT_EQ(row.lr.extensions, 4);
  EXPECT_EQ(row.lr.candidates, 13);
  const auto tried = points_tried(r);
  for (const auto& point : std::vector<std::pair<double, double>>{
           {0.002, 0.2}, {0.002, 0.4}, {0.001, 0.2}, {0.004, 0.2}})
    EXPECT_NE(std::find(tried.begin(), tried.end(), point), tried.end())
        << point.first << ", " << point.second;
  // Each point is its own cell: the same lr at another weight decay is another grid point.
  const std::set<std::pair<double, double>> distinct(tried.begin(), tried.end());
  EXPECT_EQ(distinct.size(), 13u);
  for (const JobRow& j : store_->sweeps.jobs(id)) {
    const json o = json::parse(j.config)["optimizer"];
    if (j.role == sweep_file::JobRole::kConfirmation) {
      EXPECT_DOUBLE_EQ(o["lr"].get<double>(), 0.002);
      EXPECT_DOUBLE_EQ(o["weight_decay"].get<double>(), 0.2);
      EXPECT_EQ(j.label, "baseline/lr=0.002/weight_decay=0.2");
      EXPECT_NE(j.reason.find("lr 0.002, weight decay 0.2 (bracketed)"), std::string::npos)
          << j.reason;
    }
    if (j.role == sweep_file::JobRole::kExtension &&
        std::abs(o["weight_decay"].get<double>() - 0.4) < 1e-12) {
      EXPECT_NE(j.reason.find("to a larger weight decay: best at edge lr 0.002, weight decay 0.2"),
                std::string::npos)
          << j.reason;
    }
  }
}

TEST_F(TuningTest, TelescopingOverLrAndWeightDecayRefinesEachStageAroundThePreviousChoice) {
  // Stage 0 at width 32: 5 lrs x 3 weight decays. shrink 4, refine 2: stage 1 at 64 is a cross
  // of one step each side, the lr step sqrt(2) and the weight-decay step 2 (factor 4, refined).
  const int64_t id = submit(
      "{start: [0.001, 0.002, 0.004, 0.008, 0.016], weight_decay: {start: [0.025, 0.1, 0.4],"
      " factor: 4}, max_extensions: 3,"
      " telescope: {widths: [32, 64], shrink: 4, refine: 2, final_seeds: [1, 2]}}");
  run_to_end(id, bowl(0.004, 0.1));
  std::set<std::pair<double, double>> stage1;
  int stage1_runs = 0;
  for (const JobRow& j : store_->sweeps.jobs(id)) {
    if (j.stage != 1 || j.role != sweep_file::JobRole::kTuning) continue;
    const json o = json::parse(j.config)["optimizer"];
    stage1.insert({o["lr"].get<double>(), o["weight_decay"].get<double>()});
    ++stage1_runs;
  }
  const double r2 = std::sqrt(2.0);
  EXPECT_EQ(stage1,
            (std::set<std::pair<double, double>>{{sweep_file::rounded_value(0.004 / r2), 0.1},
                                                 {0.004, 0.05},
                                                 {0.004, 0.1},
                                                 {0.004, 0.2},
                                                 {sweep_file::rounded_value(0.004 * r2), 0.1}}));
  EXPECT_EQ(stage1_runs, 10) << "both final seeds";
  for (const AblationRow& row : results(id).ablation) {
    EXPECT_DOUBLE_EQ(row.lr.lr, 0.004) << row.label;
    EXPECT_DOUBLE_EQ(row.lr.weight_decay, 0.1) << row.label;
    EXPECT_TRUE(row.lr.bracketed) << row.label;
  }
}

TEST_F(TuningTest, EarlyStoppingStopsTheWorstTuningRunsAtARungAndNothingElse) {
  const int64_t id = submit(
      "{start: [0.001, 0.002, 0.004, 0.008], confirm_seeds: [1, 2],"
      " early_stop: {rungs: [0.5], stop_fraction: 0.5, min_runs: 3}}");
  const std::vector<JobRow> running = acquire_all();
  ASSERT_EQ(running.size(), 4u);
  // Each run reports its evaluation at half its budget, in increasing lr: 0.008, the last of
  // the start grid to get there, is the worst of 4, and only it is among the worst half.
  std::vector<bool> stopped;
  for (const JobRow& job : running) {
    report_half(job, valley(0.002)(lr_of(job), 1).loss);
    stopped.push_back(planner_->consider_stopping(job.id, {5}, ++now_));
    // Judged once per rung: the same report again changes nothing.
    EXPECT_FALSE(planner_->consider_stopping(job.id, {}, ++now_));
  }
  EXPECT_EQ(stopped, (std::vector<bool>{false, false, false, true}));
  // The worker is told to stop it, reports it cancelled, and it is stored as stopped.
  const std::set<int64_t> told = told_to_stop(running);
  EXPECT_EQ(told, (std::set<int64_t>{running[3].id}));
  finish(running, told, valley(0.002));
  const JobRow stopped_job = *store_->sweeps.job(running[3].id);
  EXPECT_EQ(stopped_job.state, JobState::kStopped);
  EXPECT_NE(stopped_job.message.find("early stopping: val loss"), std::string::npos)
      << stopped_job.message;
  EXPECT_TRUE(is_terminal(JobState::kStopped));
  run_to_end(id, valley(0.002));
  const SweepResults r = results(id);
  const AblationRow& row = r.ablation.at(0);
  EXPECT_DOUBLE_EQ(row.lr.lr, 0.002);
  EXPECT_FALSE(row.lr.at_grid_edge);
  EXPECT_EQ(row.counts.stopped, 0) << "the measured cell has no stopped run";
  ASSERT_TRUE(r.tuning.has_value());
  EXPECT_EQ(r.tuning->stopped_runs, 1);
  // It trained 5 of its 10 steps: the other 5 x 256 tokens x 1,000 FLOPs per token are saved.
  EXPECT_DOUBLE_EQ(r.tuning->stopped_flops_saved, 5.0 * 256 * 1000);
  // Confirmation runs are never judged.
  for (const JobRow& j : store_->sweeps.jobs(id)) {
    if (j.role == sweep_file::JobRole::kConfirmation) {
      EXPECT_FALSE(planner_->consider_stopping(j.id, {5}, ++now_));
    }
  }
}

TEST_F(TuningTest, PlanningTwiceAddsNothingTwice) {
  const int64_t id = submit(std::string(kStart) + "}");
  run_pending(valley(0.032));
  const int added = planner_->plan(id, ++now_);
  EXPECT_EQ(added, 1);
  EXPECT_EQ(planner_->plan(id, ++now_), 0);
  TuningPlanner other(store_->sweeps,
                      store_->metrics);  // a second planner (another thread) sees the same decision
  EXPECT_EQ(other.plan(id, ++now_), 0);
  // Two planners at once: the plan keys keep it to one job.
  run_pending(valley(0.032));
  TuningPlanner a(store_->sweeps, store_->metrics), b(store_->sweeps, store_->metrics);
  int added_a = 0, added_b = 0;
  std::thread ta([&] { added_a = a.plan(id, now_ + 1); });
  std::thread tb([&] { added_b = b.plan(id, now_ + 2); });
  ta.join();
  tb.join();
  EXPECT_EQ(added_a + added_b, 1);
  EXPECT_EQ(store_->sweeps.jobs(id).size(), 5u);
}

TEST_F(TuningTest, ARestartBetweenACompletionAndItsPlanningLosesNothing) {
  const int64_t id = submit(std::string(kStart) + ", confirm_seeds: [1, 2]}");
  run_pending(valley(0.002));  // completions stored; the coordinator dies before planning
  // Every job is final, yet the sweep is not finished: its planning is open.
  EXPECT_EQ(store_->sweeps.sweep(id)->state(), SweepState::kRunning);
  open();  // restart: what coordinator_main does before serving
  EXPECT_EQ(planner_->plan_open_sweeps(++now_), 1);  // the confirmation seed
  EXPECT_EQ(planner_->plan_open_sweeps(++now_), 0);
  run_to_end(id, valley(0.002));
  EXPECT_EQ(store_->sweeps.sweep(id)->state(), SweepState::kFinished);
  EXPECT_EQ(store_->sweeps.jobs(id).size(), 4u);
}

TEST_F(TuningTest, ACancelledSweepGetsNoMoreJobs) {
  const int64_t id = submit(std::string(kStart) + "}");
  store_->sweeps.cancel_sweep(id, ++now_);
  EXPECT_FALSE(store_->sweeps.sweep(id)->planning_open);
  EXPECT_EQ(planner_->plan(id, ++now_), 0);
  EXPECT_EQ(store_->sweeps.sweep(id)->state(), SweepState::kCancelled);
}

}  // namespace
