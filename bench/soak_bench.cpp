// Soak test of the real coordinator binary: many simulated workers, a sweep watcher and dashboard
// reads against one coordinator process for minutes, to see whether it stays flat (RSS, open
// file descriptors, call rates) and loses no metric point.
//   build/bench/soak_bench [--seconds 600] [--workers 1000] [--coordinator-binary PATH] [--quick]
// What it does:
//   - starts the coordinator (default: the one built beside this bench) on 127.0.0.1 with a fresh
//     database in a temporary folder, and keeps its queue full by submitting sweeps of many tiny
//     jobs (SubmitSweep);
//   - simulates --workers workers as gRPC clients multiplexed on a small thread pool: each one
//     registers, acquires a job, heartbeats at the coordinator's interval, reports --reports-per-
//     job batches of points (with one eval each) every --report-ms, then completes the job
//     SUCCEEDED with a summary, and acquires the next one;
//   - alongside, follows the sweep being worked with WatchSweep and reads the dashboard's
//     /api/sweeps, /api/sweeps/ID and /api/sweeps/ID/curves?points=400 over HTTP;
//   - every --print-every seconds prints calls/s per kind, points/s, the coordinator's RSS, its
//     open fds and the database size (db + -wal);
//   - at the end exports every sweep's curves (ExportSweep, CSV) and checks that each job holds
//     exactly the points and evals the bench reported and had acknowledged: PASS or FAIL, and a
//     non-zero exit status on loss or duplication.
// It never fails on a rate; it fails when data is lost or duplicated, or the coordinator dies.
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/channel.h"
#include "orchestrator.grpc.pb.h"
#include "tests/integration/process.h"

namespace pb = orchestrator::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

struct Options {
  std::string coordinator_binary = SOAK_COORDINATOR_BINARY;
  int seconds = 600;
  int workers = 1000;
  int threads = 48;      // the pool that multiplexes the simulated workers
  int channels = 16;     // gRPC connections the simulated workers share
  int report_ms = 1000;  // a worker's pause between two metric batches of a job
  int points_per_report = 10;
  int reports_per_job = 10;  // a job's steps: points_per_report x reports_per_job
  int sweep_jobs = 1000;     // jobs per submitted sweep
  int heartbeat_ms = 2000;   // --heartbeat-ms given to the coordinator
  int lease_ms = 120000;     // --lease-ms: generous, so that a job is never retried under load
  int dashboard_ms = 2000;   // one round of the three dashboard reads per this
  bool watch = true, dashboard = true;  // off: to see what the readers cost the coordinator
  int print_every = 30;
  int warmup = 60;  // RSS and fds are compared between this moment and the end
  bool keep_dir = false;
};

