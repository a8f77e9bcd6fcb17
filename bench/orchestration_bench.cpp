// Coordinator throughput, through real gRPC on loopback into a real SQLite file:
//   1. metric ingestion from 8 concurrent reporters (points/s; target >= 200k/s)
//   2. dispatch of 1,000 jobs to 100 simulated workers (seconds; target < 2 s)
//   3. curve read of 100 runs x 10k steps, downsampled to 1,000 min/max buckets (ms; target < 50)
//   build/bench/orchestration_bench [--quick]
// Prints figures only; it never fails on a time.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include "client_channel.h"
#include "coordinator_service.h"
#include "orchestrator.grpc.pb.h"

namespace pb = orchestrator::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string sweep_spec(int seeds) {
  std::string s = "name: bench\nbase: {model: {preset: micro}, training: {max_steps: 10000, batch_tokens: 256, micro_batch: 8}}\nseeds: [";
  for (int i = 1; i <= seeds; ++i) s += (i > 1 ? "," : "") + std::to_string(i);
  return s + "]\n";
}

int64_t submit(server::Store& store, int seeds) {
  const auto plan = server::plan_sweep(sweep_spec(seeds), "bench.yaml", 100000);
  return store.create_sweep(plan, "", server::now_ms());
}

void register_worker(pb::WorkerService::Stub& stub, const orchestrator_client::Endpoint& e, const std::string& id, int slots) {
  pb::RegisterWorkerRequest req;
  req.set_worker_id(id);
  req.set_hostname("bench");
  req.set_backend("cpu");
  req.set_slots(slots);
  pb::RegisterWorkerResponse resp;
  auto ctx = orchestrator_client::make_context(e, 5s);
  stub.RegisterWorker(ctx.get(), req, &resp);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && !std::strcmp(argv[1], "--quick");
  const auto dir = std::filesystem::temp_directory_path() / ("orch_bench_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  {
    server::Store store((dir / "bench.db").string());
    server::CoordinatorOptions options;
    options.lease_ms = 600000;
    server::ChangeNotifier changes;
    server::SweepServiceImpl sweeps(store, options, changes);
    server::WorkerServiceImpl workers(store, options, changes);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&sweeps);
    builder.RegisterService(&workers);
    auto server = builder.BuildAndStart();
    orchestrator_client::Endpoint endpoint{"127.0.0.1:" + std::to_string(port), "", ""};
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
        for (int b = 0; b < batches; ++b) {
          pb::ReportMetricsRequest req;
          req.set_job_id(leases[r].job_id());
          req.set_attempt(leases[r].attempt());
          req.set_resumed_from_step(-1);
          for (int i = 0; i < batch; ++i) {
            auto* p = req.add_points();
            p->set_step(int64_t(b) * batch + i + 1);
            p->set_train_loss(3.0 - 1e-5 * i);
            p->set_lr(1e-3);
            p->set_grad_norm(0.5);
            p->set_tokens(256.0 * (b * batch + i + 1));
            p->set_elapsed_s(0.01 * i);
          }
          pb::ReportMetricsResponse resp;
          auto ctx = orchestrator_client::make_context(endpoint, 30s);
          const auto s = my_stub->ReportMetrics(ctx.get(), req, &resp);
          if (!s.ok()) std::fprintf(stderr, "report failed: %s\n", s.error_message().c_str());
        }
      });
    for (auto& t : threads) t.join();
    const double ingest_s = seconds_since(start);
    const double points = double(reporters) * batches * batch;
    std::printf("ingestion: %.0f points from %d concurrent reporters in %.2f s = %.0f points/s (target >= 200000)\n",
                points, reporters, ingest_s, points / ingest_s);
    std::printf("           stored rows: %lld\n", (long long)store.metric_point_count());

    // 2. Dispatch.
    const int jobs = 1000, simulated = 100;
    submit(store, jobs);
    for (int w = 0; w < simulated; ++w) register_worker(*stub, endpoint, "sim-" + std::to_string(w), 10);
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
    std::printf("dispatch:  %d jobs to %d simulated workers in %.3f s (target < 2 s)\n", assigned.load(), simulated,
                seconds_since(dispatch_start));
    server->Shutdown();
  }
  {
    // 3. Curve read: 100 runs x 10k steps.
    server::Store store((dir / "curves.db").string());
    const int runs = 100, steps = quick ? 1000 : 10000;
    submit(store, runs);
    std::vector<int64_t> ids;
    for (int r = 0; r < runs; ++r) {
      server::WorkerRow w{"c" + std::to_string(r), "h", "cpu", 0, 1, "[]", "active", 0, {}};
      store.register_worker(w, {}, server::now_ms(), 600000);
      auto job = store.acquire_job(w.id, {"cpu", 1, 0}, server::now_ms(), 600000);
      std::vector<server::MetricRow> points;
      for (int s = 1; s <= steps; ++s) points.push_back({s, 3.0 - s * 1e-4, 1e-3, 1, 256.0 * s, 0.01 * s, s % 997 == 0});
      store.store_metrics({job->id, job->attempt}, points, {}, 0, server::now_ms());
      ids.push_back(job->id);
    }
    store.downsampled_curves(ids, 1000);  // warm the page cache
    const int reps = 5;
    const auto t = Clock::now();
    size_t buckets = 0;
    for (int i = 0; i < reps; ++i)
      for (const auto& [id, curve] : store.downsampled_curves(ids, 1000)) buckets += curve.size();
    std::printf("curve read: %d runs x %d steps -> 1000 min/max buckets each in %.1f ms (target < 50 ms; %zu buckets)\n",
                runs, steps, 1000.0 * seconds_since(t) / reps, buckets / reps);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
