// Budget ladders and forks: the sweep file's expansion (sweep_file/budget_ladder.h) and the
// coordinator's store of forks (server/storage/fork_rows.h) on a real SQLite file: a fork waits
// for its parent's kept checkpoint, ends with its parent, and stores only its own steps while its
// curve reads through its parent's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "server/storage/store.h"
#include "step_points.h"
#include "store_with_worker.h"
#include "sweep_file/sweep_spec.h"
#include "trainer_core/config/train_config.h"
#include "trainer_core/optim/schedule.h"

using namespace server;
using namespace sweep_file;

namespace {

std::string ladder_sweep(const std::string& budgets, const std::string& schedule = "") {
  return "name: ladder\nbase:\n  model: {preset: micro}\n  optimizer: {name: adamw, lr: 1.0e-3}\n"
         "  training: {batch_tokens: 256, micro_batch: 8, eval_every: 10}\n" +
         schedule + "seeds: [1, 2]\nbudgets: " + budgets + "\n";
}

TEST(BudgetLadder, CooldownRungsForkTheTrunkAtTheirDecayStartWithTheTrunksSchedule) {
  const SweepPlan plan = plan_sweep(
      ladder_sweep("{tokens: [10240, 20480, 40960], via: cooldown}",
                   "  schedule: {kind: cosine, decay_fraction: 0.25, warmup_steps: 4}\n"),
      "t.yaml", 100);
  ASSERT_TRUE(plan.problems.empty()) << plan.problems[0].to_string();
  ASSERT_EQ(plan.jobs.size(), 6u) << "three rungs per seed";
  const ExpandedJob& trunk = plan.jobs[0];
  EXPECT_EQ(trunk.label, "baseline/tokens=40960");
  EXPECT_EQ(trunk.max_steps, 160);
  EXPECT_FALSE(trunk.fork);
  EXPECT_EQ(trunk.config["schedule"]["kind"], "wsd") << "cooldown ladders decay with WSD";
  for (int rung = 1; rung <= 2; ++rung) {
    const ExpandedJob& cooldown = plan.jobs[size_t(rung)];
    ASSERT_TRUE(cooldown.fork) << cooldown.label;
    EXPECT_EQ(cooldown.fork->parent_index, 0);
    EXPECT_EQ(cooldown.seed, trunk.seed);
    const int64_t steps = cooldown.max_steps, decay = steps / 4;
    EXPECT_EQ(cooldown.fork->branch_step, steps - decay) << cooldown.label;
    EXPECT_EQ(cooldown.fork->branch_tokens, (steps - decay) * 256);
    EXPECT_EQ(cooldown.fork->changes["training.max_tokens"], steps * 256);
    // Up to the branch step the rung's lr is the trunk's, step for step: the fork continues the
    // trunk's own training.
    const auto rung_schedule =
        trainer_core::lr_schedule_of(trainer_core::train_config_from_json(cooldown.config));
    const auto trunk_schedule =
        trainer_core::lr_schedule_of(trainer_core::train_config_from_json(trunk.config));
    for (int step = 0; step < cooldown.fork->branch_step; ++step)
      ASSERT_EQ(trainer_core::lr_multiplier(rung_schedule, step),
                trainer_core::lr_multiplier(trunk_schedule, step))
          << cooldown.label << " step " << step;
    EXPECT_LT(trainer_core::lr_multiplier(rung_schedule, int(cooldown.fork->branch_step)),
              trainer_core::lr_multiplier(trunk_schedule, int(cooldown.fork->branch_step)))
        << "its cooldown starts at the branch step";
  }
  EXPECT_EQ(plan.jobs[3].fork ? -1 : 3, 3) << "the second seed has its own trunk";
  EXPECT_EQ(plan.jobs[4].fork->parent_index, 3);
}

TEST(BudgetLadder, SeparateRungsAreFullRunsWithOneWarmupInSteps) {
  const SweepPlan plan = plan_sweep(ladder_sweep("{tokens: [25600, 51200], via: separate}",
                                                 "  schedule: {warmup_fraction: 0.1}\n"),
                                    "t.yaml", 100);
  ASSERT_TRUE(plan.problems.empty()) << plan.problems[0].to_string();
  ASSERT_EQ(plan.jobs.size(), 4u);
  for (const ExpandedJob& job : plan.jobs) {
    EXPECT_FALSE(job.fork) << job.label;
    EXPECT_EQ(job.config["schedule"]["kind"], "cosine") << "the base's own schedule";
    EXPECT_EQ(job.config["schedule"]["warmup_steps"], 20)
        << "a tenth of the largest rung's 200 steps, for every rung";
  }
}

TEST(BudgetLadder, BadLaddersAreRefusedByPath) {
  // The first problem of a ladder of `budgets`, the file ending in `more`.
  auto first_problem = [](const std::string& budgets, const std::string& more = "") {
    const SweepPlan plan = plan_sweep(ladder_sweep(budgets) + more, "t.yaml", 100);
    return plan.problems.empty() ? std::string("(none)") : plan.problems[0].to_string();
  };
  EXPECT_NE(first_problem("{tokens: [20480, 10240]}").find("budgets.tokens[1]"), std::string::npos);
  EXPECT_NE(first_problem("{tokens: [10240]}").find("budgets.tokens"), std::string::npos);
  EXPECT_NE(first_problem("{tokens: [10240, 20000]}").find("budgets.tokens[1]: must be a multiple"),
            std::string::npos);
  EXPECT_NE(first_problem("{tokens: [10240, 20480], via: sideways}").find("budgets.via"),
            std::string::npos);
  EXPECT_NE(first_problem("{tokens: [10240, 20480], vai: cooldown}").find("budgets.vai"),
            std::string::npos);
  EXPECT_NE(first_problem("{tokens: [10240, 20480]}", "analysis: {targets: from_data}\n")
                .find("analysis.targets: from_data is not for budget ladders"),
            std::string::npos);
  EXPECT_NE(first_problem("{tokens: [10240, 20480]}", "analysis: {tables_at_budget: 15000}\n")
                .find("analysis.tables_at_budget: 15000 is not one of the sweep's budgets.tokens"),
            std::string::npos);
  EXPECT_NE(first_problem("{tokens: [10240, 20480, 40960]}", "analysis: {fit_from_tokens: 15000}\n")
                .find("analysis.fit_from_tokens: 15000 is not one of the sweep's budgets.tokens"),
            std::string::npos);
  EXPECT_NE(first_problem("{tokens: [10240, 20480, 40960]}", "analysis: {fit_from_tokens: 20480}\n")
                .find("analysis.fit_from_tokens: leaves fewer than 3 budgets"),
            std::string::npos);
  // A 40-step rung whose 8-step cooldown would begin inside a 35-step warm-up.
  const SweepPlan plan = plan_sweep(
      ladder_sweep("{tokens: [10240, 20480]}", "  schedule: {warmup_steps: 35}\n"), "t.yaml", 100);
  ASSERT_FALSE(plan.problems.empty());
  EXPECT_EQ(
      plan.problems[0].to_string(),
      "budgets.tokens[0]: its cooldown would start at step 32, inside the warm-up of 35 steps");
}

std::string forked_sweep(const std::string& forks) {
  return "name: f\nbase:\n  model: {preset: micro}\n  optimizer: {name: adamw, lr: 1.0e-3}\n"
         "  training: {max_steps: 40, batch_tokens: 256, micro_batch: 8, eval_every: 10}\n"
         "seeds: [1, 2]\nforks: " +
         forks + "\n";
}

TEST(ForkSpec, AForkBranchesOffEveryRunOfItsRowWithWhatItChanges) {
  const SweepPlan plan = plan_sweep(
      forked_sweep(
          "[{from: baseline, at_tokens: 5120, label: same}, "
          "{from: baseline/same, at_tokens: 7680, label: lr, set: {optimizer.lr: 2.0e-3}}]"),
      "t.yaml", 100);
  ASSERT_TRUE(plan.problems.empty()) << plan.problems[0].to_string();
  ASSERT_EQ(plan.jobs.size(), 6u) << "two seeds, each with a fork and a fork of the fork";
  const ExpandedJob& same = plan.jobs[2];
  EXPECT_EQ(same.label, "baseline/same");
  ASSERT_TRUE(same.fork);
  EXPECT_EQ(same.fork->parent_index, 0);
  EXPECT_EQ(same.fork->branch_step, 20);
  EXPECT_EQ(same.fork->changes, nlohmann::json::object()) << "a fork that changes nothing";
  EXPECT_EQ(same.config_hash, plan.jobs[0].config_hash) << "the same run as its parent";
  const ExpandedJob& lr = plan.jobs[4];
  EXPECT_EQ(lr.label, "baseline/same/lr");
  ASSERT_TRUE(lr.fork);
  EXPECT_EQ(lr.fork->parent_index, 2) << "a fork of the fork";
  EXPECT_EQ(lr.fork->branch_step, 30);
  EXPECT_EQ(lr.fork->changes,
            nlohmann::json({{"optimizer.lr", 2.0e-3}, {"optimizer.adamw_lr", 2.0e-3}}))
      << "as resolved: adamw_lr follows lr where the file sets no other";
}

TEST(ForkSpec, WhatAForkMayNotDoIsRefusedByPath) {
  auto first_problem = [](const std::string& forks) {
    const SweepPlan plan = plan_sweep(forked_sweep(forks), "t.yaml", 100);
    return plan.problems.empty() ? std::string("(none)") : plan.problems[0].to_string();
  };
  EXPECT_EQ(first_problem("[{from: nowhere, at_tokens: 5120}]"),
            "forks[0].from: no row is labelled 'nowhere'");
  EXPECT_EQ(
      first_problem("[{from: baseline, at_tokens: 5000}]"),
      "forks[0].at_tokens: must be a positive multiple of the row's training.batch_tokens (256)");
  EXPECT_EQ(first_problem("[{from: baseline, at_tokens: 20480}]"),
            "forks[0].at_tokens: is past the row's budget of 10240 tokens");
  EXPECT_EQ(first_problem("[{from: baseline, at_tokens: 10240}]"),
            "forks[0].at_tokens: leaves the fork nothing to train: it would start at step 40 of "
            "its 40");
  EXPECT_NE(first_problem("[{from: baseline, at_tokens: 5120, set: {model.hidden: 64}}]")
                .find("forks[0].set.model.hidden: the parent has"),
            std::string::npos);
  EXPECT_NE(first_problem("[{from: baseline, at_tokens: 5120, set: {seed: 9}}]")
                .find("forks[0].set.seed"),
            std::string::npos);
  EXPECT_EQ(first_problem("[{from: baseline, at_tokens: 5120, label: a/b}]"),
            "forks[0].label: may not contain '/'");
  EXPECT_EQ(first_problem("[{from: baseline, at_tokns: 5120}]").find("forks[0].at_tokns"), 0u);
}

class ForkStoreTest : public StoreWithWorker {
 protected:
  ForkStoreTest() : StoreWithWorker("fork_test") {}
  // One seed's ladder of 40 and 80 steps: the trunk (80) and a fork branching at step 32.
  int64_t submit_ladder() {
    const std::string spec =
        "name: t\nbase: {model: {preset: micro}, training: {batch_tokens: "
        "256, micro_batch: 8, eval_every: 10}}\nmax_attempts: 1\n"
        "budgets: {tokens: [10240, 20480]}\n";
    const SweepPlan plan = plan_sweep(spec, "t.yaml", 100);
    EXPECT_TRUE(plan.problems.empty()) << plan.problems[0].to_string();
    return store_->sweeps.create_sweep(plan, spec, 1000);
  }
  std::optional<JobRow> acquire(int64_t now_ms = 2000) {
    return store_->workers.acquire_job("w", {"cpu", 4, 0}, now_ms, 60000);
  }
  void report_steps(const JobRow& job, int64_t first, int64_t last, double loss) {
    std::vector<orchestrator::v1::MetricPoint> points;
    for (int64_t s = first; s <= last; ++s) points.push_back(step_point(s, loss - 0.001 * s));
    ASSERT_EQ(store_->metrics.store_metrics({job.id, job.attempt}, step_series(points),
                                            {{last, loss, double(last * 256)}}, first - 1, 3000),
              Fence::kOk);
  }
};

TEST_F(ForkStoreTest, AForkWaitsUntilItsParentHasPassedTheBranchStep) {
  const int64_t sweep = submit_ladder();
  const auto jobs = store_->sweeps.jobs(sweep);
  ASSERT_EQ(jobs.size(), 2u);
  ASSERT_TRUE(jobs[1].fork);
  EXPECT_EQ(jobs[1].fork->parent_job_id, jobs[0].id);
  EXPECT_EQ(jobs[1].fork->plan.branch_step, 32);
  EXPECT_EQ(jobs[0].pinned_steps, std::vector<int64_t>{32}) << "the trunk keeps the branch step";
  const auto trunk = acquire();
  ASSERT_TRUE(trunk);
  EXPECT_EQ(trunk->id, jobs[0].id);
  EXPECT_FALSE(acquire()) << "the fork waits: its parent's checkpoint at step 32 is not there";
  EXPECT_FALSE(
      store_->workers.heartbeat("w", {{{trunk->id, trunk->attempt}, 32}}, 2100, 60000).forks_ready)
      << "step 32 done, its kept checkpoint may still be being written";
  EXPECT_FALSE(acquire());
  EXPECT_TRUE(
      store_->workers.heartbeat("w", {{{trunk->id, trunk->attempt}, 33}}, 2200, 60000).forks_ready);
  const auto fork = acquire();
  ASSERT_TRUE(fork);
  EXPECT_EQ(fork->id, jobs[1].id);
}

TEST_F(ForkStoreTest, AParentThatFailsBeforeTheBranchStepEndsItsForksWithItsReason) {
  const int64_t sweep = submit_ladder();
  const auto trunk = acquire();
  ASSERT_TRUE(trunk);
  report_steps(*trunk, 1, 20, 3.0);
  ASSERT_EQ(store_->workers.complete_job({trunk->id, trunk->attempt}, JobState::kFailed,
                                         "out of memory", "", 2500, /*retryable=*/false),
            Fence::kOk);
  const JobRow fork = store_->sweeps.jobs(sweep)[1];
  EXPECT_EQ(fork.state, JobState::kFailed);
  EXPECT_EQ(fork.message,
            "its parent, job " + std::to_string(trunk->id) +
                ", ended FAILED at step 20, before the branch step 32: out of memory");
  EXPECT_EQ(store_->sweeps.sweep(sweep)->state(), SweepState::kFinished);
}

// The fork shares its parent's steps up to the branch step: a parent that diverged before it took
// the fork with it, a result (it bounds R_L(B)), not a failure to leave out.
TEST_F(ForkStoreTest, AParentThatDivergesBeforeTheBranchStepEndsItsForksDiverged) {
  const int64_t sweep = submit_ladder();
  const auto trunk = acquire();
  ASSERT_TRUE(trunk);
  report_steps(*trunk, 1, 20, 3.0);
  ASSERT_EQ(store_->workers.complete_job({trunk->id, trunk->attempt}, JobState::kDiverged,
                                         "loss is NaN at step 21", "", 2500),
            Fence::kOk);
  const JobRow fork = store_->sweeps.jobs(sweep)[1];
  EXPECT_EQ(fork.state, JobState::kDiverged);
  EXPECT_EQ(fork.message,
            "its parent, job " + std::to_string(trunk->id) +
                ", ended DIVERGED at step 20, before the branch step 32: loss is NaN at step 21");
}

TEST_F(ForkStoreTest, AForkStoresOnlyItsOwnStepsAndItsCurveReadsThroughItsParents) {
  const int64_t sweep = submit_ladder();
  const auto trunk = acquire();
  ASSERT_TRUE(trunk);
  report_steps(*trunk, 1, 20, 3.0);  // evaluated at 20, 80
  report_steps(*trunk, 21, 80, 3.0);
  ASSERT_EQ(
      store_->workers.complete_job({trunk->id, trunk->attempt}, JobState::kSucceeded, "", "", 2600),
      Fence::kOk);
  const auto fork = acquire(2700);
  ASSERT_TRUE(fork);
  // The fork's trainer replays its parent's 32 steps and evaluation, then trains its own 8.
  report_steps(*fork, 1, 32, 3.0);  // its eval at 32 is dropped with the replay
  report_steps(*fork, 33, 40, 2.0);
  Database db((dir_ / "s.db").string());
  const auto own = SeriesStore(db).read(fork->id, Metric::kTrainLoss);
  ASSERT_EQ(own.size(), 8u) << "the shared prefix is not copied";
  EXPECT_EQ(own.front().step, 33);
  const auto curve = store_->metrics.series_points(fork->id, "train_loss");
  ASSERT_EQ(curve.size(), 40u);
  EXPECT_EQ(curve[31].value, 3.0 - 0.032) << "step 32 is the parent's";
  EXPECT_EQ(curve[32].value, 2.0 - 0.033) << "step 33 the fork's";
  const auto evals = store_->metrics.eval_points(fork->id);
  ASSERT_EQ(evals.size(), 2u) << "the parent's eval up to the branch step, then the fork's";
  EXPECT_EQ(evals[0].step, 20);
  EXPECT_EQ(evals[1].step, 40);
  EXPECT_EQ(store_->metrics.sweep_eval_points(sweep).at(fork->id).size(), 2u);
  const auto buckets = store_->metrics.downsampled_curve(fork->id, 10);
  ASSERT_EQ(buckets.size(), 10u);
  EXPECT_EQ(buckets.front().first_step, 1);
  EXPECT_EQ(buckets.back().last_step, 40);
}

}  // namespace