Options parse_options(int argc, char** argv) {
  Options o;
  bool quick = false;
  CLI::App app{"soak_bench: the real coordinator under many simulated workers for minutes"};
  app.add_option("--coordinator-binary", o.coordinator_binary, "the coordinator to start");
  app.add_option("--seconds", o.seconds, "how long the load runs")->check(CLI::Range(5, 86400));
  app.add_option("--workers", o.workers, "simulated workers")->check(CLI::Range(1, 100000));
  app.add_option("--threads", o.threads, "threads multiplexing them")->check(CLI::Range(1, 512));
  app.add_option("--channels", o.channels, "gRPC connections")->check(CLI::Range(1, 1024));
  app.add_option("--report-ms", o.report_ms, "pause between a job's metric batches")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--points-per-report", o.points_per_report, "steps per metric batch")
      ->check(CLI::Range(1, 2000));
  app.add_option("--reports-per-job", o.reports_per_job, "metric batches per job")
      ->check(CLI::Range(1, 10000));
  app.add_option("--sweep-jobs", o.sweep_jobs, "jobs per submitted sweep")
      ->check(CLI::Range(1, 10000));
  app.add_option("--heartbeat-ms", o.heartbeat_ms, "the coordinator's heartbeat interval")
      ->check(CLI::Range(100, 600000));  // as the coordinator accepts
  app.add_option("--lease-ms", o.lease_ms, "the coordinator's lease")
      ->check(CLI::Range(500, 3600000));
  app.add_option("--dashboard-ms", o.dashboard_ms, "period of the dashboard reads")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--print-every", o.print_every, "seconds between progress lines")
      ->check(CLI::Range(1, 86400));
  app.add_option("--warmup", o.warmup, "seconds of warm-up before the RSS/fds baseline")
      ->check(CLI::Range(0, 86400));
  app.add_flag("!--no-watch", o.watch, "no WatchSweep stream");
  app.add_flag("!--no-dashboard", o.dashboard, "no dashboard reads");
  app.add_flag("--keep-dir", o.keep_dir, "keep the temporary folder (database, coordinator log)");
  app.add_flag("--quick", quick,
               "the ctest smoke: 20 s, 50 workers, a batch every 500 ms, a line every 5 s (these "
               "replace the flags of the same settings)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e) == 0 ? 0 : 2);
  }
  if (quick) {
    o.seconds = 20, o.workers = 50, o.threads = 16, o.channels = 4, o.report_ms = 500;
    o.sweep_jobs = 200, o.print_every = 5, o.warmup = 5;
  }
  return o;
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---------------------------------------------------------------- the coordinator process

// The coordinator under test as a child process, its temporary folder, and what /proc and the
// file system say about it.
class Coordinator {
 public:
  explicit Coordinator(const Options& o)
      : dir_(std::filesystem::temp_directory_path() / ("soak_" + std::to_string(getpid()))) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::vector<std::string> args = {o.coordinator_binary,
                                           "--listen",
                                           "127.0.0.1:0",
                                           "--http",
                                           "127.0.0.1:0",
                                           "--db",
                                           db_path(),
                                           "--checkpoint-root",
                                           (dir_ / "checkpoints").string(),
                                           "--lease-ms",
                                           std::to_string(o.lease_ms),
                                           "--heartbeat-ms",
                                           std::to_string(o.heartbeat_ms),
                                           "--ports-file",
                                           (dir_ / "ports.json").string()};
    process_ = std::make_unique<test_process::ChildProcess>(args, log_path());
    const auto ports = dir_ / "ports.json";
    if (!test_process::wait_until([&] { return std::filesystem::exists(ports); }, 30s))
      throw std::runtime_error("the coordinator did not start:\n" +
                               test_process::read_text(log_path()));
    grpc_port_ = test_process::bound_port(ports.string(), "grpc");
    http_port_ = test_process::bound_port(ports.string(), "http");
  }
  ~Coordinator() {
    process_.reset();  // SIGTERM, then SIGKILL after 10 s (when stop() has not run)
    if (!keep_dir_) std::filesystem::remove_all(dir_);
  }
  // SIGTERM and its exit status (as waitpid gives it), or nullopt when it had to be killed.
  std::optional<int> stop(std::chrono::seconds grace) {
    process_->kill(SIGTERM);
    const std::optional<int> status = process_->wait_for_exit(grace);
    if (!status) process_->kill(SIGKILL), process_->wait_for_exit(5s);
    return status;
  }
  void keep_dir() { keep_dir_ = true; }
  std::string dir() const { return dir_.string(); }
  std::string db_path() const { return (dir_ / "soak.db").string(); }
  std::string log_path() const { return (dir_ / "coordinator.log").string(); }
  int http_port() const { return http_port_; }
  orchestrator_client::Endpoint endpoint() const {
    return {"127.0.0.1:" + std::to_string(grpc_port_), "", ""};
  }
  bool alive() { return !process_->wait_for_exit(0ms).has_value(); }

  int64_t rss_kib() const {
    std::ifstream in("/proc/" + std::to_string(process_->pid()) + "/status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    return -1;
  }
  int open_fds() const {
    std::error_code ec;
    int n = 0;
    for (std::filesystem::directory_iterator
             it("/proc/" + std::to_string(process_->pid()) + "/fd", ec),
         end;
         !ec && it != end; it.increment(ec))
      ++n;
    return ec ? -1 : n;
  }
  // User + system CPU seconds, from /proc/PID/stat (fields 14 and 15, after the command's ")").
  double cpu_seconds() const {
    std::ifstream in("/proc/" + std::to_string(process_->pid()) + "/stat");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string skip;
    for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt
    double utime = 0, stime = 0;
    fields >> utime >> stime;
    return (utime + stime) / double(sysconf(_SC_CLK_TCK));
  }
  // The size of the database file with this suffix ("" or "-wal"); 0 when absent.
  int64_t file_bytes(const char* suffix) const {
    std::error_code ec;
    const auto size = std::filesystem::file_size(db_path() + suffix, ec);
    return ec ? 0 : int64_t(size);
  }
  // The log's warning and error lines (spdlog writes "[warning]" and "[error]"), and how many.
  std::pair<int, std::vector<std::string>> log_problems(size_t keep) const {
    std::ifstream in(log_path());
    int count = 0;
    std::vector<std::string> first;
    for (std::string line; std::getline(in, line);)
      if (line.find("[warning]") != std::string::npos || line.find("[error]") != std::string::npos)
        if (++count, first.size() < keep) first.push_back(line.substr(0, 300));
    return {count, first};
  }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<test_process::ChildProcess> process_;
  int grpc_port_ = 0, http_port_ = 0;
  bool keep_dir_ = false;
};

// ---------------------------------------------------------------- call statistics

// The workers' five calls, then the dashboard's three reads (/api/sweeps, /api/sweeps/ID and
// /api/sweeps/ID/curves?points=400).
enum CallKind {
  kRegister,
  kAcquire,
  kHeartbeat,
  kReport,
  kComplete,
  kApiSweeps,
  kApiSweep,
  kApiCurves,
  kKinds
};
const char* const kKindNames[kKinds] = {"register", "acquire",  "heartbeat", "report",
                                        "complete", "GET list", "GET sweep", "GET curves"};

// Counters of every call kind, updated by any thread; the monitor reads differences.
class CallStats {
 public:
  struct Snapshot {
    int64_t calls[kKinds] = {}, errors[kKinds] = {}, latency_us[kKinds] = {};
    int64_t points = 0, watch_updates = 0, lag_us = 0, lag_samples = 0;
  };
  void record(CallKind kind, Clock::time_point start, bool ok) {
    const int64_t us =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    calls_[kind] += 1;
    errors_[kind] += ok ? 0 : 1;
    latency_us_[kind] += us;
    raise(max_us_[kind], us);
  }
  void points(int64_t n) { points_ += n; }
  void watch_update() { watch_updates_ += 1; }
  // How late a simulated worker's action started after it was due: the pool's backlog.
  void lag(Clock::duration late) {
    const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(late).count();
    lag_us_ += us, lag_samples_ += 1;
    raise(max_lag_us_, us);
  }
  Snapshot snapshot() const {
    Snapshot s;
    for (int k = 0; k < kKinds; ++k)
      s.calls[k] = calls_[k], s.errors[k] = errors_[k], s.latency_us[k] = latency_us_[k];
    s.points = points_, s.watch_updates = watch_updates_;
    s.lag_us = lag_us_, s.lag_samples = lag_samples_;
    return s;
  }
  // The largest latency of `kind` (the lag for kind = kKinds) since the last call; also kept
  // for all_time_max_us().
  int64_t take_max_us(int kind) {
    const int64_t v = (kind == kKinds ? max_lag_us_ : max_us_[kind]).exchange(0);
    raise(all_max_us_[kind], v);
    return v;
  }
  int64_t all_time_max_us(int kind) const { return all_max_us_[kind]; }

 private:
  static void raise(std::atomic<int64_t>& max, int64_t v) {
    for (int64_t m = max.load(); v > m && !max.compare_exchange_weak(m, v);) {
    }
  }
  std::atomic<int64_t> calls_[kKinds] = {}, errors_[kKinds] = {}, latency_us_[kKinds] = {};
  std::atomic<int64_t> max_us_[kKinds] = {}, all_max_us_[kKinds + 1] = {};
  std::atomic<int64_t> points_{0}, watch_updates_{0}, lag_us_{0}, lag_samples_{0}, max_lag_us_{0};
};

// ---------------------------------------------------------------- sweeps

std::string sweep_spec(int index, const Options& o) {
  std::string s =
      "name: soak-" + std::to_string(index) +
      "\nbase: {model: {preset: micro}, training: {max_steps: " +
      std::to_string(o.points_per_report * o.reports_per_job) +
      ", batch_tokens: 256, micro_batch: 8, eval_every: " + std::to_string(o.points_per_report) +
      "}}\nseeds: [";
  for (int i = 1; i <= o.sweep_jobs; ++i) s += (i > 1 ? "," : "") + std::to_string(i);
  return s + "]\n";
}

// Keeps the coordinator's queue from emptying: submits a sweep whenever fewer than twice the
// workers' number of jobs (at least one sweep's worth) are still unleased.
class SweepFeeder {
 public:
  SweepFeeder(const Options& o, const orchestrator_client::Endpoint& e, pb::SweepService::Stub& s)
      : options_(o), endpoint_(e), stub_(s) {}
  ~SweepFeeder() { stop(); }
  void leased() { leased_ += 1; }
  void fill() {
    const int64_t low_water = std::max<int64_t>(2 * int64_t(options_.workers), options_.sweep_jobs);
    while (submitted_ - leased_ < low_water && submit()) {
    }
  }
  void start() {
    thread_ = std::thread([this] {
      while (!stop_) {
        fill();
        std::this_thread::sleep_for(500ms);
      }
    });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<int64_t> sweeps() const {
    std::lock_guard lock(mu_);
    return sweeps_;
  }
  std::optional<int64_t> sweep(size_t index) const {
    std::lock_guard lock(mu_);
    return index < sweeps_.size() ? std::optional(sweeps_[index]) : std::nullopt;
  }
  int failures() const { return failures_; }

 private:
  bool submit() {
    pb::SubmitSweepRequest req;
    req.set_spec(sweep_spec(int(sweeps().size()) + 1, options_));
    req.set_source_name("soak.yaml");
    pb::SubmitSweepResponse resp;
    auto ctx = orchestrator_client::make_context(endpoint_, 60s);
    const grpc::Status s = stub_.SubmitSweep(ctx.get(), req, &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "soak: SubmitSweep failed: %s\n",
                   orchestrator_client::describe(s, endpoint_).c_str());
      ++failures_;
      return false;
    }
    std::lock_guard lock(mu_);
    sweeps_.push_back(resp.sweep_id());
    submitted_ += resp.jobs_size();
    return true;
  }
  const Options& options_;
  orchestrator_client::Endpoint endpoint_;
  pb::SweepService::Stub& stub_;
  mutable std::mutex mu_;
  std::vector<int64_t> sweeps_;
  std::atomic<int64_t> submitted_{0}, leased_{0};
  std::atomic<int> failures_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// ---------------------------------------------------------------- simulated workers

// What one simulated worker reported for one lease (job, attempt). Points and evals come in
// batches of points_per_report steps with one eval at the batch's last step, steps 1, 2, ... in
// order, so `acked_points` acknowledged points are exactly steps 1..acked_points.
struct JobRecord {
  int64_t job_id = 0, sweep_id = 0;
  int attempt = 0;
  int64_t acked_points = 0;
  // A batch whose call failed without an answer (it may or may not be stored) and that was not
  // yet sent again successfully: its points, else 0.
  int64_t uncertain_points = 0;
  bool completed = false;  // CompleteJob(SUCCEEDED) was acknowledged
  bool stale = false;      // the coordinator said this attempt is no longer current
};

struct ActiveJob {
  size_t record = 0;  // index into SimWorker::records
  int batches_sent = 0;
};

// A simulated worker. The pool hands each one to at most one thread at a time (it is either in
// the pool's queue or being stepped), so its fields need no lock; `records` is read only after
// the pool has stopped.
struct SimWorker {
  std::string id;
  pb::WorkerService::Stub* stub = nullptr;
  bool registered = false;
  std::chrono::milliseconds heartbeat_every{2000};
  Clock::time_point next_heartbeat, next_work;
  std::optional<ActiveJob> job;
  std::vector<JobRecord> records;
  uint64_t rng = 0;  // xorshift state: jitter of its pauses
};

bool fenced(const grpc::Status& s) {  // a stale attempt or an unknown job: not this worker's
  return s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
         s.error_code() == grpc::StatusCode::NOT_FOUND;
}

// One worker's step at a time for --workers simulated workers on --threads threads: a queue
// ordered by when each worker next has something to do.
class WorkerPool {
 public:
  WorkerPool(const Options& o, const orchestrator_client::Endpoint& e, CallStats& stats,
             SweepFeeder& feeder)
      : options_(o), endpoint_(e), stats_(stats), feeder_(feeder) {
    for (int c = 0; c < o.channels; ++c) stubs_.push_back(pb::WorkerService::NewStub(channel()));
    workers_.resize(size_t(o.workers));
    const auto start = Clock::now();
    for (size_t i = 0; i < workers_.size(); ++i) {
      SimWorker& w = workers_[i];
      w.id = "soak-" + std::to_string(i);
      w.stub = stubs_[i % stubs_.size()].get();
      w.rng = 0x9E3779B97F4A7C15ull * (i + 1);
      // Registrations spread over one heartbeat interval, not all in the first millisecond.
      w.next_work = w.next_heartbeat =
          start + std::chrono::milliseconds(int64_t(i) * o.heartbeat_ms / o.workers);
      due_.push({w.next_work, i});
    }
  }
  ~WorkerPool() { stop(); }
  void start() {
    for (int t = 0; t < options_.threads; ++t) threads_.emplace_back([this] { run(); });
  }
  // Each thread ends after the step it is in; workers keep whatever job they hold.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  const std::vector<SimWorker>& workers() const { return workers_; }

 private:
  // Its own connection per channel (a local subchannel pool): gRPC would otherwise share one
  // connection between channels of equal arguments.
  std::shared_ptr<grpc::Channel> channel() const {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(orchestrator_client::kMaxReplyBytes);
    args.SetMaxSendMessageSize(orchestrator_client::kMaxRequestBytes);
    return grpc::CreateCustomChannel(endpoint_.address, grpc::InsecureChannelCredentials(), args);
  }
  void run() {
    while (true) {
      size_t index;
      {
        std::unique_lock lock(mu_);
        while (true) {
          if (stop_) return;
          if (due_.empty())
            cv_.wait(lock);  // more threads than idle workers
          else if (due_.top().first <= Clock::now())
            break;
          else
            cv_.wait_until(lock, due_.top().first);
        }
        const auto [due, i] = due_.top();
        due_.pop();
        index = i;
        stats_.lag(Clock::now() - due);
      }
      const Clock::time_point next = step(workers_[index]);
      {
        std::lock_guard lock(mu_);
        due_.push({next, index});
      }
      cv_.notify_one();
    }
  }
  Clock::time_point step(SimWorker& w) {
    if (!w.registered) {
      register_worker(w);
      return w.next_work;
    }
    if (Clock::now() >= w.next_heartbeat) heartbeat(w);
    if (w.registered && Clock::now() >= w.next_work) {
      if (!w.job)
        acquire(w);
      else if (w.job->batches_sent < options_.reports_per_job)
        report(w);
      else
        complete(w);
    }
    return std::min(w.next_heartbeat, w.next_work);
  }

  void register_worker(SimWorker& w);
  void heartbeat(SimWorker& w);
  void acquire(SimWorker& w);
  void report(SimWorker& w);
  void complete(SimWorker& w);
  // The pause before a job's next batch: --report-ms +-10%, so that workers that started
  // together drift apart instead of acquiring and completing in waves.
  std::chrono::milliseconds report_pause(SimWorker& w) const {
    w.rng ^= w.rng << 13, w.rng ^= w.rng >> 7, w.rng ^= w.rng << 17;
    const double jitter = 0.9 + 0.2 * double(w.rng >> 11) * 0x1.0p-53;
    return std::chrono::milliseconds(int64_t(options_.report_ms * jitter));
  }
  void drop_job(SimWorker& w) {
    w.records[w.job->record].stale = true;
    w.job.reset();
    w.next_work = Clock::now();
  }

  const Options& options_;
  orchestrator_client::Endpoint endpoint_;
  CallStats& stats_;
  SweepFeeder& feeder_;
  std::vector<std::unique_ptr<pb::WorkerService::Stub>> stubs_;
  std::vector<SimWorker> workers_;
  using Due = std::pair<Clock::time_point, size_t>;
  std::mutex mu_;
  std::condition_variable cv_;
  // Invariant: every worker not being stepped by a thread is in due_ exactly once.
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

void WorkerPool::register_worker(SimWorker& w) {
  pb::RegisterWorkerRequest req;
  req.set_worker_id(w.id);
  req.set_hostname("soak");
  req.set_backend("cpu");
  req.set_slots(1);
  auto* dev = req.add_devices();
  dev->set_kind("cpu");
  dev->set_name("1 core");
  if (w.job) {  // registering again (the coordinator forgot it): the job it still runs
    const JobRecord& r = w.records[w.job->record];
    auto* running = req.add_running();
    running->set_job_id(r.job_id);
    running->set_attempt(r.attempt);
  }
  pb::RegisterWorkerResponse resp;
  const auto t0 = Clock::now();
  auto ctx = orchestrator_client::make_context(endpoint_, 10s);
  const grpc::Status s = w.stub->RegisterWorker(ctx.get(), req, &resp);
  stats_.record(kRegister, t0, s.ok());
  const auto now = Clock::now();
  if (!s.ok()) {
    w.next_work = now + 1s;
    return;
  }
  w.registered = true;
  for (const pb::JobRef& ref : resp.rejected())
    if (w.job && ref.job_id() == w.records[w.job->record].job_id) drop_job(w);
  w.heartbeat_every = std::chrono::milliseconds(std::max(100, resp.heartbeat_interval_ms()));
  w.next_heartbeat = now + w.heartbeat_every;
  w.next_work = now;
}

void WorkerPool::heartbeat(SimWorker& w) {
  pb::HeartbeatRequest req;
  req.set_worker_id(w.id);
  if (w.job) {
    const JobRecord& r = w.records[w.job->record];
    auto* p = req.add_jobs();
    p->set_job_id(r.job_id);
    p->set_attempt(r.attempt);
    p->set_step(r.acked_points);
  }
  pb::HeartbeatResponse resp;
  const auto t0 = Clock::now();
  auto ctx = orchestrator_client::make_context(endpoint_, 10s);
  const grpc::Status s = w.stub->Heartbeat(ctx.get(), req, &resp);
  stats_.record(kHeartbeat, t0, s.ok());
  w.next_heartbeat = t0 + w.heartbeat_every;  // the interval is kept from call to call
  if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    w.registered = false;  // forgotten (a lost worker): register again, as the worker does
    w.next_work = Clock::now();
    return;
  }
  if (!s.ok() || !w.job) return;
  const JobRecord& r = w.records[w.job->record];
  for (const auto& refs : {resp.cancel(), resp.stale()})
    for (const pb::JobRef& ref : refs)
      if (ref.job_id() == r.job_id && ref.attempt() == r.attempt) return drop_job(w);
}

void WorkerPool::acquire(SimWorker& w) {
  pb::AcquireJobRequest req;
  req.set_worker_id(w.id);
  req.set_free_slots(1);
  req.set_wait_ms(500);
  pb::AcquireJobResponse resp;
  const auto t0 = Clock::now();
  auto ctx = orchestrator_client::make_context(endpoint_, 10s);
  const grpc::Status s = w.stub->AcquireJob(ctx.get(), req, &resp);
  stats_.record(kAcquire, t0, s.ok());
  const auto now = Clock::now();
  if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    w.registered = false;
    w.next_work = now;
    return;
  }
  if (!s.ok() || !resp.has_job()) {
    w.next_work = now + (s.ok() ? 100ms : 1000ms);
    return;
  }
  feeder_.leased();
  JobRecord r;
  r.job_id = resp.lease().job_id();
  r.sweep_id = resp.lease().sweep_id();
  r.attempt = resp.lease().attempt();
  w.records.push_back(r);
  w.job = ActiveJob{w.records.size() - 1, 0};
  w.next_work = now + report_pause(w);  // "training" its first batch
}

// A job's batch b: steps b*P+1 .. (b+1)*P of a decaying loss, and an eval at its last step.
pb::ReportMetricsRequest metrics_batch(const JobRecord& r, int batch, int points_per_report) {
  pb::ReportMetricsRequest req;
  req.set_job_id(r.job_id);
  req.set_attempt(r.attempt);
  // A retried job's attempt starts from scratch: its first batch replaces whatever an earlier
  // attempt stored (resumed at step 0), so the job holds exactly this attempt's points. A first
  // attempt sends -1 like the real worker's fresh start.
  req.set_resumed_from_step(batch == 0 && r.attempt > 1 ? 0 : -1);
  const int64_t first = int64_t(batch) * points_per_report + 1;
  const int64_t last = first + points_per_report - 1;
  const double phase = double(r.job_id % 97) / 97.0;
  for (int64_t step = first; step <= last; ++step) {
    auto* p = req.add_points();
    p->set_step(step);
    p->set_train_loss(2.0 + 8.0 * std::exp(-double(step) / 50.0) + 0.01 * std::sin(step + phase));
    p->set_lr(3e-4);
    p->set_grad_norm(0.5 + 0.1 * std::cos(double(step) * 0.3 + phase));
    p->set_tokens(256.0 * double(step));
    p->set_elapsed_s(0.01 * double(step));
  }
  auto* e = req.add_evals();
  e->set_step(last);
  e->set_val_loss(2.1 + 8.0 * std::exp(-double(last) / 50.0));
  e->set_tokens(256.0 * double(last));
  e->set_elapsed_s(0.01 * double(last));
  e->mutable_train_s()->set_value(0.009 * double(last));
  return req;
}

void WorkerPool::report(SimWorker& w) {
  JobRecord& r = w.records[w.job->record];
  const pb::ReportMetricsRequest req =
      metrics_batch(r, w.job->batches_sent, options_.points_per_report);
  pb::ReportMetricsResponse resp;
  const auto t0 = Clock::now();
  auto ctx = orchestrator_client::make_context(endpoint_, 10s);
  const grpc::Status s = w.stub->ReportMetrics(ctx.get(), req, &resp);
  stats_.record(kReport, t0, s.ok());
  const auto now = Clock::now();
  if (fenced(s)) return drop_job(w);  // an unanswered earlier try stays uncertain
  if (!s.ok()) {
    // No answer: it may be stored or not. Sent again (same steps, so never counted twice) until
    // acknowledged or fenced.
    r.uncertain_points = req.points_size();
    w.next_work = now + 1s;
    return;
  }
  r.acked_points += req.points_size();
  r.uncertain_points = 0;
  stats_.points(resp.stored());
  ++w.job->batches_sent;
  w.next_work = w.job->batches_sent < options_.reports_per_job
                    ? now + report_pause(w)
                    : now;  // the last batch is in: complete at once
}

void WorkerPool::complete(SimWorker& w) {
  JobRecord& r = w.records[w.job->record];
  pb::CompleteJobRequest req;
  req.set_job_id(r.job_id);
  req.set_attempt(r.attempt);
  req.set_state(pb::SUCCEEDED);
  const int64_t steps = r.acked_points;
  req.set_summary_json("{\"status\": \"succeeded\", \"steps\": " + std::to_string(steps) +
                       ", \"tokens\": " + std::to_string(256 * steps) + ", \"final_val_loss\": " +
                       std::to_string(2.1 + 8 * std::exp(-steps / 50.0)) +
                       ", \"peak_memory_bytes\": 1048576}");
  pb::CompleteJobResponse resp;
  const auto t0 = Clock::now();
  auto ctx = orchestrator_client::make_context(endpoint_, 10s);
  const grpc::Status s = w.stub->CompleteJob(ctx.get(), req, &resp);
  stats_.record(kComplete, t0, s.ok());
  if (fenced(s)) return drop_job(w);
  if (!s.ok()) {
    w.next_work = Clock::now() + 1s;  // retried; a repeated completion of one attempt is fenced
    return;
  }
  r.completed = true;
  w.job.reset();
  w.next_work = Clock::now();
}

// ---------------------------------------------------------------- readers: watcher, dashboard

// Follows the sweep being worked with WatchSweep: the oldest submitted sweep that has not yet
// finished (the scheduler drains sweeps in submission order); the next one when its stream ends.
class SweepWatcher {
 public:
  SweepWatcher(const orchestrator_client::Endpoint& e, SweepFeeder& feeder, CallStats& stats)
      : endpoint_(e),
        stub_(pb::SweepService::NewStub(orchestrator_client::make_channel(e))),
        feeder_(feeder),
        stats_(stats) {}
  ~SweepWatcher() { stop(); }
  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      if (ctx_) ctx_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }
  int64_t current_sweep() const { return current_; }
  int stream_errors() const { return errors_; }

 private:
  void run() {
    size_t index = 0;
    while (true) {
      std::optional<int64_t> id = feeder_.sweep(index);
      {
        std::unique_lock lock(mu_);
        if (stop_) return;
        if (!id) {
          lock.unlock();
          std::this_thread::sleep_for(200ms);
          continue;
        }
        ctx_ = orchestrator_client::make_context(endpoint_, 24h);
      }
      current_ = *id;
      pb::SweepRef ref;
      ref.set_sweep_id(*id);
      auto reader = stub_->WatchSweep(ctx_.get(), ref);
      pb::GetSweepResponse update;
      bool ended = false;
      while (reader->Read(&update)) {
        stats_.watch_update();
        const auto state = update.sweep().state();
        ended = state == pb::SWEEP_FINISHED || state == pb::SWEEP_CANCELLED;
      }
      const grpc::Status s = reader->Finish();
      std::lock_guard lock(mu_);
      if (stop_) return;
      if (!s.ok()) {
        ++errors_;
        std::fprintf(stderr, "soak: WatchSweep %" PRId64 ": %s\n", *id, s.error_message().c_str());
      }
      if (ended) ++index;
    }
  }
  orchestrator_client::Endpoint endpoint_;
  std::unique_ptr<pb::SweepService::Stub> stub_;
  SweepFeeder& feeder_;
  CallStats& stats_;
  std::mutex mu_;
  std::unique_ptr<grpc::ClientContext> ctx_;  // the stream's, to cancel it at stop()
  bool stop_ = false;
  std::atomic<int64_t> current_{0};
  std::atomic<int> errors_{0};
  std::thread thread_;
};

