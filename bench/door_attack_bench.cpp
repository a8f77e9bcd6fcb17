// The coordinator's doors under attack, on loopback: one hostile peer (127.0.0.2, another
// address as a second machine would be) holds --half-open HTTP connections open (the request
// line sent, the headers never finished; the ones the server closes are opened again) and floods
// the HTTP door with requests without a token, and a gRPC client floods the gRPC door the same
// way, while
//   - an authorized client (127.0.0.1) reads /api/sweeps every 50 ms on a new connection;
//   - a simulated worker reports a batch of metrics every 100 ms over gRPC;
//   - a probe asks /healthz every second with a 1 s timeout, as a kubelet does (on the
//     --health listener when the coordinator has one, else on the public door).
//   build/bench/door_attack_bench [--seconds 60] [--half-open 1000] [--flood-per-second 1000]
//                                 [--coordinator-binary PATH] [--quick]
// Prints the authorized read's and the report's median, p99 and worst latency and failures, the
// probes that failed, what the floods got back, the half-open connections the server held, and
// the database's growth (file + WAL) and audit rows added per minute. It never fails on a
// figure; it fails when the coordinator dies.
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/channel.h"
#include "orchestrator.grpc.pb.h"
#include "tests/integration/process.h"

namespace pb = orchestrator::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr const char* kToken = "bench-t0ken";

struct Options {
  std::string coordinator_binary = DOOR_BENCH_COORDINATOR_BINARY;
  int seconds = 60;
  int half_open = 1000;
  int flood_per_second = 1000;
};

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Latencies of one kind of call, and how many got no good answer.
class Latencies {
 public:
  void add(double ms) {
    std::lock_guard lock(mu_);
    ms_.push_back(ms);
  }
  void fail() { ++failed_; }
  // "median 1.2 ms, p99 3.4 ms, worst 5.6 ms over N, F failed"
  std::string summary() {
    std::lock_guard lock(mu_);
    std::vector<double> v = ms_;
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v.empty() ? 0.0 : v[size_t(q * double(v.size() - 1))]; };
    char line[200];
    std::snprintf(line, sizeof line,
                  "median %.1f ms, p99 %.1f ms, worst %.1f ms over %zu, %d failed", at(0.5),
                  at(0.99), v.empty() ? 0.0 : v.back(), v.size(), failed_.load());
    return line;
  }

 private:
  std::mutex mu_;
  std::vector<double> ms_;
  std::atomic<int> failed_{0};
};

bool closed_by_server(int s) {
  pollfd p{s, POLLIN, 0};
  return poll(&p, 1, 0) != 0;
}

