// A sweep's life through coordinator, workers and sweepctl: submission to results, cancellation,
// a graceful worker shutdown.
#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

TEST(Orchestration, QuickSweepRunsToCompletionOnThreeWorkers) {
  Cluster c("quick");
  c.start_coordinator();
  for (const char* id : {"w1", "w2", "w3"}) c.start_worker(id);
  const int64_t sweep = c.submit(sweep_yaml("quick", c.cache(), 40, R"(
grid:
  optimizer: [{name: adamw, lr: 3.0e-3}, {name: muon, lr: 1.0e-2}]
seeds: [1, 2, 3]
targets: [4.0]
)"));
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  ASSERT_EQ(s.jobs_size(), 6);
  std::set<std::string> used_workers;
  for (const auto& j : s.jobs()) {
    EXPECT_EQ(pb::JobState_Name(j.state()), "SUCCEEDED") << j.message();
    EXPECT_EQ(j.step(), 40);
    used_workers.insert(j.worker_id());
  }
  EXPECT_GE(used_workers.size(), 2u) << "jobs should spread over the workers";
  expect_complete_curves(c, s);

  const pb::GetResultsResponse results = c.results(sweep);
  ASSERT_EQ(results.ablation_size(), 2);
  EXPECT_EQ(results.ablation(0).val_ppl().n(), 3);
  ASSERT_EQ(results.ratios_size(), 1) << "both optimizers reach loss 4.0: R_L(B) exists";
  EXPECT_EQ(results.ratios(0).ratio().kind(), pb::RATIO_ESTIMATE)
      << results.ratios(0).ratio().note();
  EXPECT_GT(results.ratios(0).ratio().value(), 0.0);
  EXPECT_EQ(results.ratios(0).ratio().pairs(), 3);
  EXPECT_TRUE(results.ratios(0).ratio().has_interval());

  // The dashboard's JSON API over the same SQLite file.
  httplib::Client http("127.0.0.1", c.http_port());
  const auto get_json = [&](const std::string& path) {
    const auto res = http.Get(path);
    EXPECT_TRUE(res && res->status == 200) << path;
    return nlohmann::json::parse(res ? res->body : "{}");
  };
  const auto detail = get_json("/api/sweeps/" + std::to_string(sweep));
  EXPECT_EQ(detail["sweep"]["state"], "SWEEP_FINISHED");
  ASSERT_EQ(detail["jobs"].size(), 6u);
  const auto curves = get_json("/api/sweeps/" + std::to_string(sweep) + "/curves?points=10");
  for (const auto& job : curves["jobs"]) {
    EXPECT_LE(job["train"]["step"].size(), 10u) << "the point budget is respected";
    EXPECT_EQ(job["train"]["step"].back(), 40);
    EXPECT_GE(job["val"]["step"].size(), 2u);
  }
  const auto api_results = get_json("/api/sweeps/" + std::to_string(sweep) + "/results");
  ASSERT_EQ(api_results["ratios"].size(), 1u);
  // The same message as JSON: proto field names, enums by name.
  EXPECT_DOUBLE_EQ(api_results["ratios"][0]["ratio"]["value"].get<double>(),
                   results.ratios(0).ratio().value());
  EXPECT_EQ(api_results["ratios"][0]["ratio"]["kind"], "RATIO_ESTIMATE");
  EXPECT_DOUBLE_EQ(api_results["ablation"][0]["val_ppl"]["mean"].get<double>(),
                   results.ablation(0).val_ppl().mean());
  const auto run =
      get_json("/api/runs/" + std::to_string(detail["jobs"][0]["job_id"].get<int64_t>()));
  EXPECT_EQ(run["config"]["training"]["max_steps"], 40);
  EXPECT_EQ(run["summary"]["status"], "succeeded");
  EXPECT_EQ(get_json("/api/workers")["workers"].size(), 3u);
  // Each job's settings by the config paths the grid varies (the page filters and groups by
  // them); the seed has its own column, so it is not one of them.
  const auto columns = detail["config_columns"];
  EXPECT_NE(std::find(columns.begin(), columns.end(), "optimizer.name"), columns.end()) << columns;
  EXPECT_EQ(std::find(columns.begin(), columns.end(), "seed"), columns.end()) << columns;
  for (const auto& job : detail["jobs"])
    EXPECT_EQ(job["settings"]["optimizer.name"], job["optimizer"]) << job;
  // Compare: chosen runs with their curves; the columns are what differs among those runs.
  std::string two_adamw;
  for (const auto& job : detail["jobs"])
    if (job["optimizer"] == "adamw")
      two_adamw += (two_adamw.empty() ? "" : ",") + std::to_string(job["job_id"].get<int64_t>());
  const auto compared = get_json("/api/compare?points=10&runs=" + two_adamw);
  ASSERT_EQ(compared["runs"].size(), 3u);
  EXPECT_EQ(compared["config_columns"], nlohmann::json::array()) << "same settings but the seed";
  for (const auto& r : compared["runs"]) {
    EXPECT_EQ(r["sweep_name"], "quick");
    EXPECT_EQ(r["train"]["step"].back(), 40);
  }
  EXPECT_EQ(http.Get("/api/compare?runs=1,two")->status, 400);
  // A browser accepts brotli, which cpp-httplib would run at its slowest quality (seconds for a
  // large sweep's curves): the server answers such a client with gzip.
  const auto browser_like = http.Get("/api/sweeps/" + std::to_string(sweep) + "/curves",
                                     {{"Accept-Encoding", "gzip, deflate, br"}});
  ASSERT_TRUE(browser_like && browser_like->status == 200);
  EXPECT_EQ(browser_like->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(nlohmann::json::parse(browser_like->body)["jobs"].size(), 6u);
  EXPECT_EQ(get_json("/api/metric-names?runs=" + two_adamw)["metrics"], nlohmann::json::array());

  // `coordinator backup` copies the live database consistently; the copy holds the whole sweep.
  const std::string copy = c.dir() + "/backup.db";
  const auto backup = test_process::run_command(
      {COORDINATOR_BINARY, "backup", copy, "--db", c.dir() + "/sweeps.db"});
  ASSERT_EQ(backup.exit_code, 0) << backup.out;
  {
    server::Database restored(copy);
    server::Statement q(restored.handle(), "SELECT COUNT(*), SUM(state = 'SUCCEEDED') FROM jobs");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.int64(0), 6);
    EXPECT_EQ(q.int64(1), 6);
  }
  // A coordinator refuses to start on a corrupt database, with the reason.
  const std::string broken = c.dir() + "/broken.db";
  std::filesystem::copy_file(copy, broken);
  {
    std::fstream f(broken, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3 * 4096);
    const std::string garbage(4096, '\xAB');
    f.write(garbage.data(), std::streamsize(garbage.size()));
  }
  const auto refused = test_process::run_command(
      {COORDINATOR_BINARY, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", broken});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.out.find("database " + broken + " is corrupt"), std::string::npos)
      << refused.out;
  EXPECT_EQ(http.Get("/api/sweeps/999")->status, 404);
  EXPECT_EQ(http.Get("/api/sweeps/999/curves")->status, 404);
  EXPECT_EQ(http.Get("/api/sweeps/999/curves?format=packed")->status, 404);
  // A bad parameter or id is a 400 that names it, not a silent default or a 500.
  const auto bad_points = http.Get("/api/sweeps/" + std::to_string(sweep) + "/curves?points=lots");
  ASSERT_TRUE(bad_points);
  EXPECT_EQ(bad_points->status, 400);
  EXPECT_NE(bad_points->body.find("points="), std::string::npos) << bad_points->body;
  EXPECT_EQ(http.Get("/api/runs/99999999999999999999999")->status, 400);
  const auto page = http.Get("/");
  ASSERT_TRUE(page && page->status == 200);
  EXPECT_NE(page->body.find("<script src=\"/app.js\">"), std::string::npos);
  EXPECT_EQ(http.Get("/vendor/uPlot.iife.min.js")->status, 200);
}

TEST(Orchestration, CancelStopsRunningJobsAndWorkerShutdownHandsJobsBack) {
  Cluster c("cancel");
  c.start_coordinator();
  ChildProcess& w1 = c.start_worker("w1", 2);
  const int64_t first = c.submit(sweep_yaml("cancel-me", c.cache(), 5000, "seeds: [1, 2, 3]\n"));
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = c.get(first);
        return s.jobs_size() && s.jobs(0).step() > 5;
      },
      60s))
      << c.diagnostics();
  auto stub = pb::SweepService::NewStub(orchestrator_client::make_channel(c.endpoint()));
  pb::SweepRef ref;
  ref.set_sweep_id(first);
  pb::CancelSweepResponse cancelled;
  auto ctx = orchestrator_client::make_context(c.endpoint(), 5s);
  ASSERT_TRUE(stub->CancelSweep(ctx.get(), ref, &cancelled).ok());
  EXPECT_EQ(cancelled.cancelled_jobs(), 3);
  ASSERT_TRUE(wait_until([&] { return c.get(first).sweep().state() == pb::SWEEP_CANCELLED; }, 60s))
      << c.diagnostics();

  // SIGTERM: the worker checkpoints its job and hands it back; it is PENDING again, not failed.
  const int64_t second = c.submit(sweep_yaml("hand-back", c.cache(), 5000, ""));
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = c.get(second);
        return s.jobs_size() && s.jobs(0).step() > 5;
      },
      60s))
      << c.diagnostics();
  w1.kill(SIGTERM);
  const auto code = w1.wait_for_exit(60s);
  ASSERT_TRUE(code) << c.diagnostics();
  EXPECT_EQ(WEXITSTATUS(*code), 0);
  const auto job = c.get(second).jobs(0);
  EXPECT_EQ(pb::JobState_Name(job.state()), "PENDING") << job.message();
  EXPECT_NE(job.message().find("handed back by worker w1"), std::string::npos) << job.message();
}

