// Failures and what survives them: killed workers and coordinators, a full disk, diverged and
// out-of-memory jobs, jobs that cannot start or are stopped from outside.
#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

TEST(Orchestration, KilledWorkersJobIsReleasedAndResumesFromItsCheckpoint) {
  Cluster c("killworker");
  c.start_coordinator(1500);
  ChildProcess& w1 = c.start_worker("w1");
  const int64_t sweep = c.submit(sweep_yaml("resume", c.cache(), 300, ""));
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = c.get(sweep);
        return s.jobs_size() && s.jobs(0).step() >= 90;
      },
      120s))
      << c.diagnostics();
  w1.kill(SIGKILL);  // no goodbye: the lease must expire
  c.start_worker("w2");
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  EXPECT_EQ(pb::JobState_Name(s.jobs(0).state()), "SUCCEEDED") << s.jobs(0).message();
  EXPECT_EQ(s.jobs(0).attempt(), 2);
  EXPECT_EQ(s.jobs(0).worker_id(), "w2");
  EXPECT_NE(test_process::read_text(c.worker_log("w2")).find("resumed at step"), std::string::npos)
      << c.diagnostics();
  expect_complete_curves(c, s);
}

// Two nodes, as the Kubernetes and Slurm deployments run them: two workers with their own ids and
// work directories, one coordinator whose checkpoint root both reach (a shared volume). A node
// dies mid-job (SIGKILL: no hand-back); its job's lease expires and the other node resumes it from
// the checkpoint the dead node left in the shared root.
TEST(Orchestration, TwoNodesShareTheCheckpointRootAndADeadNodesJobResumesOnTheOther) {
  Cluster c("two-nodes");
  c.start_coordinator(1500);
  ChildProcess& node_a = c.start_worker("node-a");
  c.start_worker("node-b");
  const int64_t sweep = c.submit(sweep_yaml("two-nodes", c.cache(), 300, "seeds: [1, 2]\n"));
  int64_t on_a = -1;
  ASSERT_TRUE(wait_until(
      [&] {
        const auto now = c.get(sweep);
        for (const auto& j : now.jobs())
          if (j.worker_id() == "node-a" && j.step() >= 90) on_a = j.job_id();
        return on_a >= 0;
      },
      120s))
      << c.diagnostics();
  node_a.kill(SIGKILL);
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  for (const auto& j : s.jobs()) {
    EXPECT_EQ(pb::JobState_Name(j.state()), "SUCCEEDED") << j.message();
    EXPECT_EQ(j.worker_id(), "node-b");
  }
  const std::string b_log = test_process::read_text(c.worker_log("node-b"));
  EXPECT_NE(b_log.find("job " + std::to_string(on_a) + " attempt 2 resumed at step"),
            std::string::npos)
      << b_log;
  // The checkpoint lives under the coordinator's root, not in either node's work directory.
  bool in_root = false;
  for (const auto& f : std::filesystem::recursive_directory_iterator(c.dir() + "/checkpoints"))
    in_root = in_root || f.is_regular_file();
  EXPECT_TRUE(in_root);
  for (const char* node : {"node-a", "node-b"})
    for (const auto& f : std::filesystem::recursive_directory_iterator(c.dir() + "/" + node))
      EXPECT_EQ(f.path().string().find("checkpoint"), std::string::npos) << f.path();
  expect_complete_curves(c, s);
}

TEST(Orchestration, CoordinatorKilledMidSweepRestartsAndLosesNoPoint) {
  Cluster c("killcoord");
  c.start_coordinator();
  c.start_worker("w1");
  c.start_worker("w2");
  const int64_t sweep = c.submit(sweep_yaml("restart", c.cache(), 200, "seeds: [1, 2, 3, 4]\n"));
  ASSERT_TRUE(wait_until(
      [&] {
        const auto snapshot = c.get(sweep);
        for (const auto& j : snapshot.jobs())
          if (j.step() >= 40) return true;
        return false;
      },
      120s))
      << c.diagnostics();
  c.kill_coordinator();
  std::this_thread::sleep_for(2s);  // the workers keep training and buffer their metrics
  c.start_coordinator();
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  for (const auto& j : s.jobs())
    EXPECT_EQ(pb::JobState_Name(j.state()), "SUCCEEDED") << j.message();
  expect_complete_curves(c, s);
}

