// Forks on a real coordinator and worker: a budget ladder's cooldown rungs branch off their trunk
// at a kept checkpoint and land exactly where separate runs of the same budgets land.
#include <regex>
#include <sstream>

#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

// One seed at two budgets (batch 512), decaying over the last `decay` of each (WSD).
std::string ladder_yaml(const std::string& name, const std::string& cache, const std::string& via,
                        const std::string& tokens = "[20480, 40960]",
                        const std::string& decay = "0.2") {
  return sweep_yaml(name, cache, 80,
                    "  schedule: {kind: wsd, decay_fraction: " + decay +
                        "}\n"
                        "budgets: {tokens: " +
                        tokens + ", via: " + via + "}\n");
}

const pb::JobInfo& rung(const pb::GetSweepResponse& s, const std::string& label) {
  for (const auto& j : s.jobs())
    if (j.label() == label) return j;
  throw std::runtime_error("no job " + label);
}

TEST(Orchestration, CooldownForksOfATrunkLandBitIdenticallyWhereSeparateRunsDo) {
  Cluster c("ladder");
  c.start_coordinator();
  c.start_worker("w1", 2);
  const int64_t cooldown = c.submit(ladder_yaml("cooldown", c.cache(), "cooldown"));
  const int64_t separate = c.submit(ladder_yaml("separate", c.cache(), "separate"));
  ASSERT_TRUE(c.wait_finished(cooldown)) << c.diagnostics();
  ASSERT_TRUE(c.wait_finished(separate)) << c.diagnostics();
  const auto ladder = c.get(cooldown), reference = c.get(separate);
  ASSERT_EQ(ladder.jobs_size(), 2);
  for (const auto& s : {ladder, reference})
    for (const auto& j : s.jobs())
      ASSERT_EQ(pb::JobState_Name(j.state()), "SUCCEEDED") << j.label() << ": " << j.message();

  const pb::JobInfo& trunk = rung(ladder, "baseline/tokens=40960");
  const pb::JobInfo& fork = rung(ladder, "baseline/tokens=20480");
  EXPECT_FALSE(trunk.has_fork());
  ASSERT_TRUE(fork.has_fork());
  EXPECT_EQ(fork.fork().parent_job_id(), trunk.job_id());
  EXPECT_EQ(fork.fork().branch_step(), 32) << "40 steps, the last 8 decaying";
  EXPECT_EQ(fork.fork().branch_tokens(), 32 * 512);
  EXPECT_TRUE(std::filesystem::exists(c.dir() + "/checkpoints/sweep-" + std::to_string(cooldown) +
                                      "/job-" + std::to_string(trunk.job_id()) +
                                      "/checkpoint-step-32.bin"))
      << "the trunk kept its checkpoint at the branch step";

  // It trained only its cooldown: a fork from scratch would land in the same place, at 5 times
  // the cost.
  EXPECT_NE(test_process::read_text(c.worker_log("w1"))
                .find("job " + std::to_string(fork.job_id()) + " attempt 1 resumed at step 32"),
            std::string::npos)
      << c.diagnostics();

  // The same training, step for step: equal to the last bit on CPU.
  for (const std::string label : {"baseline/tokens=20480", "baseline/tokens=40960"}) {
    EXPECT_EQ(rung(ladder, label).last_val_loss(), rung(reference, label).last_val_loss()) << label;
    EXPECT_EQ(rung(ladder, label).last_train_loss(), rung(reference, label).last_train_loss())
        << label;
  }
  // sweepctl says what the fork is.
  const auto [code, status] = test_process::run_command(
      {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "status", std::to_string(cooldown)});
  EXPECT_EQ(code, 0) << status;
  EXPECT_NE(status.find("[fork of job " + std::to_string(trunk.job_id()) +
                        " at step 32 (16384 tokens): training.max_steps=40, "
                        "training.max_tokens=20480]"),
            std::string::npos)
      << status;

  const auto [lineage_code, lineage] =
      test_process::run_command({SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "lineage",
                                 std::to_string(cooldown)});
  EXPECT_EQ(lineage_code, 0) << lineage;
  EXPECT_EQ(lineage, "job " + std::to_string(trunk.job_id()) +
                         " baseline/tokens=40960 seed 1: SUCCEEDED, 80 steps\n"
                         "  └ at step 32: job " +
                         std::to_string(fork.job_id()) +
                         " baseline/tokens=20480: SUCCEEDED, 40/40 steps  [fork of job " +
                         std::to_string(trunk.job_id()) +
                         " at step 32 (16384 tokens): training.max_steps=40, "
                         "training.max_tokens=20480]\n");

  // The fork stored its own 8 steps; its first 32 are its trunk's, read through.
  const auto [own, first, last] = c.curve(fork.job_id());
  EXPECT_EQ(own, 8);
  EXPECT_EQ(first, 33);
  EXPECT_EQ(last, 40);

  // The export gives every rung its whole curve and says which rows are the trunk's.
  const std::string csv_path = c.dir() + "/ladder.csv";
  ASSERT_EQ(test_process::run_command({SWEEPCTL_BINARY, "--coordinator", c.endpoint().address,
                                       "export", std::to_string(cooldown), "--output", csv_path})
                .exit_code,
            0);
  const std::string csv = test_process::read_text(csv_path);
  EXPECT_EQ(csv.substr(0, csv.find('\n')).find("job,label,seed,state,fork_of,branch_step,"), 0u)
      << csv.substr(0, 200);
  const std::string fork_rows = std::to_string(fork.job_id()) +
                                ",baseline/tokens=20480,1,SUCCEEDED," +
                                std::to_string(trunk.job_id()) + ",32,";
  std::istringstream lines(csv);
  size_t train_points = 0;
  for (std::string line; std::getline(lines, line);)
    train_points += line.starts_with(fork_rows) && line.find(",train_loss,") != std::string::npos;
  EXPECT_EQ(train_points, 40u) << "steps 1..40 of the fork's curve";
}