// The coordinator under test, with a token, its database in a temporary folder.
class Coordinator {
 public:
  explicit Coordinator(const Options& o)
      : dir_(std::filesystem::temp_directory_path() / ("door_bench_" + std::to_string(getpid()))) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string help = test_process::run_command({o.coordinator_binary, "--help"}).out;
    has_health_ = help.find("--health") != std::string::npos;
    std::vector<std::string> args = {o.coordinator_binary,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--http",
                                     "127.0.0.1:0",
                                     "--db",
                                     db_path(),
                                     "--token",
                                     kToken,
                                     "--ports-file",
                                     (dir_ / "ports.json").string()};
    if (has_health_) args.insert(args.end(), {"--health", "127.0.0.1:0"});
    process_ = std::make_unique<test_process::ChildProcess>(args, (dir_ / "log").string());
    if (!test_process::wait_until([&] { return std::filesystem::exists(dir_ / "ports.json"); },
                                  30s))
      throw std::runtime_error("the coordinator did not start:\n" +
                               test_process::read_text((dir_ / "log").string()));
    const std::string ports = (dir_ / "ports.json").string();
    grpc_ = test_process::bound_port(ports, "grpc");
    http_ = test_process::bound_port(ports, "http");
    health_ = has_health_ ? test_process::bound_port(ports, "health") : http_;
  }
  ~Coordinator() {
    process_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string db_path() const { return (dir_ / "bench.db").string(); }
  int64_t db_bytes() const {
    int64_t total = 0;
    for (const char* suffix : {"", "-wal"}) {
      std::error_code ec;
      const auto n = std::filesystem::file_size(db_path() + suffix, ec);
      if (!ec) total += int64_t(n);
    }
    return total;
  }
  int64_t audit_rows() const {
    sqlite3* db = nullptr;
    int64_t n = -1;
    if (sqlite3_open_v2(db_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM audit", -1, &s, nullptr) == SQLITE_OK &&
          sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
      sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return n;
  }
  bool alive() { return !process_->wait_for_exit(0ms).has_value(); }
  orchestrator_client::Endpoint endpoint(const std::string& token) const {
    return {"127.0.0.1:" + std::to_string(grpc_), token, ""};
  }
  int http_port() const { return http_; }
  int probe_port() const { return health_; }
  bool has_health() const { return has_health_; }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<test_process::ChildProcess> process_;
  int grpc_ = 0, http_ = 0, health_ = 0;
  bool has_health_ = false;
};

// Keeps `n` half-open connections from 127.0.0.2; counts how many the server holds.
void hold_half_open(int port, int n, const std::atomic<bool>& stop, std::atomic<int>& held) {
  const std::string start = "GET /api/sweeps HTTP/1.1\r\nHost: coordinator\r\n";
  std::vector<int> sockets;
  while (!stop) {
    for (int& s : sockets)
      if (s >= 0 && closed_by_server(s)) close(s), s = -1;
    std::erase(sockets, -1);
    held = int(sockets.size());
    while (int(sockets.size()) < n && !stop) {
      const int s = test_process::connect_from("127.0.0.2", port);
      if (s < 0) break;
      send(s, start.data(), start.size(), MSG_NOSIGNAL);
      sockets.push_back(s);
    }
    std::this_thread::sleep_for(200ms);
  }
  for (const int s : sockets) close(s);
}

// One request without a token from 127.0.0.2 on a new connection; its status, 0 when closed
// without an answer.
int stranger_request(int port) {
  const int s = test_process::connect_from("127.0.0.2", port);
  if (s < 0) return 0;
  timeval timeout{2, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const std::string request = "GET /api/sweeps HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n";
  send(s, request.data(), request.size(), MSG_NOSIGNAL);
  char head[16] = {};
  const ssize_t n = recv(s, head, sizeof head - 1, 0);
  close(s);
  return n >= 12 ? std::atoi(head + 9) : 0;
}

// Calls `act` about `per_second` times a second until `stop`.
template <typename Act>
void paced(int per_second, const std::atomic<bool>& stop, Act&& act) {
  const auto period = std::chrono::nanoseconds(1'000'000'000LL / std::max(1, per_second));
  auto next = Clock::now();
  while (!stop) {
    act();
    next += period;
    if (next > Clock::now())
      std::this_thread::sleep_until(next);
    else
      next = Clock::now();
  }
}

struct Outcomes {
  std::mutex mu;
  std::map<std::string, int64_t> counts;  // "401", "429", "closed", "UNAUTHENTICATED", ...
  void add(const std::string& what) {
    std::lock_guard lock(mu);
    ++counts[what];
  }
  std::string summary() {
    std::lock_guard lock(mu);
    std::string out;
    for (const auto& [what, n] : counts)
      out += (out.empty() ? "" : ", ") + what + " " + std::to_string(n);
    return out.empty() ? "none" : out;
  }
};

// A registered worker holding one job, whose metric reports are timed.
class ReportingWorker {
 public:
  explicit ReportingWorker(const orchestrator_client::Endpoint& e)
      : endpoint_(e), stub_(pb::WorkerService::NewStub(orchestrator_client::make_channel(e))) {
    auto sweeps = pb::SweepService::NewStub(orchestrator_client::make_channel(e));
    pb::SubmitSweepRequest submit;
    submit.set_spec(
        "name: attacked\nbase: {model: {preset: micro}, training: {max_steps: 100000000, "
        "batch_tokens: 256, micro_batch: 8, eval_every: 1000}}\n");
    submit.set_source_name("bench.yaml");
    pb::SubmitSweepResponse submitted;
    auto ctx = orchestrator_client::make_context(e, 30s);
    check(sweeps->SubmitSweep(ctx.get(), submit, &submitted), "SubmitSweep");
    pb::RegisterWorkerRequest reg;
    reg.set_worker_id("bench-worker");
    reg.set_hostname("bench");
    reg.set_backend("cpu");
    reg.set_slots(1);
    reg.add_devices()->set_kind("cpu");
    pb::RegisterWorkerResponse registered;
    ctx = orchestrator_client::make_context(e, 10s);
    check(stub_->RegisterWorker(ctx.get(), reg, &registered), "RegisterWorker");
    pb::AcquireJobRequest acquire;
    acquire.set_worker_id("bench-worker");
    acquire.set_free_slots(1);
    acquire.set_wait_ms(2000);
    pb::AcquireJobResponse lease;
    ctx = orchestrator_client::make_context(e, 10s);
    check(stub_->AcquireJob(ctx.get(), acquire, &lease), "AcquireJob");
    if (!lease.has_job()) throw std::runtime_error("the bench's worker got no job");
    job_ = lease.lease().job_id();
    attempt_ = lease.lease().attempt();
  }
  // One batch of 10 steps and one heartbeat; the report's latency, or a failure.
  void report(Latencies& latency) {
    pb::ReportMetricsRequest req;
    req.set_job_id(job_);
    req.set_attempt(attempt_);
    req.set_resumed_from_step(-1);
    for (int i = 0; i < 10; ++i) {
      auto* p = req.add_points();
      p->set_step(++step_);
      p->set_train_loss(3.0 + 1.0 / double(step_));
      p->set_tokens(256.0 * double(step_));
    }
    const auto start = Clock::now();
    auto ctx = orchestrator_client::make_context(endpoint_, 5s);
    pb::ReportMetricsResponse resp;
    if (stub_->ReportMetrics(ctx.get(), req, &resp).ok())
      latency.add(ms_since(start));
    else
      latency.fail();
    pb::HeartbeatRequest beat;
    beat.set_worker_id("bench-worker");
    auto* j = beat.add_jobs();
    j->set_job_id(job_);
    j->set_attempt(attempt_);
    j->set_step(step_);
    pb::HeartbeatResponse ignored;
    auto beat_ctx = orchestrator_client::make_context(endpoint_, 5s);
    stub_->Heartbeat(beat_ctx.get(), beat, &ignored);
  }

 private:
  static void check(const grpc::Status& s, const char* what) {
    if (!s.ok()) throw std::runtime_error(std::string(what) + " failed: " + s.error_message());
  }
  orchestrator_client::Endpoint endpoint_;
  std::unique_ptr<pb::WorkerService::Stub> stub_;
  int64_t job_ = 0, step_ = 0;
  int attempt_ = 0;
};

int run(const Options& o) {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;  // the half-open connections need descriptors
  setrlimit(RLIMIT_NOFILE, &files);
  Coordinator coordinator(o);
  ReportingWorker worker(coordinator.endpoint(kToken));
  std::printf(
      "door_attack_bench: %s, %d s, %d half-open connections and %d requests/s without a "
      "token per door from 127.0.0.2 (gRPC's flood: from 127.0.0.1); probe on %s\n",
      o.coordinator_binary.c_str(), o.seconds, o.half_open, o.flood_per_second,
      coordinator.has_health() ? "the --health listener" : "the public door");
  const int64_t bytes_before = coordinator.db_bytes(), rows_before = coordinator.audit_rows();
  Latencies reads, reports, probes;
  Outcomes http_flood, grpc_flood;
  std::atomic<bool> stop{false};
  std::atomic<int> held{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] { hold_half_open(coordinator.http_port(), o.half_open, stop, held); });
  threads.emplace_back([&] {
    paced(o.flood_per_second, stop, [&] {
      const int status = stranger_request(coordinator.http_port());
      http_flood.add(status ? std::to_string(status) : "closed");
    });
  });
  threads.emplace_back([&] {
    const auto endpoint = coordinator.endpoint("");
    auto stub = pb::SweepService::NewStub(orchestrator_client::make_channel(endpoint));
    paced(o.flood_per_second, stop, [&] {
      auto ctx = orchestrator_client::make_context(endpoint, 2s);
      pb::ListSweepsResponse out;
      const grpc::Status s = stub->ListSweeps(ctx.get(), pb::ListSweepsRequest(), &out);
      grpc_flood.add(s.error_code() == grpc::StatusCode::UNAUTHENTICATED ? "UNAUTHENTICATED"
                     : s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED
                         ? "RESOURCE_EXHAUSTED"
                         : "other " + std::to_string(int(s.error_code())));
    });
  });
  std::this_thread::sleep_for(1s);  // the attack first
  const auto started = Clock::now();
  threads.emplace_back([&] {
    paced(20, stop, [&] {
      httplib::Client http("127.0.0.1", coordinator.http_port());
      http.set_connection_timeout(5);
      http.set_read_timeout(5);
      const auto start = Clock::now();
      const auto r = http.Get("/api/sweeps", {{"Authorization", std::string("Bearer ") + kToken}});
      if (r && r->status == 200)
        reads.add(ms_since(start));
      else
        reads.fail();
    });
  });
  threads.emplace_back([&] { paced(10, stop, [&] { worker.report(reports); }); });
  threads.emplace_back([&] {
    paced(1, stop, [&] {
      httplib::Client probe("127.0.0.1", coordinator.probe_port());
      probe.set_connection_timeout(1);
      probe.set_read_timeout(1);
      const auto start = Clock::now();
      const auto r = probe.Get("/healthz");
      if (r && r->status == 200)
        probes.add(ms_since(start));
      else
        probes.fail();
    });
  });
  while (ms_since(started) < o.seconds * 1000.0 && coordinator.alive())
    std::this_thread::sleep_for(250ms);
  const double minutes = ms_since(started) / 60000.0;
  const int held_at_end = held;
  stop = true;
  for (auto& t : threads) t.join();
  const bool alive = coordinator.alive();
  std::printf("  authorized GET /api/sweeps: %s\n", reads.summary().c_str());
  std::printf("  worker ReportMetrics:       %s\n", reports.summary().c_str());
  std::printf("  /healthz probes (1 s):      %s\n", probes.summary().c_str());
  std::printf("  HTTP flood answers:         %s\n", http_flood.summary().c_str());
  std::printf("  gRPC flood answers:         %s\n", grpc_flood.summary().c_str());
  std::printf("  half-open held by server:   %d of %d\n", held_at_end, o.half_open);
  std::printf(
      "  database growth:            %.1f KiB/min (file + WAL, the worker's metrics included), "
      "%.1f audit rows/min\n",
      double(coordinator.db_bytes() - bytes_before) / 1024.0 / minutes,
      double(coordinator.audit_rows() - rows_before) / minutes);
  if (!alive) std::printf("FAIL: the coordinator died\n");
  return alive ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"door_attack_bench: the coordinator's doors under a hostile peer, on loopback"};
  Options o;
  bool quick = false;
  app.add_option("--seconds", o.seconds, "how long the attack runs")->check(CLI::Range(1, 3600));
  app.add_option("--half-open", o.half_open, "half-open HTTP connections held")
      ->check(CLI::Range(0, 100000));
  app.add_option("--flood-per-second", o.flood_per_second,
                 "requests without a token per second, per door")
      ->check(CLI::Range(1, 100000));
  app.add_option("--coordinator-binary", o.coordinator_binary, "the coordinator to attack");
  app.add_flag("--quick", quick, "3 s, 100 half-open connections, 200 requests/s (a smoke run)");
  CLI11_PARSE(app, argc, argv);
  if (quick) o.seconds = 3, o.half_open = 100, o.flood_per_second = 200;
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "door_attack_bench: %s\n", e.what());
    return 1;
  }
}