// While the coordinator is away longer than the worker's memory bound allows, metrics spill to
// the work dir and are replayed in order when it is back: the curve is complete.
TEST(Orchestration, MetricsSpillToDiskWhileTheCoordinatorIsAwayAndNoneIsLost) {
  Cluster c("spill");
  c.start_coordinator();
  c.start_worker("w1", 1, "-", {"--max-buffered-points", "200"});
  const int64_t sweep = c.submit(sweep_yaml("spill", c.cache(), 1500, ""));
  ASSERT_TRUE(wait_until([&] { return c.get(sweep).jobs(0).step() >= 20; }, 120s))
      << c.diagnostics();
  c.kill_coordinator();
  // Away until the job has spilled at least twice its in-memory bound.
  ASSERT_TRUE(wait_until(
      [&] {
        return test_process::read_text(c.worker_log("w1")).find("metric points spilled") !=
               std::string::npos;
      },
      120s))
      << test_process::read_text(c.worker_log("w1"));
  std::this_thread::sleep_for(2s);
  c.start_coordinator();
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  EXPECT_EQ(pb::JobState_Name(s.jobs(0).state()), "SUCCEEDED") << s.jobs(0).message();
  expect_complete_curves(c, s);
  EXPECT_FALSE(std::filesystem::exists(c.dir() + "/w1/job-1-attempt-1.spill"))
      << "the spill file is gone once stored";
}