// A worker that says it is leaving (its heartbeat, on SIGTERM) is leased nothing more, and its
// job poll ends at once instead of waiting out its wait; registering again brings it back.
TEST(Orchestration, ALeavingWorkerIsLeasedNothingMore) {
  Cluster c("leaving");
  c.start_coordinator();
  const int64_t sweep = c.submit(sweep_yaml("leaving", c.cache(), 10, ""));
  ASSERT_EQ(c.get(sweep).jobs_size(), 1);
  HandWorker w(c.endpoint(), "by-hand", 1);
  ASSERT_TRUE(w.register_worker().ok());
  pb::HeartbeatRequest bye;
  bye.set_worker_id("by-hand");
  bye.set_leaving(true);
  pb::HeartbeatResponse heard;
  ASSERT_TRUE(w.call(&pb::WorkerService::Stub::Heartbeat, bye, heard).ok());
  pb::AcquireJobRequest poll;
  poll.set_worker_id("by-hand");
  poll.set_free_slots(1);
  poll.set_wait_ms(30000);  // past the call's 10 s deadline: only an early answer passes
  pb::AcquireJobResponse nothing;
  const grpc::Status polled = w.call(&pb::WorkerService::Stub::AcquireJob, poll, nothing);
  ASSERT_TRUE(polled.ok()) << polled.error_message();
  EXPECT_FALSE(nothing.has_job()) << "a job is pending, but the worker is leaving";
  EXPECT_EQ(pb::JobState_Name(c.get(sweep).jobs(0).state()), "PENDING");
  ASSERT_TRUE(w.register_worker().ok());
  pb::AcquireJobResponse leased;
  ASSERT_TRUE(w.call(&pb::WorkerService::Stub::AcquireJob, poll, leased).ok());
  EXPECT_TRUE(leased.has_job());
}

}  // namespace
}  // namespace orchestration_test