// The dashboard's reads of the sweep page, every --dashboard-ms: the list, the sweep being
// worked, and its curves at 400 points.
class DashboardReader {
 public:
  DashboardReader(const Options& o, int port, const SweepWatcher& watcher, CallStats& stats)
      : options_(o), port_(port), watcher_(watcher), stats_(stats) {}
  ~DashboardReader() { stop(); }
  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t bytes() const { return bytes_; }

 private:
  void get(httplib::Client& client, CallKind kind, const std::string& path) {
    const auto t0 = Clock::now();
    const auto res = client.Get(path);
    const bool ok = res && res->status == 200;
    stats_.record(kind, t0, ok);
    if (ok) bytes_ += int64_t(res->body.size());
    if (!ok && errors_printed_++ < 5) {
      const std::string why = res ? std::to_string(res->status) : httplib::to_string(res.error());
      std::fprintf(stderr, "soak: GET %s: %s\n", path.c_str(), why.c_str());
    }
  }
  void run() {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(60s);
    while (!stop_) {
      const auto round = Clock::now();
      get(client, kApiSweeps, "/api/sweeps");
      if (const int64_t id = watcher_.current_sweep(); id > 0) {
        get(client, kApiSweep, "/api/sweeps/" + std::to_string(id));
        get(client, kApiCurves, "/api/sweeps/" + std::to_string(id) + "/curves?points=400");
      }
      while (!stop_ && Clock::now() < round + std::chrono::milliseconds(options_.dashboard_ms))
        std::this_thread::sleep_for(50ms);
    }
  }
  const Options& options_;
  int port_;
  const SweepWatcher& watcher_;
  CallStats& stats_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> bytes_{0};
  int errors_printed_ = 0;
  std::thread thread_;
};

