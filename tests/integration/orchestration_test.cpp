// The service as it runs: a real coordinator, real worker daemons and real job processes on
// 127.0.0.1, a real SQLite file, and failures injected with kill -9.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>

#include "../unit/alias_bomb.h"
#include "client_channel.h"
#include "orchestrator.grpc.pb.h"
#include "process.h"
#include "server/storage/series_store.h"
#include "server/storage/sqlite_db.h"
#include "trainer_core/train/run_records.h"

namespace {

namespace pb = orchestrator::v1;
using namespace std::chrono_literals;
using test_process::ChildProcess;
using test_process::wait_until;

// Jobs of a one-layer model on 1 MB of GCIDE: a fraction of a second to a few seconds each.
std::string sweep_yaml(const std::string& name, const std::string& cache_dir, int max_steps,
                       const std::string& extra) {
  return "name: " + name + R"(
base:
  model: {preset: tiny, n_layer: 1, hidden: 64, n_head: 2, ffn_hidden: 128, seq_len: 64}
  optimizer: {name: adamw, lr: 3.0e-3}
  training: {max_steps: )" +
         std::to_string(max_steps) +
         R"(, batch_tokens: 512, micro_batch: 8, eval_every: 20, eval_tokens: 4096}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: )" +
         cache_dir + R"(}
)" + extra;
}

// A sweep of one run of examples/external/bigram.py, the plain-Python external trainer.
const std::string kBigramScript = std::string(SOURCE_DIR) + "/examples/external/bigram.py";
std::string bigram_sweep_yaml(const std::string& name, int max_steps) {
  return "name: " + name + "\nbase:\n  command: [/usr/bin/python3, " + kBigramScript +
         "]\n  optimizer: {name: sgd, lr: 1.0}\n  training: {max_steps: " +
         std::to_string(max_steps) +
         ", batch_tokens: 64, eval_every: 50, eval_tokens: 512}\n"
         "  data: {max_corpus_bytes: 200000}\ntargets: [5.0]\n";
}

// The pid of a job's process, from its worker's "job J attempt A started (...), pid P" line; -1
// when the log has no such line.
pid_t started_pid(const std::string& worker_log, int64_t job, int attempt) {
  std::smatch m;
  const std::regex line("job " + std::to_string(job) + " attempt " + std::to_string(attempt) +
                        " started \\([^)]*\\), pid (\\d+)");
  return std::regex_search(worker_log, m, line) ? pid_t(std::stol(m[1])) : -1;
}

