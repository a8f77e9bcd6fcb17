// Coordinator throughput, through real gRPC on loopback into a real SQLite file:
//   1. metric ingestion from 8 concurrent reporters (points/s; target >= 200k/s)
//   2. dispatch of 1,000 jobs to 100 simulated workers (seconds; target < 2 s)
//   3. curve read of 100 runs x 10k steps, downsampled to 1,000 min/max buckets (ms; target < 50)
//   4. with --scale RUNS STEPS (the size: --scale 1000 100000, 10^8 points): sustained
//      ingestion through gRPC per tenth of the load (target >= 300k points/s to the end), database
//      bytes per point (target <= 40) and the curve read of 100 of those runs (target <= 50 ms)
//   5. named metrics: 100 runs x 10k steps x 50 named metrics through gRPC from 8 reporters
//      (named values/s; target >= 200k/s), and one metric of those 100 runs read at 1,000 buckets
//      (ms; target <= 50)
//   6. run logs: a running job's log shipped as its worker ships it (read from the file at the
//      offset shipped, one ShipLog a second) into the coordinator's bounded store: CPU per
//      shipment, worker and coordinator together, and its share of one core at one a second
//      (what shipping takes from the training process beside it: "nothing measurable" means
//      well under 1%)
//   build/bench/orchestration_bench [--quick | --scale RUNS STEPS]
// Prints figures only; it never fails on a time.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench_clock.h"
#include "client/channel.h"
#include "orchestrator.grpc.pb.h"
#include "server/api/step_series.h"
#include "server/api/sweep_service.h"
#include "server/api/worker_service.h"
#include "server/storage/clock.h"

namespace pb = orchestrator::v1;
using namespace std::chrono_literals;

namespace {

// A training step's fixed fields as our trainer reports them, so that bytes per point measure
// real curves: a noisy decaying loss, a cosine lr, a noisy grad norm (full doubles, which do not
// compress much), token counts and a jittery clock rounded to microseconds.
class SyntheticRun {
 public:
  explicit SyntheticRun(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  void fill(pb::MetricPoint* p, int64_t s) {
    const double t = double(s);
    p->set_step(s);
    p->set_train_loss(2.0 + std::exp(-t / 20000) + 0.05 * noise());
    p->set_lr(3e-4 * 0.5 * (1 + std::cos(3.141592653589793 * t / 100000)));
    p->set_grad_norm(0.4 + 0.02 * noise());
    p->set_tokens(524288.0 * t);
    p->set_elapsed_s(std::round((0.2 * t + 0.001 * noise()) * 1e6) / 1e6);
  }

 private:
  double noise() {  // about N(0, 1): a sum of four uniforms, centred and scaled
    double sum = 0;
    for (int i = 0; i < 4; ++i) {
      state_ ^= state_ << 13, state_ ^= state_ >> 7, state_ ^= state_ << 17;
      sum += double(state_ >> 11) * 0x1.0p-53;
    }
    return (sum - 2.0) * 1.7320508075688772;
  }
  uint64_t state_;
};

std::string sweep_spec(int seeds) {
  std::string s =
      "name: bench\nbase: {model: {preset: micro}, training: {max_steps: 10000, batch_tokens: 256, "
      "micro_batch: 8}}\nseeds: [";
  for (int i = 1; i <= seeds; ++i) s += (i > 1 ? "," : "") + std::to_string(i);
  return s + "]\n";
}

int64_t submit(server::Store& store, int seeds) {
  const auto plan = sweep_file::plan_sweep(sweep_spec(seeds), "bench.yaml", 100000);
  return store.sweeps.create_sweep(plan, "", server::now_ms());
}

void register_worker(pb::WorkerService::Stub& stub, const orchestrator_client::Endpoint& e,
                     const std::string& id, int slots) {
  pb::RegisterWorkerRequest req;
  req.set_worker_id(id);
  req.set_hostname("bench");
  req.set_backend("cpu");
  req.set_slots(slots);
  pb::RegisterWorkerResponse resp;
  auto ctx = orchestrator_client::make_context(e, 5s);
  stub.RegisterWorker(ctx.get(), req, &resp);
}

// The coordinator's gRPC services over `store` on a free loopback port, as the binary runs them.
struct LoopbackCoordinator {
  server::CoordinatorOptions options;
  server::ChangeNotifier changes;
  server::UserDirectory users{"", ""};  // open: every caller is the admin, as without --token
  server::Gate gate;
  server::TuningPlanner planner;
  server::SweepServiceImpl sweeps;
  server::WorkerServiceImpl workers;
  std::unique_ptr<grpc::Server> server;
  orchestrator_client::Endpoint endpoint;