// ---------------------------------------------------------------- progress lines

struct ProcessSample {
  double at_s = 0;
  int64_t rss_kib = 0;
  int fds = 0;
  int64_t db_bytes = 0;  // the database file and its write-ahead log
  int64_t wal_bytes = 0;
  double cpu_s = 0;        // the coordinator's user + system CPU time so far
  double bench_cpu_s = 0;  // this process's
  double load = 0;         // the machine's 1-minute load average (other work shares the cores)
};

ProcessSample sample(const Coordinator& c, double at_s) {
  const int64_t wal = c.file_bytes("-wal");
  ProcessSample p{at_s, c.rss_kib(), c.open_fds(), c.file_bytes("") + wal, wal, c.cpu_seconds()};
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  p.bench_cpu_s = double(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
                  double(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
  std::ifstream("/proc/loadavg") >> p.load;
  return p;
}

double mib(int64_t bytes) { return double(bytes) / (1 << 20); }

std::string format(const char* fmt, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

// One progress line: rates and latencies over the interval between two snapshots, and the
// coordinator's footprint at its end.
void print_line(const CallStats::Snapshot& before, const CallStats::Snapshot& now,
                const ProcessSample& was, const ProcessSample& p, CallStats& stats) {
  const double dt = p.at_s - was.at_s;
  std::string line = format("[%5.0f s] calls/s", p.at_s);
  for (int k : {kRegister, kAcquire, kHeartbeat, kReport, kComplete})
    line += format(" %s %.1f", kKindNames[k], double(now.calls[k] - before.calls[k]) / dt);
  line += format(
      " | points/s %.0f | rss %.1f MiB fds %d db %.1f MiB (wal %.1f) | cpu %.0f%% bench %.0f%% "
      "load %.1f",
      double(now.points - before.points) / dt, double(p.rss_kib) / 1024, p.fds, mib(p.db_bytes),
      mib(p.wal_bytes), 100 * (p.cpu_s - was.cpu_s) / dt,
      100 * (p.bench_cpu_s - was.bench_cpu_s) / dt, p.load);
  line += " | mean/max ms";
  int64_t errors = 0, max_us[kKinds];
  for (int k = 0; k < kKinds; ++k) {
    max_us[k] = stats.take_max_us(k);
    errors += now.errors[k] - before.errors[k];
  }
  for (int k : {kAcquire, kHeartbeat, kReport, kComplete, kApiSweep, kApiCurves}) {
    const int64_t n = now.calls[k] - before.calls[k];
    line += format(" %s %.1f/%.0f", kKindNames[k],
                   n ? double(now.latency_us[k] - before.latency_us[k]) / double(n) / 1e3 : 0.0,
                   double(max_us[k]) / 1e3);
  }
  const int64_t lag_n = now.lag_samples - before.lag_samples;
  line += format(" | watch %.1f/s | lag mean/max ms %.0f/%.0f | errors %" PRId64,
                 double(now.watch_updates - before.watch_updates) / dt,
                 lag_n ? double(now.lag_us - before.lag_us) / double(lag_n) / 1e3 : 0.0,
                 double(stats.take_max_us(kKinds)) / 1e3, errors);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// ---------------------------------------------------------------- the loss check

// What the export holds of one job: its train_loss rows (one per stored step) and val_loss rows.
struct StoredJob {
  int64_t train = 0, evals = 0, duplicates = 0, out_of_range = 0;
  std::vector<uint8_t> seen;  // per step 1..steps_per_job: a train_loss row was read
};

// Counts one CSV row of a curves export. The first column is the job id and the last three are
// step, metric and value, none of which can hold a comma; the columns between them (label,
// config values) may be quoted and are never parsed. The header's job column is no number.
void count_row(std::string_view line, int64_t steps_per_job,
               std::unordered_map<int64_t, StoredJob>& jobs) {
  const size_t c3 = line.rfind(',');
  if (c3 == std::string_view::npos || c3 == 0) return;
  const size_t c2 = line.rfind(',', c3 - 1);
  if (c2 == std::string_view::npos || c2 == 0) return;
  const size_t c1 = line.rfind(',', c2 - 1);
  const std::string_view metric = line.substr(c2 + 1, c3 - c2 - 1);
  const bool train = metric == "train_loss";
  if (c1 == std::string_view::npos || (!train && metric != "val_loss")) return;
  int64_t job = 0, step = 0;
  if (std::from_chars(line.data(), line.data() + line.size(), job).ec != std::errc() ||
      std::from_chars(line.data() + c1 + 1, line.data() + c2, step).ec != std::errc())
    return;
  StoredJob& j = jobs[job];
  if (!train) {
    ++j.evals;
    return;
  }
  ++j.train;
  if (step < 1 || step > steps_per_job) {
    ++j.out_of_range;
    return;
  }
  if (j.seen.empty()) j.seen.resize(size_t(steps_per_job) + 1);
  j.duplicates += j.seen[size_t(step)];
  j.seen[size_t(step)] = 1;
}

// Streams one sweep's curves export (CSV) into `jobs`; false when the call fails.
bool read_export(pb::SweepService::Stub& stub, const orchestrator_client::Endpoint& e,
                 int64_t sweep, int64_t steps_per_job, std::unordered_map<int64_t, StoredJob>& jobs,
                 int64_t& bytes) {
  pb::ExportSweepRequest req;
  req.set_sweep_id(sweep);
  req.set_table(pb::EXPORT_CURVES);
  req.set_format(pb::EXPORT_CSV);
  auto ctx = orchestrator_client::make_context(e, 1h);
  auto reader = stub.ExportSweep(ctx.get(), req);
  pb::ExportChunk chunk;
  std::string partial;  // a row split between two chunks (the coordinator never splits one)
  while (reader->Read(&chunk)) {
    bytes += int64_t(chunk.data().size());
    partial += chunk.data();
    size_t start = 0;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1)
      count_row(std::string_view(partial).substr(start, nl - start), steps_per_job, jobs);
    partial.erase(0, start);
  }
  const grpc::Status s = reader->Finish();
  if (!s.ok())
    std::fprintf(stderr, "soak: ExportSweep %" PRId64 ": %s\n", sweep,
                 orchestrator_client::describe(s, e).c_str());
  return s.ok();
}

// The train_loss counts a job may hold after the leases the bench had of it. The newest attempt
// that sent anything decides: its first batch replaced what earlier attempts stored
// (metrics_batch). Its acknowledged points count; a batch left without an answer may be stored
// too. When that attempt's only batch is unanswered and not stored, the attempt before decides.
std::set<int64_t> allowed_counts(std::vector<const JobRecord*> leases) {
  std::sort(leases.begin(), leases.end(),
            [](const JobRecord* a, const JobRecord* b) { return a->attempt > b->attempt; });
  std::set<int64_t> allowed;
  for (const JobRecord* r : leases) {
    if (r->uncertain_points > 0) allowed.insert(r->acked_points + r->uncertain_points);
    if (r->acked_points > 0) {
      allowed.insert(r->acked_points);
      return allowed;
    }
  }
  allowed.insert(0);
  return allowed;
}

struct LossCheck {
  int64_t jobs = 0, expected_points = 0, stored_points = 0, stored_evals = 0, export_bytes = 0;
  int64_t missing_jobs = 0, extra_jobs = 0, duplicated_points = 0, bad_eval_jobs = 0;
  int64_t uncertain_jobs = 0, retried_jobs = 0, double_leases = 0, not_succeeded = 0;
  int completed = 0, export_failures = 0;
  std::vector<std::string> examples;
  bool pass() const {
    return missing_jobs == 0 && extra_jobs == 0 && duplicated_points == 0 && bad_eval_jobs == 0 &&
           double_leases == 0 && not_succeeded == 0 && export_failures == 0;
  }
};

// Compares every job's stored points with what the simulated workers had acknowledged.
void compare_job(int64_t job, const std::vector<const JobRecord*>& leases, const StoredJob& s,
                 int points_per_report, LossCheck& check) {
  const std::set<int64_t> allowed = allowed_counts(leases);
  const int64_t expected = *allowed.rbegin();
  ++check.jobs;
  check.expected_points += expected;
  check.stored_points += s.train;
  check.stored_evals += s.evals;
  check.uncertain_jobs += allowed.size() > 1;
  check.retried_jobs += leases.size() > 1;
  check.duplicated_points += s.duplicates + s.out_of_range;
  const bool count_ok = allowed.count(s.train) > 0;
  if (!count_ok) (s.train < *allowed.begin() ? check.missing_jobs : check.extra_jobs) += 1;
  // Every stored batch brought one eval, at its last step.
  const bool evals_ok = s.evals == s.train / points_per_report;
  check.bad_eval_jobs += !evals_ok;
  if ((!count_ok || !evals_ok || s.duplicates || s.out_of_range) && check.examples.size() < 10)
    check.examples.push_back("job " + std::to_string(job) + ": expected " +
                             std::to_string(expected) + " points (" +
                             std::to_string(leases.size()) + " lease(s)), stored " +
                             std::to_string(s.train) + " points (" + std::to_string(s.duplicates) +
                             " duplicated, " + std::to_string(s.out_of_range) +
                             " out of range) and " + std::to_string(s.evals) + " evals");
}

// Every job whose completion was acknowledged is SUCCEEDED in GetSweep.
void check_states(pb::SweepService::Stub& stub, const orchestrator_client::Endpoint& e,
                  const std::vector<int64_t>& sweeps,
                  const std::map<int64_t, std::vector<const JobRecord*>>& leases,
                  LossCheck& check) {
  for (int64_t sweep : sweeps) {
    pb::SweepRef ref;
    ref.set_sweep_id(sweep);
    pb::GetSweepResponse resp;
    auto ctx = orchestrator_client::make_context(e, 60s);
    if (!stub.GetSweep(ctx.get(), ref, &resp).ok()) {
      ++check.export_failures;
      continue;
    }
    for (const pb::JobInfo& job : resp.jobs()) {
      const auto it = leases.find(job.job_id());
      if (it == leases.end()) continue;
      for (const JobRecord* r : it->second)
        if (r->completed) {
          ++check.completed;
          check.not_succeeded += job.state() != pb::SUCCEEDED;
        }
    }
  }
}

LossCheck check_loss(const Options& o, const orchestrator_client::Endpoint& e,
                     const std::vector<int64_t>& sweeps, const std::vector<SimWorker>& workers) {
  LossCheck check;
  std::map<int64_t, std::vector<const JobRecord*>> leases;
  std::set<std::pair<int64_t, int>> seen;
  for (const SimWorker& w : workers)
    for (const JobRecord& r : w.records) {
      leases[r.job_id].push_back(&r);
      // Two workers holding one (job, attempt) would both write one run.
      check.double_leases += !seen.insert({r.job_id, r.attempt}).second;
    }
  auto stub = pb::SweepService::NewStub(orchestrator_client::make_channel(e));
  const int64_t steps_per_job = int64_t(o.points_per_report) * o.reports_per_job;
  std::unordered_map<int64_t, StoredJob> stored;
  for (int64_t sweep : sweeps)
    check.export_failures +=
        !read_export(*stub, e, sweep, steps_per_job, stored, check.export_bytes);
  const std::vector<const JobRecord*> none;
  for (const auto& [job, records] : leases)
    compare_job(job, records, stored[job], o.points_per_report, check);
  for (const auto& [job, s] : stored)  // points of a job no simulated worker ever leased
    if (!leases.count(job) && (s.train > 0 || s.evals > 0))
      compare_job(job, none, s, o.points_per_report, check);
  check_states(*stub, e, sweeps, leases, check);
  return check;
}

void print_check(const LossCheck& c) {
  std::printf("loss check: %s: %" PRId64 " jobs leased, %" PRId64
              " points reported and acknowledged, %" PRId64 " train_loss points and %" PRId64
              " evals in the exports (%.1f MiB of CSV); %" PRId64
              " job(s) short of points, %" PRId64 " with extra points, %" PRId64
              " duplicated points, %" PRId64 " with wrong eval counts, %" PRId64
              " (job, attempt) leased twice, %d/%d acknowledged completions "
              "SUCCEEDED, %d export/read failure(s); %" PRId64 " job(s) retried, %" PRId64
              " with an unanswered batch\n",
              c.pass() ? "PASS" : "FAIL", c.jobs, c.expected_points, c.stored_points,
              c.stored_evals, mib(c.export_bytes), c.missing_jobs, c.extra_jobs,
              c.duplicated_points, c.bad_eval_jobs, c.double_leases,
              c.completed - int(c.not_succeeded), c.completed, c.export_failures, c.retried_jobs,
              c.uncertain_jobs);
  for (const std::string& line : c.examples) std::printf("  %s\n", line.c_str());
}

// ---------------------------------------------------------------- the run

struct RunResult {
  CallStats::Snapshot warm, end;
  ProcessSample warm_sample, end_sample;
  double warm_at = 0, end_at = 0;
  int64_t max_rss_kib = 0;
  bool coordinator_died = false;
};

// Prints a line every --print-every seconds until --seconds have passed or the coordinator dies.
RunResult monitor(const Options& o, Coordinator& coordinator, CallStats& stats,
                  Clock::time_point start) {
  RunResult r;
  CallStats::Snapshot last = stats.snapshot();
  ProcessSample last_sample = sample(coordinator, 0);
  bool warmed = false;
  for (int tick = 1;; ++tick) {
    const double at = std::min<double>(tick * o.print_every, o.seconds);
    while (seconds_between(start, Clock::now()) < at && coordinator.alive())
      std::this_thread::sleep_for(100ms);
    if (!coordinator.alive()) {
      r.coordinator_died = true;
      std::printf("soak: the coordinator exited at %.0f s\n", seconds_between(start, Clock::now()));
      break;
    }
    const CallStats::Snapshot now = stats.snapshot();
    const ProcessSample p = sample(coordinator, at);
    r.max_rss_kib = std::max(r.max_rss_kib, p.rss_kib);
    print_line(last, now, last_sample, p, stats);
    if (!warmed && (at >= o.warmup || at >= o.seconds)) {
      warmed = true;
      r.warm = now, r.warm_sample = p, r.warm_at = at;
    }
    last = now, last_sample = p;
    if (at >= o.seconds) break;
  }
  return r;
}

void print_summary(const RunResult& r, CallStats& stats, const Coordinator& coordinator,
                   const LossCheck* check) {
  const double dt = r.end_at - r.warm_at;
  std::printf("summary after warm-up (%.0f s .. %.0f s):\n", r.warm_at, r.end_at);
  for (int k = 0; k < kKinds; ++k) {
    const int64_t n = r.end.calls[k] - r.warm.calls[k];
    std::printf("  %-10s %8.1f calls/s  mean %7.2f ms  max %8.1f ms (whole run)  errors %" PRId64
                " (whole run %" PRId64 ")\n",
                kKindNames[k], dt > 0 ? double(n) / dt : 0.0,
                n ? double(r.end.latency_us[k] - r.warm.latency_us[k]) / double(n) / 1e3 : 0.0,
                double(stats.all_time_max_us(k)) / 1e3, r.end.errors[k] - r.warm.errors[k],
                r.end.errors[k]);
  }
  std::printf("  points stored %.0f/s (%" PRId64 " in the whole run); watch updates %.1f/s\n",
              dt > 0 ? double(r.end.points - r.warm.points) / dt : 0.0, r.end.points,
              dt > 0 ? double(r.end.watch_updates - r.warm.watch_updates) / dt : 0.0);
  std::printf(
      "  coordinator RSS %.1f MiB at %.0f s -> %.1f MiB at the end (max %.1f MiB); "
      "open fds %d -> %d; database %.1f MiB -> %.1f MiB (db + -wal)\n",
      double(r.warm_sample.rss_kib) / 1024, r.warm_at, double(r.end_sample.rss_kib) / 1024,
      double(r.max_rss_kib) / 1024, r.warm_sample.fds, r.end_sample.fds,
      mib(r.warm_sample.db_bytes), mib(r.end_sample.db_bytes));
  const ProcessSample &w = r.warm_sample, &e = r.end_sample;
  std::printf(
      "  coordinator CPU %.0f%% of one core, bench %.0f%% (the machine's load average %.1f at "
      "the end)\n",
      dt > 0 ? 100 * (e.cpu_s - w.cpu_s) / dt : 0.0,
      dt > 0 ? 100 * (e.bench_cpu_s - w.bench_cpu_s) / dt : 0.0, e.load);
  const auto [problems, first] = coordinator.log_problems(8);
  std::printf("  coordinator log: %d warning/error line(s)%s\n", problems, problems ? ":" : "");
  for (const std::string& line : first) std::printf("    %s\n", line.c_str());
  if (check) print_check(*check);
}

// The load for --seconds, then (unless the coordinator died) the loss check. Every client of
// the coordinator is gone when it returns.
std::optional<LossCheck> soak(const Options& o, Coordinator& coordinator, CallStats& stats,
                              RunResult& r) {
  const orchestrator_client::Endpoint endpoint = coordinator.endpoint();
  auto sweep_stub = pb::SweepService::NewStub(orchestrator_client::make_channel(endpoint));
  SweepFeeder feeder(o, endpoint, *sweep_stub);
  feeder.fill();  // the first sweeps are in before any worker asks
  WorkerPool pool(o, endpoint, stats, feeder);
  SweepWatcher watcher(endpoint, feeder, stats);
  DashboardReader dashboard(o, coordinator.http_port(), watcher, stats);
  const auto start = Clock::now();
  feeder.start();
  pool.start();
  if (o.watch) watcher.start();  // without it the dashboard reads only /api/sweeps
  if (o.dashboard) dashboard.start();
  r = monitor(o, coordinator, stats, start);
  pool.stop();
  feeder.stop();
  dashboard.stop();
  watcher.stop();
  r.end = stats.snapshot();
  r.end_at = seconds_between(start, Clock::now());
  r.end_sample = sample(coordinator, r.end_at);
  r.max_rss_kib = std::max(r.max_rss_kib, r.end_sample.rss_kib);
  if (r.coordinator_died || !coordinator.alive()) return std::nullopt;
  std::printf("soak: load stopped; exporting %zu sweep(s) to check the points\n",
              feeder.sweeps().size());
  std::fflush(stdout);
  const auto check_start = Clock::now();
  LossCheck check = check_loss(o, endpoint, feeder.sweeps(), pool.workers());
  std::printf(
      "soak: check took %.1f s; sweeps submitted %zu (%d submission failure(s)), watch "
      "stream errors %d, dashboard %.1f MiB read\n",
      seconds_between(check_start, Clock::now()), feeder.sweeps().size(), feeder.failures(),
      watcher.stream_errors(), mib(dashboard.bytes()));
  return check;
}

int run(const Options& o) {
  Coordinator coordinator(o);
  std::printf(
      "soak: %s, folder %s; %d workers on %d threads and %d connections, a batch of %d points "
      "and 1 eval every %d ms (+-10%%), %d batches a job, heartbeat %d ms, lease %d ms, %d s\n",
      o.coordinator_binary.c_str(), coordinator.dir().c_str(), o.workers, o.threads, o.channels,
      o.points_per_report, o.report_ms, o.reports_per_job, o.heartbeat_ms, o.lease_ms, o.seconds);
  std::fflush(stdout);
  CallStats stats;
  RunResult r;
  const std::optional<LossCheck> check = soak(o, coordinator, stats, r);
  const bool died = !check.has_value();
  if (!died) {
    // A clean exit on SIGTERM within its grace period is part of staying healthy.
    const auto t0 = Clock::now();
    const std::optional<int> status = coordinator.stop(15s);
    const std::string how = !status ? "not within 15 s: killed"
                            : WIFEXITED(*status)
                                ? "exit status " + std::to_string(WEXITSTATUS(*status))
                                : "signal " + std::to_string(WTERMSIG(*status));
    std::printf("soak: coordinator stopped on SIGTERM in %.1f s, %s\n",
                seconds_between(t0, Clock::now()), how.c_str());
  }
  print_summary(r, stats, coordinator, check ? &*check : nullptr);
  const bool pass = check && check->pass();
  if (died) std::printf("FAIL: the coordinator died (see its log)\n");
  if (!pass || o.keep_dir) {
    coordinator.keep_dir();
    std::printf("soak: kept %s (database, coordinator log)\n", coordinator.dir().c_str());
  }
  return pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soak: %s\n", e.what());
    return 2;
  }
}
