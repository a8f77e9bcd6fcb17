// The orchestration tests' cluster: a real coordinator, real worker daemons and real job
// processes on 127.0.0.1 with a real SQLite file, started and stopped by each test (Cluster),
// and the sweep files they submit. Shared by orchestration_*_test.cpp.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>

#include "../unit/alias_bomb.h"
#include "client/channel.h"
#include "orchestrator.grpc.pb.h"
#include "process.h"
#include "server/storage/series_store.h"
#include "server/storage/sqlite_db.h"
#include "trainer_core/train/run_records.h"

namespace orchestration_test {

namespace pb = orchestrator::v1;
using namespace std::chrono_literals;
using test_process::ChildProcess;
using test_process::wait_until;

// Jobs of a one-layer model on 1 MB of GCIDE: a fraction of a second to a few seconds each.
inline std::string sweep_yaml(const std::string& name, const std::string& cache_dir, int max_steps,
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
inline const std::string kBigramScript = std::string(SOURCE_DIR) + "/examples/external/bigram.py";
inline std::string bigram_sweep_yaml(const std::string& name, int max_steps) {
  return "name: " + name + "\nbase:\n  command: [/usr/bin/python3, " + kBigramScript +
         "]\n  optimizer: {name: sgd, lr: 1.0}\n  training: {max_steps: " +
         std::to_string(max_steps) +
         ", batch_tokens: 64, eval_every: 50, eval_tokens: 512}\n"
         "  data: {max_corpus_bytes: 200000}\ntargets: [5.0]\n";
}

// The pid of a job's process, from its worker's "job J attempt A started (...), pid P" line; -1
// when the log has no such line.
inline pid_t started_pid(const std::string& worker_log, int64_t job, int attempt) {
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
    // The test's own connection closes first: a coordinator shutting down waits (up to its
    // 2 s grace) for connected clients to leave after it says goodbye.
    stub_.reset();
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
  void signal_coordinator(int sig) { coordinator_->kill(sig); }
  void kill_coordinator() {
    coordinator_->kill(SIGKILL);
    coordinator_->wait_for_exit(5s);
    coordinator_.reset();
  }
  // Waits for the coordinator to exit by itself; its exit status, or nullopt at the timeout.
  std::optional<int> wait_coordinator_exit(std::chrono::seconds timeout) {
    const std::optional<int> status = coordinator_->wait_for_exit(timeout);
    if (status) coordinator_.reset();
    return status;
  }
  int http_port() { return bound_port("http"); }
  int health_port() { return bound_port("health"); }  // 0 without --health
  // A port from --ports-file: "grpc", "http" or "health".
  int bound_port(const std::string& name) {
    return test_process::bound_port((dir_ / "ports.json").string(), name);
  }
  // `binary`: another build of the worker (a copy with bytes appended hashes differently).
  ChildProcess& start_worker(const std::string& id, int slots = 1, const std::string& token = "-",
                             const std::vector<std::string>& extra = {},
                             const std::string& binary = WORKER_BINARY) {
    std::vector<std::string> args = {
        binary, "--coordinator", endpoint_.address,     "--worker-id",
        id,     "--slots",       std::to_string(slots), "--threads-per-job",
        "1",    "--work-dir",    (dir_ / id).string()};
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
    return wait_until([&] { return get(sweep).sweep().state() == pb::SWEEP_FINISHED; }, timeout);
  }
  // Stops the coordinator (every audit row written) and reads the audit rows `where` (SQL over
  // the audit table) selects: how many, and their details joined with " | ".
  std::pair<int64_t, std::string> audit_after_stop(const std::string& where) {
    signal_coordinator(SIGTERM);
    EXPECT_TRUE(wait_coordinator_exit(20s)) << "the coordinator did not stop";
    server::Database db((dir_ / "sweeps.db").string());
    server::Statement q(
        db.handle(),
        ("SELECT COUNT(*), COALESCE(GROUP_CONCAT(detail, ' | '), '') FROM audit WHERE " + where)
            .c_str());
    EXPECT_TRUE(q.step());
    return {q.int64(0), q.text(1)};
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

// A worker driven by hand over real gRPC: the test decides what it asks and reports.
class HandWorker {
 public:
  HandWorker(const orchestrator_client::Endpoint& endpoint, const std::string& id, int slots)
      : endpoint_(endpoint),
        id_(id),
        stub_(pb::WorkerService::NewStub(orchestrator_client::make_channel(endpoint))) {
    hello_.set_worker_id(id);
    hello_.set_backend("cpu");
    hello_.set_slots(slots);
  }
  // One call of `method` (&pb::WorkerService::Stub::Heartbeat, ...) with a 10 s deadline.
  template <class Method, class Request, class Response>
  grpc::Status call(Method method, const Request& request, Response& response) {
    auto ctx = orchestrator_client::make_context(endpoint_, 10s);
    return ((*stub_).*method)(ctx.get(), request, &response);
  }
  grpc::Status register_worker() {
    pb::RegisterWorkerResponse registered;
    return call(&pb::WorkerService::Stub::RegisterWorker, hello_, registered);
  }
  const std::string& id() const { return id_; }

 private:
  orchestrator_client::Endpoint endpoint_;
  std::string id_;
  std::unique_ptr<pb::WorkerService::Stub> stub_;
  pb::RegisterWorkerRequest hello_;
};

inline void expect_complete_curves(Cluster& c, const pb::GetSweepResponse& sweep) {
  for (const auto& job : sweep.jobs()) {
    const auto [count, first, last] = c.curve(job.job_id());
    EXPECT_EQ(count, job.max_steps())
        << "job " << job.job_id() << ": a point is missing or duplicated";
    EXPECT_EQ(first, 1) << "job " << job.job_id();
    EXPECT_EQ(last, job.max_steps()) << "job " << job.job_id();
  }
}

}  // namespace orchestration_test