class Cluster {
 public:
  explicit Cluster(const std::string& name, const std::string& token = "") : token_(token) {
    dir_ =
        std::filesystem::temp_directory_path() / ("orch_" + name + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    port_ = test_process::free_port();
    endpoint_.address = "127.0.0.1:" + std::to_string(port_);
    endpoint_.token = token;
    stub_ = pb::SweepService::NewStub(orchestrator_client::make_channel(endpoint_));
  }
  ~Cluster() {
    workers_.clear();
    coordinator_.reset();
    if (!std::getenv("KEEP_TEST_DIRS")) std::filesystem::remove_all(dir_);
  }
  std::string dir() const { return dir_.string(); }
  std::string cache() const { return (dir_ / "cache").string(); }
  const orchestrator_client::Endpoint& endpoint() const { return endpoint_; }

  void start_coordinator(int lease_ms = 3000, const std::vector<std::string>& extra = {}) {
    std::filesystem::remove(dir_ / "ports.json");
    std::vector<std::string> args = {COORDINATOR_BINARY,
                                     "--listen",
                                     endpoint_.address,
                                     "--http",
                                     "127.0.0.1:0",
                                     "--db",
                                     (dir_ / "sweeps.db").string(),
                                     "--checkpoint-root",
                                     (dir_ / "checkpoints").string(),
                                     "--lease-ms",
                                     std::to_string(lease_ms),
                                     "--heartbeat-ms",
                                     "300",
                                     "--ports-file",
                                     (dir_ / "ports.json").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    if (!token_.empty()) args.insert(args.end(), {"--token", token_});
    coordinator_ = std::make_unique<ChildProcess>(args, (dir_ / "coordinator.log").string());
    ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(dir_ / "ports.json"); }, 20s))
        << test_process::read_text((dir_ / "coordinator.log").string());
  }
  void kill_coordinator() {
    coordinator_->kill(SIGKILL);
    coordinator_->wait_for_exit(5s);
    coordinator_.reset();
  }
  int http_port() {
    const std::string text = test_process::read_text((dir_ / "ports.json").string());
    return std::stoi(text.substr(text.find("\"http\": ") + 8));
  }
  ChildProcess& start_worker(const std::string& id, int slots = 1, const std::string& token = "-",
                             const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {WORKER_BINARY,
                                     "--coordinator",
                                     endpoint_.address,
                                     "--worker-id",
                                     id,
                                     "--slots",
                                     std::to_string(slots),
                                     "--threads-per-job",
                                     "1",
                                     "--work-dir",
                                     (dir_ / id).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string t = token == "-" ? token_ : token;
    if (!t.empty()) args.insert(args.end(), {"--token", t});
    workers_.push_back(std::make_unique<ChildProcess>(args, worker_log(id)));
    return *workers_.back();
  }
  std::string worker_log(const std::string& id) const { return (dir_ / (id + ".log")).string(); }

  int64_t submit(const std::string& yaml) {
    pb::SubmitSweepRequest req;
    req.set_spec(yaml);
    req.set_source_name("test.yaml");
    pb::SubmitSweepResponse resp;
    auto ctx = orchestrator_client::make_context(endpoint_, 10s);
    const grpc::Status s = stub_->SubmitSweep(ctx.get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.sweep_id();
  }
  pb::GetSweepResponse get(int64_t sweep) {
    pb::SweepRef ref;
    ref.set_sweep_id(sweep);
    pb::GetSweepResponse resp;
    auto ctx = orchestrator_client::make_context(endpoint_, 5s);
    stub_->GetSweep(ctx.get(), ref, &resp);  // while the coordinator is down this stays empty
    return resp;
  }
  pb::GetResultsResponse results(int64_t sweep) {
    pb::SweepRef ref;
    ref.set_sweep_id(sweep);
    pb::GetResultsResponse resp;
    auto ctx = orchestrator_client::make_context(endpoint_, 10s);
    const grpc::Status s = stub_->GetResults(ctx.get(), ref, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  bool wait_finished(int64_t sweep, std::chrono::seconds timeout = 180s) {
    return wait_until([&] { return get(sweep).sweep().state() == "finished"; }, timeout);
  }
  // (count, min step, max step) of a job's stored training curve.
  std::tuple<int64_t, int64_t, int64_t> curve(int64_t job_id) {
    server::Database db((dir_ / "sweeps.db").string());
    const auto points = server::SeriesStore(db).read(job_id, server::Metric::kTrainLoss);
    if (points.empty()) return {0, 0, 0};
    return {int64_t(points.size()), points.front().step, points.back().step};
  }
  std::string diagnostics() {
    std::string out =
        "coordinator log:\n" + test_process::read_text((dir_ / "coordinator.log").string());
    for (const auto& entry : std::filesystem::directory_iterator(dir_))
      if (entry.path().extension() == ".log" && entry.path().filename() != "coordinator.log")
        out += "\n" + entry.path().filename().string() + ":\n" +
               test_process::read_text(entry.path().string());
    return out;
  }

 private:
  std::filesystem::path dir_;
  std::string token_;
  int port_ = 0;
  orchestrator_client::Endpoint endpoint_;
  std::unique_ptr<pb::SweepService::Stub> stub_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
};

void expect_complete_curves(Cluster& c, const pb::GetSweepResponse& sweep) {
  for (const auto& job : sweep.jobs()) {
    const auto [count, first, last] = c.curve(job.job_id());
    EXPECT_EQ(count, job.max_steps())
        << "job " << job.job_id() << ": a point is missing or duplicated";
    EXPECT_EQ(first, 1) << "job " << job.job_id();
    EXPECT_EQ(last, job.max_steps()) << "job " << job.job_id();
  }
}

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
  EXPECT_EQ(detail["sweep"]["state"], "finished");
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
  const auto run = get_json("/api/runs/" + std::to_string(detail["jobs"][0]["id"].get<int64_t>()));
  EXPECT_EQ(run["config"]["training"]["max_steps"], 40);
  EXPECT_EQ(run["summary"]["status"], "succeeded");
  EXPECT_EQ(get_json("/api/workers")["workers"].size(), 3u);
  // Each job's settings by the config paths the grid varies (the page filters and groups by
  // them); the seed has its own column, so it is not one of them.
  const auto columns = detail["config_columns"];
  EXPECT_NE(std::find(columns.begin(), columns.end(), "optimizer.name"), columns.end()) << columns;
  EXPECT_EQ(std::find(columns.begin(), columns.end(), "seed"), columns.end()) << columns;
  for (const auto& job : detail["jobs"])
    EXPECT_EQ(job["config"]["optimizer.name"], job["optimizer"]) << job;
  // Compare: chosen runs with their curves; the columns are what differs among those runs.
  std::string two_adamw;
  for (const auto& job : detail["jobs"])
    if (job["optimizer"] == "adamw")
      two_adamw += (two_adamw.empty() ? "" : ",") + std::to_string(job["id"].get<int64_t>());
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

// A sweep trains on token shards named by path; a worker that cannot see them fails the job with
// the missing path, a bounded number of times (max_attempts), and goes on serving.
TEST(Orchestration, SweepsTrainOnShardsByPathAndMissingShardsFailWithThePath) {
  Cluster c("no_data");
  c.start_coordinator();
  ChildProcess& worker = c.start_worker("w1");
  const std::string missing = c.cache() + "/nowhere/train_*.bin";
  const std::string grid = "max_attempts: 2\ngrid:\n  data: [{train: '" + missing + "', val: '" +
                           c.cache() + "/nowhere/val.bin'}]\n";
  const int64_t sweep = c.submit(sweep_yaml("no-data", c.cache(), 10, grid));
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  ASSERT_EQ(s.jobs_size(), 1);
  EXPECT_EQ(pb::JobState_Name(s.jobs(0).state()), "FAILED");
  EXPECT_EQ(s.jobs(0).attempt(), 2);
  EXPECT_NE(s.jobs(0).message().find("data.train: no token shard matches " + missing),
            std::string::npos)
      << s.jobs(0).message();
  EXPECT_FALSE(worker.wait_for_exit(0ms));

  // The same sweep on shards the test prepares: it trains, and the results name the dataset.
  const std::string shards = c.cache() + "/gcide-bytes";
  const auto prepared = test_process::run_command(
      {TRAINER_BINARY, "prepare-data", "gcide", "--out", shards, "--tokenizer", "byte",
       "--text-documents", "paragraphs", "--max-bytes", "2000000"});
  ASSERT_EQ(prepared.exit_code, 0) << prepared.out;
  const nlohmann::json manifest = nlohmann::json::parse(std::ifstream(shards + "/manifest.json"));
  const int64_t ok =
      c.submit(sweep_yaml("shards", c.cache(), 10,
                          "grid:\n  data: [{train: '" + shards + "/train_*.bin', val: '" + shards +
                              "/val_*.bin'}]\nseeds: [1, 2]\n"));
  ASSERT_TRUE(c.wait_finished(ok)) << c.diagnostics();
  const auto done = c.get(ok);
  for (const auto& j : done.jobs())
    EXPECT_EQ(pb::JobState_Name(j.state()), "SUCCEEDED") << j.message();
  const pb::GetResultsResponse results = c.results(ok);
  std::string notes;
  for (const auto& n : results.notes()) notes += n + "\n";
  EXPECT_NE(notes.find("every run trained on dataset " +
                       manifest["dataset_id"].get<std::string>().substr(0, 12) + " (2 runs"),
            std::string::npos)
      << notes;
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

// The run-record contract end to end: the named metrics a trainer writes reach the API through
// worker, wire and store unchanged, value for value (the trainer command, run on the same config,
// writes the reference).
TEST(Orchestration, NamedMetricsReachTheApiUnchangedFromTheTrainersRunRecords) {
  Cluster c("named_metrics");
  c.start_coordinator();
  c.start_worker("w1");
  const int steps = 30;
  const int64_t sweep = c.submit(
      "name: moe\nbase:\n"
      "  model: {preset: tiny, n_layer: 1, hidden: 32, n_head: 2, ffn_hidden: 64, seq_len: 32, "
      "ffn: moe, n_experts: 4, top_k: 2}\n"
      "  optimizer: {name: adamw, lr: 3.0e-3}\n"
      "  training: {max_steps: " +
      std::to_string(steps) +
      ", batch_tokens: 256, micro_batch: 8, "
      "eval_every: 10, eval_tokens: 2048}\n"
      "  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: " +
      c.cache() + "}\n");
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const int64_t job = c.get(sweep).jobs(0).job_id();

  httplib::Client http("127.0.0.1", c.http_port());
  const auto get_json = [&](const std::string& path) {
    const auto res = http.Get(path);
    EXPECT_TRUE(res && res->status == 200) << path << ": " << (res ? res->body : "no answer");
    return nlohmann::json::parse(res ? res->body : "{}");
  };
  const auto names = get_json("/api/runs/" + std::to_string(job) + "/metrics")["metrics"];
  EXPECT_EQ(names, nlohmann::json({"moe/balance_loss", "moe/load/expert0", "moe/load/expert1",
                                   "moe/load/expert2", "moe/load/expert3", "moe/load_max"}));

  // The reference: the trainer command on the job's config writes the same run records.
  nlohmann::json config = get_json("/api/runs/" + std::to_string(job))["config"];
  config["threads"] = 1;  // as the worker ran it (--threads-per-job 1)
  const std::string config_path = c.dir() + "/job.json", records = c.dir() + "/records.jsonl";
  std::ofstream(config_path) << config.dump();
  const auto trained = test_process::run_command(
      {TRAINER_BINARY, "run", config_path, "--jsonl", records, "--quiet"});
  ASSERT_EQ(trained.exit_code, 0) << trained.out;
  std::map<std::string, std::map<int64_t, double>> expected;
  std::ifstream in(records);
  for (std::string line; std::getline(in, line);)
    if (const auto record = trainer_core::parse_run_record(line))
      if (const auto* step = std::get_if<trainer_core::StepMetrics>(&*record))
        for (const auto& v : step->metrics) expected[v.name][step->step] = v.value;
  ASSERT_EQ(expected.size(), 6u);
  for (const auto& [name, values] : expected) {
    const auto served =
        get_json("/api/metrics?name=" + name + "&runs=" + std::to_string(job) + "&points=1000");
    const auto& curve = served["runs"][0]["curve"];
    ASSERT_EQ(curve["step"].size(), size_t(steps)) << name << ": one bucket per step";
    for (size_t i = 0; i < curve["step"].size(); ++i) {
      const int64_t step = curve["step"][i];
      EXPECT_EQ(curve["mean"][i].get<double>(), values.at(step)) << name << " at step " << step;
      EXPECT_EQ(curve["min"][i], curve["max"][i]);
    }
  }
  // Bad requests name what is wrong; an unknown metric is a 404.
  EXPECT_EQ(http.Get("/api/metrics?name=nothing&runs=" + std::to_string(job))->status, 404);
  EXPECT_EQ(http.Get("/api/metrics?name=moe/load_max&runs=1,x")->status, 400);
  EXPECT_EQ(http.Get("/api/metrics?runs=1")->status, 400);
}

std::vector<std::string> split_csv_line(const std::string& line) {  // no quoted cells here
  std::vector<std::string> cells;
  size_t start = 0;
  for (size_t comma; (comma = line.find(',', start)) != std::string::npos; start = comma + 1)
    cells.push_back(line.substr(start, comma - start));
  cells.push_back(line.substr(start));
  return cells;
}

// `sweepctl export` and the API's download give every stored point of every metric in long
// format, with the config columns the sweep varies, and one summary row per run.
TEST(Orchestration, ExportGivesEveryPointOfEveryMetricForPandas) {
  Cluster c("export");
  c.start_coordinator();
  c.start_worker("w1");
  const int64_t sweep = c.submit(sweep_yaml("export", c.cache(), 30, R"(
grid:
  optimizer: [{name: adamw, lr: 3.0e-3}, {name: muon, lr: 1.0e-2}]
targets: [4.5]
)"));
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const std::string csv_path = c.dir() + "/curves.csv", jsonl_path = c.dir() + "/curves.jsonl",
                    summaries_path = c.dir() + "/summaries.csv";
  for (const auto& [args, path] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--format", "csv"}, csv_path},
           {{"--format", "jsonl"}, jsonl_path},
           {{"--table", "summaries"}, summaries_path}}) {
    std::vector<std::string> argv = {SWEEPCTL_BINARY,
                                     "--coordinator",
                                     c.endpoint().address,
                                     "export",
                                     std::to_string(sweep),
                                     "--output",
                                     path};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = test_process::run_command(argv);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  std::ifstream csv(csv_path);
  std::string header;
  std::getline(csv, header);
  const auto columns = split_csv_line(header);
  EXPECT_EQ(std::vector<std::string>(columns.begin(), columns.begin() + 4),
            (std::vector<std::string>{"job", "label", "seed", "state"}));
  EXPECT_NE(std::find(columns.begin(), columns.end(), "optimizer.name"), columns.end()) << header;
  EXPECT_NE(std::find(columns.begin(), columns.end(), "optimizer.lr"), columns.end()) << header;
  EXPECT_EQ(std::find(columns.begin(), columns.end(), "training.max_steps"), columns.end())
      << "only what the sweep varies: " << header;
  EXPECT_EQ(std::vector<std::string>(columns.end() - 3, columns.end()),
            (std::vector<std::string>{"step", "metric", "value"}));
  std::map<std::string, int> rows_per_metric;
  std::map<std::pair<std::string, std::string>, std::string> train_loss;  // (job, step) -> value
  size_t rows = 0;
  for (std::string line; std::getline(csv, line); ++rows) {
    const auto cells = split_csv_line(line);
    ASSERT_EQ(cells.size(), columns.size()) << line;
    const std::string& metric = cells[columns.size() - 2];
    ++rows_per_metric[metric];
    if (metric == "train_loss") train_loss[{cells[0], cells[columns.size() - 3]}] = cells.back();
  }
  for (const char* metric : {"train_loss", "lr", "grad_norm", "tokens", "elapsed_s"})
    EXPECT_EQ(rows_per_metric[metric], 2 * 30) << metric << ": every step of both runs";
  EXPECT_GE(rows_per_metric["val_loss"], 2 * 3);
  // The values are the stored ones, at full precision.
  httplib::Client http("127.0.0.1", c.http_port());
  const auto finished = c.get(sweep);
  for (const auto& job : finished.jobs()) {
    const auto run = nlohmann::json::parse(
        http.Get("/api/runs/" + std::to_string(job.job_id()) + "?points=1000")->body);
    for (size_t i = 0; i < run["train"]["step"].size(); ++i) {
      const std::string step = std::to_string(run["train"]["step"][i].get<int64_t>());
      const std::string exported = train_loss[{std::to_string(job.job_id()), step}];
      ASSERT_FALSE(exported.empty()) << "job " << job.job_id() << " step " << step;
      EXPECT_EQ(std::stod(exported), run["train"]["mean"][i].get<double>()) << "step " << step;
    }
  }
  // JSON lines: the same rows, one object each.
  std::ifstream jsonl(jsonl_path);
  size_t objects = 0;
  for (std::string line; std::getline(jsonl, line); ++objects) {
    const auto row = nlohmann::json::parse(line);
    ASSERT_TRUE(row.contains("metric") && row.contains("value") && row.contains("optimizer.name"))
        << line;
  }
  EXPECT_EQ(objects, rows);
  // Summaries: one row per run, targets by their loss.
  std::ifstream summaries(summaries_path);
  std::getline(summaries, header);
  EXPECT_NE(header.find("final_val_loss"), std::string::npos) << header;
  EXPECT_NE(header.find("to_target_4.5.tokens"), std::string::npos) << header;
  size_t summary_rows = 0;
  for (std::string line; std::getline(summaries, line);) ++summary_rows;
  EXPECT_EQ(summary_rows, 2u);
  // The API's download is the same table.
  const auto download =
      http.Get("/api/sweeps/" + std::to_string(sweep) + "/export?table=curves&format=csv");
  ASSERT_TRUE(download && download->status == 200);
  EXPECT_EQ(download->body, test_process::read_text(csv_path));
  EXPECT_EQ(http.Get("/api/sweeps/" + std::to_string(sweep) + "/export?format=xlsx")->status, 400);
}

// A program of the user's own (examples/external/bigram.py, plain Python) runs in a sweep beside
// the built-in trainer: its run records become curves and results like any job's.
TEST(Orchestration, AnExternalTrainerRunsBesideTheBuiltInOne) {
  Cluster c("external");
  c.start_coordinator();
  c.start_worker("w1", 2);
  std::string spec =
      test_process::read_text(std::string(SOURCE_DIR) + "/examples/external/sweep.yaml");
  const std::string relative = "[python3, examples/external/bigram.py]";
  ASSERT_NE(spec.find(relative), std::string::npos);
  spec.replace(spec.find(relative), relative.size(),
               "[/usr/bin/python3, " + std::string(SOURCE_DIR) + "/examples/external/bigram.py]");
  spec.replace(spec.find("max_corpus_bytes: 1000000}"), 26,
               "max_corpus_bytes: 1000000, cache_dir: " + c.cache() + "}");
  const int64_t sweep = c.submit(spec);
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  ASSERT_EQ(s.jobs_size(), 4);
  for (const auto& job : s.jobs())
    EXPECT_EQ(pb::JobState_Name(job.state()), "SUCCEEDED") << job.label() << ": " << job.message();
  expect_complete_curves(c, s);
  const auto results = c.results(sweep);
  ASSERT_EQ(results.ablation_size(), 2);
  for (const auto& row : results.ablation()) {
    EXPECT_EQ(row.val_ppl().n(), 2) << row.label();
    EXPECT_GT(row.val_ppl().mean(), 1.0) << row.label();
  }
  // Its named metric is stored like the built-in trainer's.
  httplib::Client http("127.0.0.1", c.http_port());
  for (const auto& job : s.jobs())
    if (job.label() == "bigram-python") {
      const auto names = nlohmann::json::parse(
          http.Get("/api/runs/" + std::to_string(job.job_id()) + "/metrics")->body)["metrics"];
      EXPECT_EQ(names, nlohmann::json({"bigram/rows_seen"}));
    }
}

// An external trainer gets the built-in trainer's hand-back: SIGTERM to its worker, the job goes
// back to the queue, and another worker resumes it from the program's own checkpoint. The
// example restores its sampler too, so the resumed run ends exactly where one without a stop
// does.
TEST(Orchestration, AnExternalTrainerIsHandedBackAndResumesFromItsOwnCheckpoint) {
  Cluster c("external-resume");
  c.start_coordinator();
  ChildProcess& w1 = c.start_worker("w1");
  const int64_t sweep = c.submit(bigram_sweep_yaml("bigram-resume", 1500));
  ASSERT_TRUE(wait_until([&] { return c.get(sweep).jobs(0).step() > 120; }, 120s))
      << c.diagnostics();
  w1.kill(SIGTERM);
  ASSERT_TRUE(w1.wait_for_exit(60s)) << c.diagnostics();
  auto job = c.get(sweep).jobs(0);
  ASSERT_EQ(pb::JobState_Name(job.state()), "PENDING") << job.message();
  const int64_t stopped_at = job.step();
  c.start_worker("w2");
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  job = s.jobs(0);
  EXPECT_EQ(pb::JobState_Name(job.state()), "SUCCEEDED") << job.message();
  EXPECT_EQ(job.worker_id(), "w2");
  expect_complete_curves(c, s);
  // The second worker started the program again, and it went on from its checkpoint.
  const std::string w2_log = test_process::read_text(c.worker_log("w2"));
  const size_t at = w2_log.find("resumed at step ");
  ASSERT_NE(at, std::string::npos) << w2_log;
  const int64_t resumed_at = std::stoll(w2_log.substr(at + 16));
  EXPECT_GT(resumed_at, 100) << w2_log;
  EXPECT_LE(resumed_at, stopped_at + 50) << w2_log;
  httplib::Client http("127.0.0.1", c.http_port());
  const auto run =
      nlohmann::json::parse(http.Get("/api/runs/" + std::to_string(job.job_id()))->body);
  // The same config run by hand in one go, without a checkpoint directory.
  const std::string config_path = c.dir() + "/by-hand.json";
  std::ofstream(config_path) << run["config"].dump();
  const auto by_hand = test_process::run_command({"/usr/bin/python3", kBigramScript, config_path});
  ASSERT_EQ(by_hand.exit_code, 0) << by_hand.out;
  const std::string last_line =
      by_hand.out.substr(by_hand.out.rfind('\n', by_hand.out.size() - 2) + 1);
  const auto uninterrupted = nlohmann::json::parse(last_line);
  EXPECT_GT(stopped_at, 120);
  EXPECT_EQ(run["summary"]["steps"], 1500);
  EXPECT_DOUBLE_EQ(run["summary"]["final_val_loss"].get<double>(),
                   uninterrupted["final_val_loss"].get<double>())
      << "resumed at step " << stopped_at << " from the checkpoint; the loss should not differ";
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

TEST(Orchestration, CallsWithoutTheTokenAreRefused) {
  Cluster c("token", "s3cret");
  c.start_coordinator();
  // sweepctl without the token: one clear line, non-zero exit.
  const std::string out = c.dir() + "/sweepctl.out";
  ChildProcess anonymous(
      {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "--token", "", "list"}, out);
  const auto code = anonymous.wait_for_exit(20s);
  ASSERT_TRUE(code);
  EXPECT_EQ(WEXITSTATUS(*code), 1);
  EXPECT_NE(test_process::read_text(out).find("missing or wrong bearer token"), std::string::npos)
      << test_process::read_text(out);
  ChildProcess with_token(
      {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "--token", "s3cret", "list"},
      c.dir() + "/ok.out");
  EXPECT_EQ(WEXITSTATUS(*with_token.wait_for_exit(20s)), 0);
  // A worker with a wrong token never registers.
  c.start_worker("intruder", 1, "guess");
  std::this_thread::sleep_for(1500ms);
  auto stub = pb::SweepService::NewStub(orchestrator_client::make_channel(c.endpoint()));
  pb::ListWorkersResponse workers;
  auto ctx = orchestrator_client::make_context(c.endpoint(), 5s);
  ASSERT_TRUE(stub->ListWorkers(ctx.get(), pb::ListWorkersRequest(), &workers).ok());
  EXPECT_EQ(workers.workers_size(), 0);
  // A token file written by an editor (trailing space, CRLF) still works, as the coordinator's
  // does.
  std::ofstream(c.dir() + "/token") << "  s3cret \r\n";
  ChildProcess from_file(
      {WORKER_BINARY, "--coordinator", c.endpoint().address, "--worker-id", "from-file",
       "--token-file", c.dir() + "/token", "--work-dir", c.dir() + "/from-file"},
      c.dir() + "/from-file.log");
  for (int i = 0; i < 100 && workers.workers_size() == 0; ++i) {
    std::this_thread::sleep_for(100ms);
    auto list_ctx = orchestrator_client::make_context(c.endpoint(), 5s);
    ASSERT_TRUE(stub->ListWorkers(list_ctx.get(), pb::ListWorkersRequest(), &workers).ok());
  }
  ASSERT_EQ(workers.workers_size(), 1) << test_process::read_text(c.dir() + "/from-file.log");
  EXPECT_EQ(workers.workers(0).worker_id(), "from-file");
  // The metrics page wants the token too.
  httplib::Client http("127.0.0.1", c.http_port());
  EXPECT_EQ(http.Get("/metrics")->status, 401);
  EXPECT_EQ(http.Get("/metrics", {{"Authorization", "Bearer s3cret"}})->status, 200);
  EXPECT_EQ(http.Get("/api/sweeps")->status, 401);  // the dashboard's API too
  EXPECT_EQ(http.Get("/api/sweeps", {{"Authorization", "Bearer s3cret"}})->status, 200);
  // And nobody may listen beyond loopback without a token.
  ChildProcess open_port({COORDINATOR_BINARY, "--listen", "0.0.0.0:50999", "--check"},
                         c.dir() + "/check.out");
  EXPECT_NE(WEXITSTATUS(*open_port.wait_for_exit(10s)), 0);
  EXPECT_NE(
      test_process::read_text(c.dir() + "/check.out").find("refusing to listen on 0.0.0.0:50999"),
      std::string::npos);
}

TEST(Orchestration, TlsCoordinatorServesClientsThatTrustItsCa) {
  // The certificate set-up of docs/deploy.md, with openssl, then a TLS coordinator on loopback.
  const auto dir =
      std::filesystem::temp_directory_path() / ("orch_tls_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string d = dir.string();
  for (const std::string& cmd :
       {"openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout " + d +
            "/ca.key -out " + d + "/ca.pem",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout " + d + "/c.key -out " +
            d + "/c.csr",
        "printf 'subjectAltName=DNS:localhost\\n' > " + d + "/san.ext",
        "openssl x509 -req -in " + d + "/c.csr -CA " + d + "/ca.pem -CAkey " + d +
            "/ca.key -CAcreateserial -days 2 -extfile " + d + "/san.ext -out " + d + "/c.pem"})
    ASSERT_EQ(std::system((cmd + " > /dev/null 2>&1").c_str()), 0) << cmd;
  const int port = test_process::free_port();
  const std::string address = "localhost:" + std::to_string(port);
  ChildProcess coordinator(
      {COORDINATOR_BINARY, "--listen", "127.0.0.1:" + std::to_string(port), "--http", "127.0.0.1:0",
       "--db", d + "/s.db", "--tls-cert", d + "/c.pem", "--tls-key", d + "/c.key"},
      d + "/coordinator.log");
  ASSERT_TRUE(wait_until(
      [&] {
        return test_process::run_command(
                   {SWEEPCTL_BINARY, "--coordinator", address, "--tls-ca", d + "/ca.pem", "list"})
                   .exit_code == 0;
      },
      20s))
      << test_process::read_text(d + "/coordinator.log");
  // A plaintext client, or one that does not trust the CA, cannot talk to it.
  EXPECT_EQ(
      test_process::run_command({SWEEPCTL_BINARY, "--coordinator", address, "list"}).exit_code, 3);
  std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other -keyout " + d +
               "/o.key -out " + d + "/other.pem > /dev/null 2>&1")
                  .c_str());
  EXPECT_EQ(test_process::run_command(
                {SWEEPCTL_BINARY, "--coordinator", address, "--tls-ca", d + "/other.pem", "list"})
                .exit_code,
            3);
  std::filesystem::remove_all(dir);
}

// With no coordinator named (no --coordinator, no SWEEP_COORDINATOR), validate checks the file
// here instead of failing to connect.
TEST(Orchestration, SweepctlValidatesLocallyWhenNoCoordinatorIsNamed) {
  const auto good = test_process::run_command(
      {SWEEPCTL_BINARY, "validate", std::string(SOURCE_DIR) + "/examples/quick_cpu_sweep.yaml"});
  EXPECT_EQ(good.exit_code, 0) << good.out;
  EXPECT_NE(good.out.find("is valid: 16 jobs (checked locally"), std::string::npos) << good.out;
  const std::string bad =
      std::filesystem::temp_directory_path() / ("bad_local_" + std::to_string(getpid()) + ".yaml");
  std::ofstream(bad) << "name: x\nbase: {optimizer: {name: lion}}\n";
  const auto refused = test_process::run_command({SWEEPCTL_BINARY, "validate", bad});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.out.find("optimizer.name: must be one of adamw, muon, got 'lion'"),
            std::string::npos)
      << refused.out;
  std::filesystem::remove(bad);
}

TEST(Orchestration, SweepctlNamesEveryProblemOfABadSweepFile) {
  Cluster c("badfile");
  c.start_coordinator();
  const std::string file = c.dir() + "/bad.yaml";
  std::ofstream(file) << sweep_yaml("bad", c.cache(), 10, R"(
ablations:
  - {label: fast, set: {optimizer.lr: -1.0}}
grid:
  optimizer.name: [adamw, lion]
)");
  const std::string out = c.dir() + "/validate.out";
  ChildProcess validate({SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "validate", file},
                        out);
  EXPECT_EQ(WEXITSTATUS(*validate.wait_for_exit(20s)), 2);
  const std::string text = test_process::read_text(out);
  EXPECT_NE(text.find("ablations[0].set.optimizer.lr: must be > 0"), std::string::npos) << text;
  EXPECT_NE(text.find("grid.optimizer.name[1]: must be one of adamw, muon, got 'lion'"),
            std::string::npos)
      << text;
  ChildProcess submit({SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "submit", file},
                      c.dir() + "/submit.out");
  EXPECT_EQ(WEXITSTATUS(*submit.wait_for_exit(20s)), 2);

  // A YAML alias bomb (under 1 KB, 10^9 nodes expanded) is refused with the limit named, and the
  // coordinator goes on answering.
  std::ofstream(c.dir() + "/bomb.yaml") << test_documents::yaml_alias_bomb("name: bomb\n");
  ChildProcess refused(
      {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "submit", c.dir() + "/bomb.yaml"},
      c.dir() + "/bomb.out");
  EXPECT_EQ(WEXITSTATUS(*refused.wait_for_exit(20s)), 2);
  EXPECT_NE(test_process::read_text(c.dir() + "/bomb.out").find("refused: more than 100000 nodes"),
            std::string::npos)
      << test_process::read_text(c.dir() + "/bomb.out");
  ChildProcess list({SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "list"},
                    c.dir() + "/list.out");
  EXPECT_EQ(WEXITSTATUS(*list.wait_for_exit(20s)), 0);

  // Size limits, named: a 2 MiB sweep file passes gRPC but not the document limit; a 20 MiB one
  // does not pass gRPC's request limit.
  for (const auto& [mib, expected] : std::vector<std::pair<int, std::string>>{
           {2, "larger than the limit of 1048576 bytes"},
           {20, "message too large for gRPC's limits (requests 16 MiB"}}) {
    const std::string big = c.dir() + "/big" + std::to_string(mib) + ".yaml";
    std::ofstream(big) << "name: big\n# " << std::string(size_t(mib) << 20, 'x') << "\n";
    const auto r = test_process::run_command(
        {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "submit", big});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.out.find(expected), std::string::npos) << r.out.substr(0, 400);
  }
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
  ASSERT_TRUE(wait_until([&] { return c.get(first).sweep().state() == "cancelled"; }, 60s))
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

}  // namespace