// A fork that changes nothing continues its parent bit-identically; one that halves the lr from
// the same step does not. Both store only their own steps.
TEST(Orchestration, ANoChangeForkContinuesItsParentBitIdentically) {
  Cluster c("fork-same");
  c.start_coordinator();
  c.start_worker("w1", 2);
  const int64_t sweep = c.submit(
      sweep_yaml("forks", c.cache(), 80,
                 "forks:\n"
                 "  - {from: baseline, at_tokens: 15360, label: same}\n"
                 "  - {from: baseline, at_tokens: 15360, label: lr_half, set: {optimizer.lr: "
                 "1.5e-3}}\n"));
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  ASSERT_EQ(s.jobs_size(), 3);
  for (const auto& j : s.jobs())
    ASSERT_EQ(pb::JobState_Name(j.state()), "SUCCEEDED") << j.label() << ": " << j.message();
  const pb::JobInfo &parent = rung(s, "baseline"), &same = rung(s, "baseline/same"),
                    &half = rung(s, "baseline/lr_half");
  EXPECT_EQ(same.fork().branch_step(), 30);
  EXPECT_EQ(same.fork().changes_size(), 0);
  EXPECT_EQ(same.last_val_loss(), parent.last_val_loss()) << "bit-identical";
  EXPECT_EQ(same.last_train_loss(), parent.last_train_loss());
  EXPECT_NE(half.last_val_loss(), parent.last_val_loss());
  const std::string log = test_process::read_text(c.worker_log("w1"));
  for (const pb::JobInfo* fork : {&same, &half}) {
    // Started from the parent's checkpoint: a run from scratch would land in the same place.
    EXPECT_NE(log.find("job " + std::to_string(fork->job_id()) + " attempt 1 resumed at step 30"),
              std::string::npos)
        << c.diagnostics();
    const auto [own, first, last] = c.curve(fork->job_id());
    EXPECT_EQ(own, 50) << fork->label();
    EXPECT_EQ(first, 31);
    EXPECT_EQ(last, 80);
  }
}