  LoopbackCoordinator(server::Store& store, int64_t lease_ms)
      : options(with_lease(lease_ms)),
        gate(users, store.audit),
        planner(store.sweeps, store.metrics),
        sweeps(store, options, changes, gate),
        workers(store, options, changes, gate, planner) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&sweeps);
    builder.RegisterService(&workers);
    server = builder.BuildAndStart();
    endpoint = {"127.0.0.1:" + std::to_string(port), "", ""};
  }
  static server::CoordinatorOptions with_lease(int64_t lease_ms) {
    server::CoordinatorOptions o;
    o.lease_ms = lease_ms;
    return o;
  }
};

}  // namespace

// Section 5: named metrics, as an optimizer-diagnostics run sends them (50 a step, names
// interned per request), and the read of one of them for 100 runs.
void named_metrics(const std::filesystem::path& dir, bool quick) {
  server::Store store((dir / "named.db").string());
  LoopbackCoordinator coordinator(store, 3600000);
  const int runs = quick ? 8 : 100, steps = quick ? 1000 : 10000, metrics = 50, batch = 500;
  submit(store, runs);
  server::WorkerRow w{"named", "h", "cpu", 0, runs, "[]", server::WorkerState::kActive,
                      0,       {},  "",    ""};
  store.workers.register_worker(w, {}, server::now_ms(), coordinator.options.lease_ms);
  std::vector<std::pair<int64_t, int>> leases;
  for (int r = 0; r < runs; ++r) {
    auto job = store.workers.acquire_job("named", {"cpu", runs - r, 0}, server::now_ms(),
                                         coordinator.options.lease_ms);
    leases.push_back({job->id, job->attempt});
  }
  constexpr int kReporters = 8;
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kReporters; ++t)
    threads.emplace_back([&, t] {
      auto stub =
          pb::WorkerService::NewStub(orchestrator_client::make_channel(coordinator.endpoint));
      for (int r = t; r < runs; r += kReporters) {
        SyntheticRun run{uint64_t(r)};
        for (int first = 1; first <= steps; first += batch) {
          pb::ReportMetricsRequest req;
          req.set_job_id(leases[size_t(r)].first);
          req.set_attempt(leases[size_t(r)].second);
          req.set_resumed_from_step(-1);
          for (int m = 0; m < metrics; ++m)
            req.add_metric_names("layer" + std::to_string(m / 5) + "/diag" + std::to_string(m % 5));
          for (int s = first; s < first + batch && s <= steps; ++s) {
            auto* p = req.add_points();
            run.fill(p, s);
            for (int m = 0; m < metrics; ++m) {
              auto* v = p->add_metrics();
              v->set_name(m);
              v->set_value(p->grad_norm() *
                           (1 + 0.01 * m));  // noisy doubles, like real diagnostics
            }
          }
          pb::ReportMetricsResponse resp;
          auto ctx = orchestrator_client::make_context(coordinator.endpoint, 60s);
          const auto status = stub->ReportMetrics(ctx.get(), req, &resp);
          if (!status.ok())
            std::fprintf(stderr, "report failed: %s\n", status.error_message().c_str());
        }
      }
    });
  for (auto& t : threads) t.join();
  const double seconds = seconds_since(start);
  const double values = double(runs) * steps * metrics;
  std::printf(
      "named metrics: %.0f named values (%d runs x %d steps x %d metrics) from %d reporters in "
      "%.1f s = %.0f values/s "
      "(target >= 200000; the 5 fixed fields ride along)\n",
      values, runs, steps, metrics, kReporters, seconds, values / seconds);
  coordinator.server->Shutdown();
  std::vector<int64_t> ids;
  for (const auto& lease : leases) ids.push_back(lease.first);
  store.metrics.downsampled_metric(ids, "layer3/diag2", 1000);  // warm
  const auto t0 = Clock::now();
  size_t buckets = 0;
  const auto curves = store.metrics.downsampled_metric(ids, "layer3/diag2", 1000);
  for (const auto& [id, curve] : *curves) buckets += curve.size();
  std::printf(
      "named metric read: one metric of %d runs x %d steps -> 1000 min/max buckets each in %.1f ms "
      "(target <= 50 ms; %zu buckets)\n",
      runs, steps, 1000.0 * seconds_since(t0), buckets);
}

