// The tuning planner's test bench (server/tuning/planner.h) on a real SQLite store: a sweep's
// runs "train" instantly with a synthetic loss-vs-lr table, the planner adds what it decides,
// until its planning closes. Shared by tuning_planner_test.cpp and bracketing_test.cpp.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "scratch_dir.h"
#include "server/results/analysis.h"
#include "server/storage/store.h"
#include "server/tuning/planner.h"
#include "trainer_core/train/run_records.h"

namespace tuning_test {

using namespace server;
using nlohmann::json;

// What a run at `lr` ends with: a final val loss, or divergence.
struct Outcome {
  double loss = 0;
  bool diverged = false;
  double tokens_to_target = 0;  // > 0: the run crossed the sweep's target after these tokens
};
using LossTable = std::function<Outcome(double lr, int64_t seed)>;
// What a run at the point (lr, weight decay) ends with, for sweeps that tune both.
using PointTable = std::function<Outcome(double lr, double wd, int64_t seed)>;
inline PointTable on_points(const LossTable& table) {
  return [table](double lr, double, int64_t seed) { return table(lr, seed); };
}

// Loss with its minimum at (lr_optimum, wd_optimum), quadratic in log2 of each; seeds add a small
// offset so that seeds differ.
inline PointTable bowl(double lr_optimum, double wd_optimum) {
  return [=](double lr, double wd, int64_t seed) {
    const double a = std::log2(lr / lr_optimum), b = std::log2(wd / wd_optimum);
    return Outcome{3.0 + 0.05 * a * a + 0.02 * b * b + 0.001 * double(seed), false};
  };
}

// Loss with its minimum at `optimum`, quadratic in log2(lr) (the usual shape of an lr sweep);
// seeds add a small offset so that seeds differ.
inline LossTable valley(double optimum, double diverge_above = 1e9) {
  return [=](double lr, int64_t seed) {
    const double d = std::log2(lr / optimum);
    return Outcome{3.0 + 0.05 * d * d + 0.001 * double(seed), lr > diverge_above};
  };
}

inline std::string summary_of(const Outcome& o) {
  trainer_core::RunSummary s;
  s.final_val_loss = o.diverged ? std::nan("") : o.loss;
  s.final_val_ppl = std::exp(s.final_val_loss);
  s.tokens_seen = 2560;  // max_steps 10 x batch_tokens 256
  s.flops.train_per_token = 1000;
  if (o.tokens_to_target > 0)
    s.targets.push_back({3.5, true, o.tokens_to_target / 256, o.tokens_to_target, 1.0, 1.0});
  return to_json(s).dump();
}

class TuningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_test_dir("tuning_test");
    open();
  }
  void TearDown() override {
    planner_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open() {  // (again): what a restarted coordinator does
    planner_.reset();
    store_ = std::make_unique<Store>((dir_ / "s.db").string());
    planner_ = std::make_unique<TuningPlanner>(store_->sweeps, store_->metrics);
    WorkerRow w;
    w.id = "w";
    w.hostname = "h";
    w.backend = "cpu";
    w.slots = 1;
    w.devices_json = "[]";
    store_->workers.register_worker(w, {}, now_, 60000);
  }
  int64_t submit(const std::string& tune, const std::string& grid = "",
                 const std::string& more = "") {
    const std::string spec =
        "name: tuned\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
        "micro_batch: 8}}\n" +
        grid + "tune: " + tune + "\n" + more;
    const sweep_file::SweepPlan plan = sweep_file::plan_sweep(spec, "t.yaml", 1000);
    EXPECT_TRUE(plan.problems.empty()) << plan.problems.front().to_string();
    return store_->sweeps.create_sweep(plan, spec, now_);
  }
  // Runs every pending job to its outcome (no planning). Returns how many ran.
  int run_pending(const LossTable& table) { return run_pending(on_points(table)); }
  int run_pending(const PointTable& table) {
    int n = 0;
    while (auto job = store_->workers.acquire_job("w", {"cpu", 1, 0}, ++now_, 60000)) {
      const json config = json::parse(job->config);
      const Outcome o = table(config["optimizer"]["lr"].get<double>(),
                              config["optimizer"].value("weight_decay", 0.1), job->seed);
      EXPECT_EQ(
          store_->workers.complete_job({job->id, job->attempt},
                                       o.diverged ? JobState::kDiverged : JobState::kSucceeded, "",
                                       summary_of(o), ++now_),
          Fence::kOk);
      ++n;
    }
    return n;
  }
  // Every pending job, acquired by the worker (and then running).
  std::vector<JobRow> acquire_all() {
    std::vector<JobRow> running;
    while (auto job = store_->workers.acquire_job("w", {"cpu", 1, 0}, ++now_, 60000))
      running.push_back(*job);
    return running;
  }
  // Stores `job`'s evaluation at half its budget (step 5 of 10: 1,280 of 2,560 tokens).
  void report_half(const JobRow& job, double val_loss) {
    const EvalRow half{5, val_loss, 1280, 1};
    ASSERT_EQ(store_->metrics.store_metrics({job.id, job.attempt}, {}, {half}, 0, ++now_),
              Fence::kOk);
  }
  // The ids of `running` that the worker is told to stop when it reports them all at step 5.
  std::set<int64_t> told_to_stop(const std::vector<JobRow>& running) {
    std::vector<std::pair<JobRef, int64_t>> progress;
    for (const JobRow& job : running) progress.push_back({{job.id, job.attempt}, 5});
    std::set<int64_t> told;
    for (const auto& c : store_->workers.heartbeat("w", progress, ++now_, 60000).cancel)
      told.insert(c.job_id);
    return told;
  }
  // Ends every run of `running`: those in `stopping` as the worker reports a stop (stored as
  // STOPPED), the others with their outcome from `table`.
  void finish(const std::vector<JobRow>& running, const std::set<int64_t>& stopping,
              const LossTable& table) {
    for (const JobRow& job : running) {
      const bool stop = stopping.count(job.id) > 0;
      ASSERT_EQ(store_->workers.complete_job(
                    {job.id, job.attempt}, stop ? JobState::kCancelled : JobState::kSucceeded,
                    "cancelled", stop ? "" : summary_of(table(lr_of(job), job.seed)), ++now_),
                Fence::kOk);
    }
  }
  static double lr_of(const JobRow& job) {
    return json::parse(job.config)["optimizer"]["lr"].get<double>();
  }
  // Runs and plans until the planner closes the sweep (a bounded number of rounds).
  void run_to_end(int64_t sweep_id, const LossTable& table) {
    run_to_end(sweep_id, on_points(table));
  }
  void run_to_end(int64_t sweep_id, const PointTable& table) {
    for (int round = 0; round < 40 && store_->sweeps.sweep(sweep_id)->planning_open; ++round) {
      run_pending(table);
      planner_->plan(sweep_id, ++now_);
    }
    run_pending(table);
    ASSERT_FALSE(store_->sweeps.sweep(sweep_id)->planning_open) << "planning never closed";
  }
  SweepResults results(int64_t sweep_id) {
    return analyze_sweep(*store_->sweeps.sweep(sweep_id), store_->sweeps.jobs(sweep_id),
                         store_->metrics.summaries(sweep_id));
  }
  // The lrs the row of `optimizer` tried, in increasing order.
  std::vector<double> tried(int64_t sweep_id, const std::string& optimizer = "adamw") {
    std::vector<double> out;
    for (const LrPoint& p : results(sweep_id).lr_sensitivity)
      if (p.optimizer == optimizer) out.push_back(p.lr);
    return out;
  }
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<TuningPlanner> planner_;
  int64_t now_ = 1000;
};

}  // namespace tuning_test