TEST(Orchestration, NanJobEndsDivergedWhileTheDaemonKeepsServing) {
  Cluster c("nan");
  c.start_coordinator();
  ChildProcess& worker = c.start_worker("w1");
  const int64_t sweep = c.submit(sweep_yaml("nan", c.cache(), 30, R"(
grid:
  schedule.warmup_steps: [0]
  training.grad_clip: [0.0]
  optimizer.lr: [1.0e+30, 3.0e-3]
)"));
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  ASSERT_EQ(s.jobs_size(), 2);
  EXPECT_EQ(pb::JobState_Name(s.jobs(0).state()), "DIVERGED");
  EXPECT_NE(s.jobs(0).message().find("non-finite at step 2"), std::string::npos)
      << s.jobs(0).message();
  EXPECT_EQ(pb::JobState_Name(s.jobs(1).state()), "SUCCEEDED") << s.jobs(1).message();
  EXPECT_FALSE(worker.wait_for_exit(0ms)) << "the daemon must survive a diverged job";
}

// A job that runs out of memory fails once, says so, and is not retried on the same config.
TEST(Orchestration, OutOfMemoryFailsOnceAndIsNotRetried) {
  Cluster c("oom");
  c.start_coordinator();
  c.start_worker("w1");
  // 2 x 65536 x 262144 floats of FFN weights: 128 GiB, more than any test machine has.
  const int64_t sweep = c.submit(sweep_yaml("oom", c.cache(), 10, R"(max_attempts: 3
grid:
  model: [{preset: custom, n_layer: 1, hidden: 65536, n_head: 512, ffn_hidden: 262144, seq_len: 64}]
)"));
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  ASSERT_EQ(s.jobs_size(), 1);
  EXPECT_EQ(pb::JobState_Name(s.jobs(0).state()), "FAILED");
  EXPECT_EQ(s.jobs(0).attempt(), 1) << "not retried";
  EXPECT_NE(s.jobs(0).message().find("out of memory, not retried"), std::string::npos)
      << s.jobs(0).message();
  EXPECT_NE(s.jobs(0).message().find("out of host memory: allocating"), std::string::npos)
      << s.jobs(0).message();
}

// A job the worker cannot start is handed back at once, not left until its (here one-minute)
// lease expires; the next attempt runs.
TEST(Orchestration, AJobThatCannotStartIsHandedBackAtOnce) {
  Cluster c("start_fail");
  c.start_coordinator(/*lease_ms=*/60000);
  // The first attempt's config file cannot be written: a directory holds its name.
  std::filesystem::create_directories(c.dir() + "/w1/job-1-attempt-1.json");
  c.start_worker("w1");
  const int64_t sweep = c.submit(sweep_yaml("start-fail", c.cache(), 5, ""));
  ASSERT_TRUE(c.wait_finished(sweep, 40s)) << c.diagnostics();
  const auto s = c.get(sweep);
  EXPECT_EQ(pb::JobState_Name(s.jobs(0).state()), "SUCCEEDED") << s.jobs(0).message();
  EXPECT_EQ(s.jobs(0).attempt(), 2);
  EXPECT_NE(test_process::read_text(c.worker_log("w1")).find("cannot write the job's config"),
            std::string::npos);
}

// A database that cannot grow answers RESOURCE_EXHAUSTED with the reason, the coordinator stays
// up, and once space is back (here: restarted without the cap) the same request is stored.
TEST(Orchestration, AFullDatabaseIsResourceExhaustedAndRecovers) {
  Cluster c("full_db");
  c.start_coordinator(3000, {"--max-db-mib", "1"});
  std::string seeds;
  for (int s = 1; s <= 1000; ++s) seeds += (s > 1 ? ", " : "") + std::to_string(s);
  const std::string big =
      sweep_yaml("big", c.cache(), 10, "seeds: [" + seeds + "]\n");  // ~2 MB of job configs
  pb::SubmitSweepRequest req;
  req.set_spec(big);
  req.set_source_name("big.yaml");
  auto stub = pb::SweepService::NewStub(orchestrator_client::make_channel(c.endpoint()));
  pb::SubmitSweepResponse resp;
  auto ctx = orchestrator_client::make_context(c.endpoint(), 20s);
  const grpc::Status full = stub->SubmitSweep(ctx.get(), req, &resp);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << full.error_message();
  EXPECT_NE(full.error_message().find("the database cannot grow"), std::string::npos)
      << full.error_message();
  pb::ListSweepsResponse list;
  auto list_ctx = orchestrator_client::make_context(c.endpoint(), 5s);
  EXPECT_TRUE(stub->ListSweeps(list_ctx.get(), pb::ListSweepsRequest(), &list).ok())
      << "the coordinator stays up";
  EXPECT_EQ(list.sweeps_size(), 0) << "the failed submission left nothing half-written";
  c.kill_coordinator();
  c.start_coordinator();
  grpc::Status stored;
  for (int i = 0; i < 50; ++i) {  // the channel reconnects to the restarted coordinator
    auto retry_ctx = orchestrator_client::make_context(c.endpoint(), 20s);
    stored = stub->SubmitSweep(retry_ctx.get(), req, &resp);
    if (stored.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(stored.ok()) << stored.error_message();
  EXPECT_EQ(resp.jobs_size(), 1000);
}

// A full disk while a worker trains: the worker keeps every point and its result buffered while
// the coordinator answers RESOURCE_EXHAUSTED, the coordinator stays up, and once space is back
// (restarted without the cap) everything is stored, in the same attempt, with no gap.
TEST(Orchestration, AWorkerKeepsItsMetricsAndResultWhileTheDatabaseIsFull) {
  Cluster c("full_db_worker");
  c.start_coordinator(3000, {"--max-db-mib", "1"});
  const int steps = 600;  // ~20 KB of series: more than the tables' free pages once filled
  const int64_t sweep = c.submit(sweep_yaml("run", c.cache(), steps, "priority: 10\n"));
  // Fill the database to its last pages with sweeps that wait behind the run (lower priority).
  auto stub = pb::SweepService::NewStub(orchestrator_client::make_channel(c.endpoint()));
  int filled = 0;
  for (int seeds : {100, 10, 1}) {
    while (true) {
      std::string list;
      for (int s = 1; s <= seeds; ++s) list += (s > 1 ? ", " : "") + std::to_string(s);
      pb::SubmitSweepRequest req;
      req.set_spec(sweep_yaml("filler", c.cache(), 10, "seeds: [" + list + "]\n"));
      req.set_source_name("filler.yaml");
      pb::SubmitSweepResponse resp;
      auto ctx = orchestrator_client::make_context(c.endpoint(), 20s);
      const grpc::Status s = stub->SubmitSweep(ctx.get(), req, &resp);
      if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) break;
      ASSERT_TRUE(s.ok()) << s.error_message();
      ASSERT_LT(++filled, 200) << "the cap of 1 MiB never filled";
    }
  }
  c.start_worker("w1");
  // The run trains to its end while its metrics and its result cannot be stored.
  const std::string log = c.worker_log("w1");
  ASSERT_TRUE(wait_until(
      [&] {
        return test_process::read_text(log).find("the database cannot grow") != std::string::npos;
      },
      60s))
      << c.diagnostics();
  const std::string text = test_process::read_text(log);
  const pid_t pid = started_pid(text, 1, 1);
  ASSERT_GT(pid, 0) << text;
  ASSERT_TRUE(
      wait_until([&] { return !std::filesystem::exists("/proc/" + std::to_string(pid)); }, 120s))
      << "trainer pid " << pid;
  pb::ListSweepsResponse list;
  auto list_ctx = orchestrator_client::make_context(c.endpoint(), 5s);
  EXPECT_TRUE(stub->ListSweeps(list_ctx.get(), pb::ListSweepsRequest(), &list).ok())
      << "the coordinator stays up";
  EXPECT_NE(pb::JobState_Name(c.get(sweep).jobs(0).state()), "SUCCEEDED");
  // Space is back.
  c.kill_coordinator();
  c.start_coordinator();
  ASSERT_TRUE(c.wait_finished(sweep, 60s)) << c.diagnostics();
  const auto job = c.get(sweep).jobs(0);
  EXPECT_EQ(pb::JobState_Name(job.state()), "SUCCEEDED") << job.message();
  EXPECT_EQ(job.attempt(), 1) << "the result was kept, not lost and recomputed";
  const auto [count, first, last] = c.curve(job.job_id());
  EXPECT_EQ(count, steps);
  EXPECT_EQ(first, 1);
  EXPECT_EQ(last, steps);
}

// A cluster's time limit (Slurm's --signal, a pod's termination) signals every process of the
// allocation, so a job process may be stopped before its worker hears anything. The job is handed
// back, and when the coordinator leases it straight back to the same worker, the worker starts it
// again from its checkpoint instead of tripping over the attempt it was still forgetting.
TEST(Orchestration, AJobProcessStoppedFromOutsideIsHandedBackAndRunAgainByTheSameWorker) {
  Cluster c("stopped-outside");
  c.start_coordinator();
  ChildProcess& w1 = c.start_worker("w1", 2);
  const int64_t sweep = c.submit(bigram_sweep_yaml("stopped-outside", 800));
  ASSERT_TRUE(wait_until([&] { return c.get(sweep).jobs(0).step() > 60; }, 120s))
      << c.diagnostics();
  const std::string log = test_process::read_text(c.worker_log("w1"));
  const pid_t pid = started_pid(log, c.get(sweep).jobs(0).job_id(), 1);
  ASSERT_GT(pid, 0) << log;
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto job = c.get(sweep).jobs(0);
  EXPECT_EQ(pb::JobState_Name(job.state()), "SUCCEEDED") << job.message();
  EXPECT_EQ(job.attempt(), 2);
  EXPECT_EQ(job.worker_id(), "w1");
  EXPECT_FALSE(w1.wait_for_exit(0s)) << "the worker is still serving\n" << c.diagnostics();
  expect_complete_curves(c, c.get(sweep));
}

}  // namespace
}  // namespace orchestration_test