// Section 4: RUNS x STEPS points through gRPC from 8 reporters into one database.
int scale(int runs, int steps) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("orch_scale_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string db = (dir / "scale.db").string();
  server::Store store(db);
  LoopbackCoordinator coordinator(store, 3600000);
  const auto& options = coordinator.options;
  const auto& endpoint = coordinator.endpoint;
  submit(store, runs);
  server::WorkerRow w{"scale", "h", "cpu", 0, runs, "[]", server::WorkerState::kActive,
                      0,       {},  "",    ""};
  store.workers.register_worker(w, {}, server::now_ms(), options.lease_ms);
  std::vector<std::pair<int64_t, int>> leases;
  for (int r = 0; r < runs; ++r) {
    auto job = store.workers.acquire_job("scale", {"cpu", runs - r, 0}, server::now_ms(),
                                         options.lease_ms);
    leases.push_back({job->id, job->attempt});
  }
  constexpr int kReporters = 8, kBatch = 2000;
  const int64_t total = int64_t(runs) * steps;
  std::atomic<int64_t> sent{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kReporters; ++t)
    threads.emplace_back([&, t] {
      auto stub = pb::WorkerService::NewStub(orchestrator_client::make_channel(endpoint));
      for (int r = t; r < runs; r += kReporters) {
        SyntheticRun run{uint64_t(r)};
        for (int first = 1; first <= steps; first += kBatch) {
          pb::ReportMetricsRequest req;
          req.set_job_id(leases[size_t(r)].first);
          req.set_attempt(leases[size_t(r)].second);
          req.set_resumed_from_step(-1);
          for (int s = first; s < first + kBatch && s <= steps; ++s) run.fill(req.add_points(), s);
          pb::ReportMetricsResponse resp;
          auto ctx = orchestrator_client::make_context(endpoint, 60s);
          const auto status = stub->ReportMetrics(ctx.get(), req, &resp);
          if (!status.ok())
            std::fprintf(stderr, "report failed: %s\n", status.error_message().c_str());
          sent += req.points_size();
        }
      }
    });
  // Progress per tenth: the rate must hold to the end, not only while the database is small.
  int64_t last_points = 0;
  auto last_time = start;
  for (int tenth = 1; tenth <= 10; ++tenth) {
    while (sent.load() < total * tenth / 10)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto now = Clock::now();
    const int64_t now_points = sent.load();
    std::printf(
        "scale ingestion %3d%%: %.0f points/s\n", tenth * 10,
        double(now_points - last_points) / std::chrono::duration<double>(now - last_time).count());
    std::fflush(stdout);
    last_points = now_points;
    last_time = now;
  }
  for (auto& t : threads) t.join();
  const double seconds = seconds_since(start);
  coordinator.server->Shutdown();
  {
    server::Database checkpoint(db);
    checkpoint.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  uintmax_t bytes = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) bytes += f.file_size();
  std::printf(
      "scale: %lld points (%d runs x %d steps) in %.1f s = %.0f points/s overall; database %.2f GB "
      "= %.1f bytes/point\n",
      (long long)total, runs, steps, seconds, double(total) / seconds, double(bytes) / 1e9,
      double(bytes) / double(total));
  std::vector<int64_t> ids;
  for (int r = 0; r < std::min(runs, 100); ++r) ids.push_back(leases[size_t(r)].first);
  store.metrics.downsampled_curves(ids, 1000);  // warm
  const auto t0 = Clock::now();
  size_t buckets = 0;
  for (const auto& [id, curve] : store.metrics.downsampled_curves(ids, 1000))
    buckets += curve.size();
  std::printf(
      "scale curve read: %zu runs x %d steps -> 1000 min/max buckets each in %.1f ms (%zu "
      "buckets)\n",
      ids.size(), steps, 1000.0 * seconds_since(t0), buckets);
  std::filesystem::remove_all(dir);
  return 0;
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Section 6: log shipping. One job's log grows by `chunk` bytes between shipments; each shipment
// reads the new bytes at the shipped offset (as worker/daemon.cpp's ship_log does) and sends
// them. Past the store's head and tail caps every shipment rewrites the bounded row: the steady
// state of a long, chatty run.
void log_shipping(const std::filesystem::path& dir, bool quick) {
  server::Store store((dir / "logs.db").string());
  LoopbackCoordinator coordinator(store, 3600000);
  auto stub = pb::WorkerService::NewStub(orchestrator_client::make_channel(coordinator.endpoint));
  submit(store, 1);
  register_worker(*stub, coordinator.endpoint, "logs", 1);
  pb::AcquireJobRequest poll;
  poll.set_worker_id("logs");
  poll.set_free_slots(1);
  pb::AcquireJobResponse leased;
  auto poll_ctx = orchestrator_client::make_context(coordinator.endpoint, 5s);
  stub->AcquireJob(poll_ctx.get(), poll, &leased);
  const std::string log_path = (dir / "job.log").string();
  std::ofstream log(log_path, std::ios::binary);
  int64_t shipped = 0;
  for (const int64_t chunk : {int64_t(200), int64_t(64 * 1024)}) {
    const int shipments = quick ? 40 : 400;
    const std::string bytes(size_t(chunk), 'x');
    double cpu = 0, wall = 0;
    for (int i = 0; i < shipments; ++i) {
      log.write(bytes.data(), std::streamsize(bytes.size()));  // the training process writes
      log.flush();
      const double cpu_before = process_cpu_seconds();
      const auto wall_before = Clock::now();
      std::ifstream in(log_path, std::ios::binary);
      std::string data(size_t(chunk), '\0');
      in.seekg(shipped);
      in.read(data.data(), chunk);
      data.resize(size_t(in.gcount()));
      pb::ShipLogRequest req;
      req.set_job_id(leased.lease().job_id());
      req.set_attempt(leased.lease().attempt());
      req.set_offset(shipped);
      req.set_data(data);
      pb::ShipLogResponse resp;
      auto ctx = orchestrator_client::make_context(coordinator.endpoint, 10s);
      if (const auto s = stub->ShipLog(ctx.get(), req, &resp); !s.ok())
        std::fprintf(stderr, "ship failed: %s\n", s.error_message().c_str());
      shipped = resp.stored_through();
      cpu += process_cpu_seconds() - cpu_before;
      wall += seconds_since(wall_before);
    }
    std::printf(
        "log shipping: %d shipments of %lld bytes (log at %lld bytes): %.3f ms CPU and %.3f ms "
        "wall each, worker and coordinator together = %.3f%% of one core at one a second "
        "(target: well under 1%%)\n",
        shipments, (long long)chunk, (long long)shipped, 1e3 * cpu / shipments,
        1e3 * wall / shipments, 100.0 * cpu / shipments);
  }
  coordinator.server->Shutdown();
}

int main(int argc, char** argv) {
  if (argc == 4 && !std::strcmp(argv[1], "--scale"))
    return scale(std::atoi(argv[2]), std::atoi(argv[3]));
  const bool quick = argc > 1 && !std::strcmp(argv[1], "--quick");
  const auto dir =
      std::filesystem::temp_directory_path() / ("orch_bench_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  {
    server::Store store((dir / "bench.db").string());
    LoopbackCoordinator coordinator(store, 600000);
    const auto& endpoint = coordinator.endpoint;
    auto channel = orchestrator_client::make_channel(endpoint);
    auto stub = pb::WorkerService::NewStub(channel);

    // 1. Ingestion.
    const int reporters = 8, batch = 2000, batches = quick ? 5 : 60;
    submit(store, reporters);
    register_worker(*stub, endpoint, "ingest", reporters);
    std::vector<pb::Lease> leases;
    for (int i = 0; i < reporters; ++i) {
      pb::AcquireJobRequest req;
      req.set_worker_id("ingest");
      req.set_free_slots(reporters - i);
      pb::AcquireJobResponse resp;
      auto ctx = orchestrator_client::make_context(endpoint, 5s);
      stub->AcquireJob(ctx.get(), req, &resp);
      leases.push_back(resp.lease());
    }
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int r = 0; r < reporters; ++r)
      threads.emplace_back([&, r] {
        auto my_stub = pb::WorkerService::NewStub(orchestrator_client::make_channel(endpoint));
        SyntheticRun run{uint64_t(r)};
        for (int b = 0; b < batches; ++b) {
          pb::ReportMetricsRequest req;
          req.set_job_id(leases[r].job_id());
          req.set_attempt(leases[r].attempt());
          req.set_resumed_from_step(-1);
          for (int i = 0; i < batch; ++i) run.fill(req.add_points(), int64_t(b) * batch + i + 1);
          pb::ReportMetricsResponse resp;
          auto ctx = orchestrator_client::make_context(endpoint, 30s);
          const auto s = my_stub->ReportMetrics(ctx.get(), req, &resp);
          if (!s.ok()) std::fprintf(stderr, "report failed: %s\n", s.error_message().c_str());
        }
      });
    for (auto& t : threads) t.join();
    const double ingest_s = seconds_since(start);
    const double points = double(reporters) * batches * batch;
    std::printf(
        "ingestion: %.0f points from %d concurrent reporters in %.2f s = %.0f points/s (target >= "
        "200000)\n",
        points, reporters, ingest_s, points / ingest_s);
    std::printf("           stored points: %lld\n", (long long)store.metrics.metric_point_count());

    // 2. Dispatch.
    const int jobs = 1000, simulated = 100;
    submit(store, jobs);
    for (int w = 0; w < simulated; ++w)
      register_worker(*stub, endpoint, "sim-" + std::to_string(w), 10);
    std::atomic<int> assigned{0};
    const auto dispatch_start = Clock::now();
    threads.clear();
    const int callers = 8;
    for (int c = 0; c < callers; ++c)
      threads.emplace_back([&, c] {
        auto my_stub = pb::WorkerService::NewStub(orchestrator_client::make_channel(endpoint));
        for (int w = c; assigned < jobs; w = (w + callers) % simulated) {
          pb::AcquireJobRequest req;
          req.set_worker_id("sim-" + std::to_string(w));
          req.set_free_slots(10);
          pb::AcquireJobResponse resp;
          auto ctx = orchestrator_client::make_context(endpoint, 5s);
          if (my_stub->AcquireJob(ctx.get(), req, &resp).ok() && resp.has_job()) ++assigned;
        }
      });
    for (auto& t : threads) t.join();
    std::printf("dispatch:  %d jobs to %d simulated workers in %.3f s (target < 2 s)\n",
                assigned.load(), simulated, seconds_since(dispatch_start));
    coordinator.server->Shutdown();
  }
  {
    // 3. Curve read: 100 runs x 10k steps.
    server::Store store((dir / "curves.db").string());
    const int runs = 100, steps = quick ? 1000 : 10000;
    submit(store, runs);
    std::vector<int64_t> ids;
    for (int r = 0; r < runs; ++r) {
      server::WorkerRow w{"c" + std::to_string(r),      "h", "cpu", 0,  1, "[]",
                          server::WorkerState::kActive, 0,   {},    "", ""};
      store.workers.register_worker(w, {}, server::now_ms(), 600000);
      auto job = store.workers.acquire_job(w.id, {"cpu", 1, 0}, server::now_ms(), 600000);
      std::vector<pb::MetricPoint> points(static_cast<size_t>(steps));
      SyntheticRun run{uint64_t(r)};
      for (int s = 1; s <= steps; ++s) {
        run.fill(&points[size_t(s - 1)], s);
        points[size_t(s - 1)].set_loss_spike(s % 997 == 0);
      }
      store.metrics.store_metrics({job->id, job->attempt}, server::step_series(points), {}, 0,
                                  server::now_ms());
      ids.push_back(job->id);
    }
    store.metrics.downsampled_curves(ids, 1000);  // warm the page cache
    const int reps = 5;
    const auto t = Clock::now();
    size_t buckets = 0;
    for (int i = 0; i < reps; ++i)
      for (const auto& [id, curve] : store.metrics.downsampled_curves(ids, 1000))
        buckets += curve.size();
    std::printf(
        "curve read: %d runs x %d steps -> 1000 min/max buckets each in %.1f ms (target < 50 ms; "
        "%zu buckets)\n",
        runs, steps, 1000.0 * seconds_since(t) / reps, buckets / reps);
  }
  named_metrics(dir, quick);
  log_shipping(dir, quick);
  std::filesystem::remove_all(dir);
  return 0;
}
