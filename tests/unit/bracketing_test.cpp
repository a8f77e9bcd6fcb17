// Bracketing that respects noise (server/results/bracketing.h) and early stopping that judges a
// rung only once its start grid got there (server/tuning/early_stop.h), through the real planner
// on a real store (tuning_fixture.h).
#include <random>

#include "tuning_fixture.h"

using namespace server;
using namespace tuning_test;
using nlohmann::json;

namespace {

// A flat-topped valley: the optimum at `optimum`, d factor-2 steps away 0.015·d² nats worse,
// every run's final loss off by N(0, sigma) drawn from (trial, lr, seed).
LossTable noisy_valley(double optimum, double sigma, int trial) {
  return [=](double lr, int64_t seed) {
    const double d = std::log2(lr / optimum);
    std::mt19937_64 rng(uint64_t(trial) * 1000003u + uint64_t(std::llround(d * 16 + 512)) * 101u +
                        uint64_t(seed));
    std::normal_distribution<double> noise(0.0, sigma);
    return Outcome{3.0 + 0.015 * d * d + noise(rng)};
  };
}

// The share of trials that ended bracketed, and among those the share whose choice is the
// true optimum.
struct Tally {
  int trials = 0, bracketed = 0, right_when_bracketed = 0;
  double p_right() const { return bracketed ? double(right_when_bracketed) / bracketed : 0; }
};

class BracketingTest : public TuningTest {
 protected:
  Tally simulate(const std::string& tune, int trials) {
    Tally t;
    for (int trial = 0; trial < trials; ++trial) {
      const int64_t id = submit(tune);
      run_to_end(id, noisy_valley(0.004, 0.01, trial));
      const LrChoice& c = results(id).ablation.at(0).lr;
      ++t.trials;
      if (!c.bracketed) continue;
      ++t.bracketed;
      t.right_when_bracketed += std::abs(c.lr - 0.004) < 1e-12;
    }
    return t;
  }
};

// Seeds differ by σ = 0.01 and the neighbours of the optimum are only 0.015 worse: on one seed a
// neighbour often looks best, and the old rule (any worse neighbour brackets) calls that
// bracketed (right 90 times in 120 here). With tune.noise the planner adds seeds until each
// neighbour is worse beyond 2·σ·sqrt(1/n + 1/n), and "bracketed" then names the true optimum at
// least 9 times in 10 (measured: 100 of the 101 bracketed trials of 120).
TEST_F(BracketingTest, ABracketedChoiceIsTheTrueOptimumAtLeastNineTimesInTen) {
  const std::string start = "{start: [0.001, 0.002, 0.004, 0.008, 0.016], max_extensions: 3";
  const Tally careful =
      simulate(start + ", noise: {sd: 0.01, seeds: [2, 3, 4, 5, 6, 7, 8, 9]}}", 120);
  EXPECT_GE(careful.p_right(), 0.9) << careful.right_when_bracketed << " of " << careful.bracketed;
  EXPECT_GE(careful.bracketed, careful.trials / 2) << "bracketed too rarely to mean anything";

  const Tally naive = simulate(start + "}", 120);
  EXPECT_EQ(naive.bracketed, naive.trials) << "without tune.noise every interior best brackets";
  EXPECT_LT(naive.p_right(), 0.9) << "the simulation must be able to fail";
}

TEST_F(BracketingTest, NoiseSeedsRunAtTheBestAndItsCloseNeighboursOnly) {
  // Seed 1 of lr 0.004 and 0.008 within 0.005 of each other; 0.002 far worse.
  const LossTable table = [](double lr, int64_t seed) {
    const double base = lr == 0.002 ? 3.3 : lr == 0.004 ? 3.0 : lr == 0.008 ? 3.005 : 3.4;
    return Outcome{base + (lr == 0.008 ? 0.002 * double(seed) : 0.0)};
  };
  const int64_t id =
      submit("{start: [0.002, 0.004, 0.008, 0.016], noise: {sd: 0.01, seeds: [2, 3]}}");
  run_to_end(id, table);
  std::map<double, std::set<int64_t>> seeds_at;
  for (const JobRow& j : store_->sweeps.jobs(id)) {
    seeds_at[json::parse(j.config)["optimizer"]["lr"].get<double>()].insert(j.seed);
    if (j.seed != 1) {
      EXPECT_NE(j.reason.find("within the margin"), std::string::npos) << j.reason;
    }
  }
  EXPECT_EQ(seeds_at[0.004], (std::set<int64_t>{1, 2, 3}));
  EXPECT_EQ(seeds_at[0.008], (std::set<int64_t>{1, 2, 3}));
  EXPECT_EQ(seeds_at[0.002], (std::set<int64_t>{1})) << "far worse: no extra seed";
  EXPECT_EQ(seeds_at[0.016], (std::set<int64_t>{1}));
  const LrChoice& c = results(id).ablation.at(0).lr;
  EXPECT_DOUBLE_EQ(c.lr, 0.004);
  EXPECT_FALSE(c.bracketed);
  EXPECT_TRUE(c.within_noise) << "the seeds are spent and 0.008 is still within the noise";
}

TEST_F(BracketingTest, AWeightDecayNeighbourWithinTheNoiseGetsANoiseSeedAndNoLrNeighbourDoes) {
  // Best (0.002, 0.1); its weight-decay neighbours 0.015 worse (within 2·0.01·sqrt(2)), its lr
  // neighbours 0.05 worse (beyond it).
  const PointTable table = [](double lr, double wd, int64_t seed) {
    const double a = std::log2(lr / 0.002), b = std::log2(wd / 0.1);
    return Outcome{3.0 + 0.05 * a * a + 0.015 * b * b + 0.0001 * double(seed)};
  };
  const int64_t id = submit(
      "{start: [0.001, 0.002, 0.004], weight_decay: {start: [0.05, 0.1, 0.2]},"
      " noise: {sd: 0.01, seeds: [3]}}");
  run_to_end(id, table);
  std::map<std::pair<double, double>, std::set<int64_t>> seeds_at;
  for (const JobRow& j : store_->sweeps.jobs(id)) {
    const json o = json::parse(j.config)["optimizer"];
    seeds_at[{o["lr"].get<double>(), o["weight_decay"].get<double>()}].insert(j.seed);
  }
  const std::set<int64_t> both = {1, 3}, one = {1};
  EXPECT_EQ(seeds_at[std::make_pair(0.002, 0.1)], both);
  EXPECT_EQ(seeds_at[std::make_pair(0.002, 0.05)], both);
  EXPECT_EQ(seeds_at[std::make_pair(0.002, 0.2)], both);
  EXPECT_EQ(seeds_at[std::make_pair(0.001, 0.1)], one) << "an lr neighbour beyond the noise";
  EXPECT_EQ(seeds_at[std::make_pair(0.004, 0.1)], one);
  EXPECT_EQ(seeds_at[std::make_pair(0.004, 0.2)], one) << "off the best's axis lines";
  const LrChoice& c = results(id).ablation.at(0).lr;
  EXPECT_DOUBLE_EQ(c.weight_decay, 0.1);
  EXPECT_FALSE(c.bracketed);
  EXPECT_TRUE(c.within_noise);
}

// Early stopping ends the best's neighbour at a rung (it starts slowly); a stopped run has no
// final loss and must not bracket: the planner runs it again to its end, never stopped early.
TEST_F(BracketingTest, AStoppedNeighbourDoesNotBracketUntilItIsRunToItsEnd) {
  const int64_t id = submit(
      "{start: [0.001, 0.002, 0.004, 0.008],"
      " early_stop: {rungs: [0.5], stop_fraction: 0.5, min_runs: 3}}");
  const std::vector<JobRow> running = acquire_all();
  ASSERT_EQ(running.size(), 4u);
  for (const JobRow& job : running) {  // 0.004 is worst at half its budget, second at the end
    const double lr = lr_of(job);
    report_half(job, valley(0.002)(lr, 1).loss + (lr == 0.004 ? 1.0 : 0.0));
    planner_->consider_stopping(job.id, {5}, ++now_);
  }
  finish(running, told_to_stop(running), valley(0.002));
  ASSERT_EQ(store_->sweeps.job(running[2].id)->state, JobState::kStopped) << "0.004 was stopped";
  planner_->plan(id, ++now_);
  const LrChoice before = results(id).ablation.at(0).lr;
  EXPECT_DOUBLE_EQ(before.lr, 0.002);
  EXPECT_FALSE(before.bracketed) << "0.004 stopped: it has no final loss to bracket with";
  int completions = 0;
  for (const JobRow& j : store_->sweeps.jobs(id))
    if (j.role == sweep_file::JobRole::kCompletion) {
      ++completions;
      EXPECT_DOUBLE_EQ(lr_of(j), 0.004);
      EXPECT_FALSE(planner_->consider_stopping(j.id, {5}, ++now_)) << "never stopped early";
    }
  EXPECT_EQ(completions, 1);
  run_to_end(id, valley(0.002));
  const LrChoice after = results(id).ablation.at(0).lr;
  EXPECT_DOUBLE_EQ(after.lr, 0.002);
  EXPECT_TRUE(after.bracketed);
}

// The worst start-grid run reaches the rung first, before min_runs others: it used to be judged
// alone (too few to rank) and never again. Now the rung waits for the start grid, and the last
// arrival judges everyone who waited.
TEST_F(BracketingTest, ARungIsJudgedOnceEveryStartGridRunReachedIt) {
  submit(
      "{start: [0.001, 0.002, 0.004, 0.008],"
      " early_stop: {rungs: [0.5], stop_fraction: 0.5, min_runs: 3}}");
  std::vector<JobRow> running = acquire_all();
  ASSERT_EQ(running.size(), 4u);
  std::reverse(running.begin(), running.end());  // 0.008, the worst, reports first
  for (const JobRow& job : running) {
    report_half(job, valley(0.002)(lr_of(job), 1).loss);
    EXPECT_FALSE(planner_->consider_stopping(job.id, {5}, ++now_)) << "only 0.008 stops";
  }
  EXPECT_EQ(told_to_stop(running), (std::set<int64_t>{running[0].id}))
      << "the worst run, judged when the last start run arrived";
}

}  // namespace