// Faults during a ladder: the coordinator killed (-9) in the trunk's stable phase, the worker
// killed (-9) in the middle of a cooldown. The fork resumes from its own checkpoint on another
// worker, and the rung still lands bit-identically where its separate run does.
TEST(Orchestration, KillsDuringTheStablePhaseAndTheCooldownLoseNothingOfTheLadder) {
  Cluster c("ladder-faults");
  c.start_coordinator(1500);
  ChildProcess& w1 = c.start_worker("w1", 2);
  // 400 and 800 steps, half of each decaying: the fork trains steps 200..400 on its own.
  const std::string tokens = "[204800, 409600]";
  // Each fault may cost the jobs it hits an attempt: room for both.
  const int64_t cooldown =
      c.submit(ladder_yaml("cooldown", c.cache(), "cooldown", tokens, "0.5") + "max_attempts: 5\n");
  // The job at `index`, or an empty one while the coordinator does not answer (restarting).
  auto job = [&](int index) {
    const auto s = c.get(cooldown);
    return index < s.jobs_size() ? s.jobs(index) : pb::JobInfo();
  };
  ASSERT_TRUE(wait_until([&] { return job(0).step() >= 100; }, 120s)) << c.diagnostics();
  c.kill_coordinator();  // the trunk trains on; its worker buffers the metrics
  std::this_thread::sleep_for(1s);
  c.start_coordinator(1500);
  ASSERT_TRUE(
      wait_until([&] { return job(1).state() == pb::RUNNING && job(1).step() >= 250; }, 180s))
      << c.diagnostics();
  w1.kill(SIGKILL);  // no goodbye: the fork's lease must expire
  c.start_worker("w2", 2);
  const int64_t separate = c.submit(ladder_yaml("separate", c.cache(), "separate", tokens, "0.5"));
  ASSERT_TRUE(c.wait_finished(cooldown, 240s)) << c.diagnostics();
  ASSERT_TRUE(c.wait_finished(separate, 240s)) << c.diagnostics();
  const auto ladder = c.get(cooldown), reference = c.get(separate);
  for (const auto& s : {ladder, reference})
    for (const auto& j : s.jobs())
      ASSERT_EQ(pb::JobState_Name(j.state()), "SUCCEEDED") << j.label() << ": " << j.message();
  const pb::JobInfo& fork = rung(ladder, "baseline/tokens=204800");
  // Resumed after its worker died, from its own checkpoint past the branch step (on a loaded
  // machine a short lease may cost it another attempt or two: the count is not the point).
  EXPECT_GE(fork.attempt(), 2);
  const std::string w2_log = test_process::read_text(c.worker_log("w2"));
  std::smatch resumed;
  ASSERT_TRUE(std::regex_search(
      w2_log, resumed,
      std::regex("job " + std::to_string(fork.job_id()) + " attempt \\d+ resumed at step (\\d+)")))
      << c.diagnostics();
  EXPECT_GT(std::stoll(resumed[1]), 200) << "its own checkpoint, not its parent's at the branch";
  for (const std::string label : {"baseline/tokens=204800", "baseline/tokens=409600"})
    EXPECT_EQ(rung(ladder, label).last_val_loss(), rung(reference, label).last_val_loss()) << label;
  const auto [own, first, last] = c.curve(fork.job_id());
  EXPECT_EQ(own, 200) << "its own steps, once each, after the kill too";
  EXPECT_EQ(first, 201);
  EXPECT_EQ(last, 400);
}

// `sweepctl fork` by hand: a finished run forks at a step it kept (its last) to train further,
// a step it did not keep is refused naming the nearest kept ones, a frozen setting is refused by
// path, and a running run is asked to keep a step ahead of it, from which a fork that changes
// nothing continues it bit-identically.
TEST(Orchestration, SweepctlForksFinishedAndRunningJobsAtKeptSteps) {
  Cluster c("fork-by-hand");
  c.start_coordinator();
  c.start_worker("w1", 2);
  const auto sweepctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address});
    return test_process::run_command(args);
  };
  const int64_t done = c.submit(sweep_yaml("finished", c.cache(), 80, ""));
  ASSERT_TRUE(c.wait_finished(done)) << c.diagnostics();
  const pb::JobInfo parent = c.get(done).jobs(0);
  const std::string id = std::to_string(parent.job_id());

  const auto [unkept_code, unkept] = sweepctl({"fork", id, "--at-step", "30"});
  EXPECT_EQ(unkept_code, 1) << unkept;
  EXPECT_NE(unkept.find("job " + id +
                        " keeps no checkpoint at step 30 (15360 tokens); its "
                        "nearest kept: step 80 (40960 tokens)"),
            std::string::npos)
      << unkept;
  const auto [frozen_code, frozen] =
      sweepctl({"fork", id, "--at-tokens", "40960", "--set", "model.hidden=128", "--set",
                "training.max_steps=100"});
  EXPECT_EQ(frozen_code, 2) << frozen;
  EXPECT_NE(frozen.find("fork.set.model.hidden: the parent has 64, this fork 128"),
            std::string::npos)
      << frozen;
  const auto [longer_code, longer] = sweepctl(
      {"fork", id, "--at-tokens", "40960", "--set", "training.max_steps=100", "--label", "longer"});
  ASSERT_EQ(longer_code, 0) << longer;
  EXPECT_NE(longer.find("baseline/longer seed 1  [fork of job " + id +
                        " at step 80 (40960 tokens): training.max_steps=100"),
            std::string::npos)
      << longer;
  const auto [again_code, again] = sweepctl(
      {"fork", id, "--at-step", "80", "--set", "training.max_steps=100", "--label", "longer"});
  EXPECT_EQ(again_code, 2) << again;
  EXPECT_NE(again.find("fork.label: sweep " + std::to_string(done) +
                       " already has a job "
                       "baseline/longer of seed 1"),
            std::string::npos)
      << again;
  ASSERT_TRUE(c.wait_finished(done)) << c.diagnostics();
  const pb::JobInfo extended = rung(c.get(done), "baseline/longer");
  EXPECT_EQ(pb::JobState_Name(extended.state()), "SUCCEEDED") << extended.message();
  EXPECT_EQ(extended.step(), 100);
  const auto [own, first, last] = c.curve(extended.job_id());
  EXPECT_EQ(own, 20) << "its own 20 steps; the first 80 are its parent's";
  EXPECT_EQ(first, 81);

  // A running parent: asked to keep step 700, which it has not reached.
  const int64_t running = c.submit(sweep_yaml("running", c.cache(), 1000, ""));
  ASSERT_TRUE(wait_until([&] { return c.get(running).jobs(0).state() == pb::RUNNING; }, 60s))
      << c.diagnostics();
  const pb::JobInfo trunk = c.get(running).jobs(0);
  ASSERT_LT(trunk.step(), 700) << "the test needs the parent before its branch step";
  const auto [same_code, same] =
      sweepctl({"fork", std::to_string(trunk.job_id()), "--at-step", "700", "--label", "same"});
  ASSERT_EQ(same_code, 0) << same;
  EXPECT_NE(
      same.find("it starts once job " + std::to_string(trunk.job_id()) + " has passed step 700"),
      std::string::npos)
      << same;
  ASSERT_TRUE(c.wait_finished(running, 180s)) << c.diagnostics();
  const auto finished = c.get(running);
  const pb::JobInfo& fork = rung(finished, "baseline/same");
  ASSERT_EQ(pb::JobState_Name(fork.state()), "SUCCEEDED") << fork.message();
  EXPECT_NE(test_process::read_text(c.worker_log("w1"))
                .find("job " + std::to_string(fork.job_id()) + " attempt 1 resumed at step 700"),
            std::string::npos)
      << c.diagnostics();
  EXPECT_EQ(fork.last_val_loss(), finished.jobs(0).last_val_loss()) << "bit-identical";
  EXPECT_EQ(fork.last_train_loss(), finished.jobs(0).last_train_loss());
}

// Forking a job of a cancelled sweep is refused: it would start the sweep again.
TEST(Orchestration, AForkIntoACancelledSweepIsRefused) {
  Cluster c("fork-cancelled");
  c.start_coordinator();
  c.start_worker("w1", 1);
  const int64_t sweep = c.submit(sweep_yaml("cancel-me", c.cache(), 5000, ""));
  ASSERT_TRUE(wait_until([&] { return c.get(sweep).jobs(0).state() == pb::RUNNING; }, 60s))
      << c.diagnostics();
  const std::string job = std::to_string(c.get(sweep).jobs(0).job_id());
  const auto sweepctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address});
    return test_process::run_command(args);
  };
  ASSERT_EQ(sweepctl({"cancel", std::to_string(sweep)}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return c.get(sweep).sweep().state() == pb::SWEEP_CANCELLED; }, 30s))
      << c.diagnostics();
  const auto [code, out] = sweepctl({"fork", job, "--at-step", "4000", "--label", "later"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(
      out.find("sweep " + std::to_string(sweep) + " is cancelled: a fork would start it again"),
      std::string::npos)
      << out;
  EXPECT_EQ(c.get(sweep).sweep().state(), pb::SWEEP_CANCELLED);
  EXPECT_EQ(c.get(sweep).jobs_size(), 1);
}

}  // namespace
}  // namespace orchestration_test
