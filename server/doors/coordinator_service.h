// The coordinator's gRPC services (sweepctl-facing and worker-facing) over the Store.
//
// Lifetimes: each service holds the Store, the options and the ChangeNotifier by reference; the
// coordinator's main() owns all three and shuts the gRPC server down (after changes.close(), so
// long polls end) before they are destroyed. Threads: gRPC calls handlers on its own thread
// pool, many at once; the Store serializes its transactions, the notifier is thread-safe, and
// the options are read-only after start. Every handler runs through serve() (the .cpp): the
// caller's token is checked first, then store failures become INTERNAL or RESOURCE_EXHAUSTED.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "orchestrator.grpc.pb.h"
#include "server/doors/change_notifier.h"
#include "server/doors/gate.h"
#include "server/provisioning/provisioner.h"
#include "server/storage/clock.h"
#include "server/storage/store.h"
#include "server/tuning/planner.h"

namespace server {

struct CoordinatorOptions {
  int64_t lease_ms = 15000;      // a worker silent this long loses its jobs
  int max_running_per_user = 0;  // jobs ASSIGNED or RUNNING per sweep owner at most (0: no cap)
  int heartbeat_interval_ms = 2000;
  std::string checkpoint_root;  // shared by workers; empty: retries restart from step 0
  size_t max_jobs_per_sweep = sweep_file::kDefaultMaxJobsPerSweep;
  // Tests only (a hidden flag): the coordinator exits at once, like a kill -9, after storing its
  // N-th job completion and before planning from it, so a test can prove that the restarted
  // coordinator plans what the dead one did not (tuning/planner.h). 0: never.
  int crash_after_completions = 0;
};

// Wakes long polls and watches whenever jobs change.

class SweepServiceImpl final : public orchestrator::v1::SweepService::Service {
 public:
  // provisioner: null when the coordinator provisions no workers (--provisioner none).
  SweepServiceImpl(Store& store, const CoordinatorOptions& options, ChangeNotifier& changes,
                   Gate& gate, const Provisioner* provisioner = nullptr)
      : store_(store),
        options_(options),
        changes_(changes),
        gate_(gate),
        provisioner_(provisioner) {}
  using ServerContext = grpc::ServerContext;
  grpc::Status SubmitSweep(ServerContext*, const orchestrator::v1::SubmitSweepRequest*,
                           orchestrator::v1::SubmitSweepResponse*) override;
  grpc::Status ValidateSweep(ServerContext*, const orchestrator::v1::SubmitSweepRequest*,
                             orchestrator::v1::ValidateSweepResponse*) override;
  grpc::Status ListSweeps(ServerContext*, const orchestrator::v1::ListSweepsRequest*,
                          orchestrator::v1::ListSweepsResponse*) override;
  grpc::Status GetSweep(ServerContext*, const orchestrator::v1::SweepRef*,
                        orchestrator::v1::GetSweepResponse*) override;
  grpc::Status WatchSweep(ServerContext*, const orchestrator::v1::SweepRef*,
                          grpc::ServerWriter<orchestrator::v1::GetSweepResponse>*) override;
  grpc::Status ExportSweep(ServerContext*, const orchestrator::v1::ExportSweepRequest*,
                           grpc::ServerWriter<orchestrator::v1::ExportChunk>*) override;
  grpc::Status CancelSweep(ServerContext*, const orchestrator::v1::SweepRef*,
                           orchestrator::v1::CancelSweepResponse*) override;
  grpc::Status GetResults(ServerContext*, const orchestrator::v1::SweepRef*,
                          orchestrator::v1::GetResultsResponse*) override;
  grpc::Status RetryFailed(ServerContext*, const orchestrator::v1::SweepRef*,
                           orchestrator::v1::RetryFailedResponse*) override;
  grpc::Status ListWorkers(ServerContext*, const orchestrator::v1::ListWorkersRequest*,
                           orchestrator::v1::ListWorkersResponse*) override;
  grpc::Status DrainWorker(ServerContext*, const orchestrator::v1::DrainWorkerRequest*,
                           orchestrator::v1::DrainWorkerResponse*) override;
  grpc::Status WhoAmI(ServerContext*, const orchestrator::v1::WhoAmIRequest*,
                      orchestrator::v1::WhoAmIResponse*) override;
  grpc::Status ListAudit(ServerContext*, const orchestrator::v1::ListAuditRequest*,
                         orchestrator::v1::ListAuditResponse*) override;

 private:
  grpc::Status sweep_snapshot(int64_t id, orchestrator::v1::GetSweepResponse* out);
  Store& store_;
  const CoordinatorOptions& options_;
  ChangeNotifier& changes_;
  Gate& gate_;
  const Provisioner* provisioner_;
};

class WorkerServiceImpl final : public orchestrator::v1::WorkerService::Service {
 public:
  WorkerServiceImpl(Store& store, const CoordinatorOptions& options, ChangeNotifier& changes,
                    Gate& gate, TuningPlanner& planner)
      : store_(store), options_(options), changes_(changes), gate_(gate), planner_(planner) {}
  using ServerContext = grpc::ServerContext;
  grpc::Status RegisterWorker(ServerContext*, const orchestrator::v1::RegisterWorkerRequest*,
                              orchestrator::v1::RegisterWorkerResponse*) override;
  grpc::Status AcquireJob(ServerContext*, const orchestrator::v1::AcquireJobRequest*,
                          orchestrator::v1::AcquireJobResponse*) override;
  grpc::Status Heartbeat(ServerContext*, const orchestrator::v1::HeartbeatRequest*,
                         orchestrator::v1::HeartbeatResponse*) override;
  grpc::Status ReportMetrics(ServerContext*, const orchestrator::v1::ReportMetricsRequest*,
                             orchestrator::v1::ReportMetricsResponse*) override;
  grpc::Status CompleteJob(ServerContext*, const orchestrator::v1::CompleteJobRequest*,
                           orchestrator::v1::CompleteJobResponse*) override;

  int64_t points_ingested() const { return points_ingested_.load(); }

 private:
  // Workers that said they are leaving (HeartbeatRequest.leaving) since they last registered:
  // AcquireJob leases them nothing. In memory: a leaving worker says so on every heartbeat.
  bool leaving(const std::string& worker_id);
  // The worker API's per-worker rule (gate.h): for a worker id, and for the worker holding a job.
  Decision admit_worker(const Caller& caller, const std::string& worker_id);
  Decision admit_job(const Caller& caller, int64_t job_id);
  void set_leaving(const std::string& worker_id, bool leaving);
  std::mutex leaving_mu_;
  std::set<std::string> leaving_;
  Store& store_;
  const CoordinatorOptions& options_;
  ChangeNotifier& changes_;
  Gate& gate_;
  TuningPlanner& planner_;
  std::atomic<int64_t> points_ingested_{0};
  std::atomic<int> completions_{0};
};

}  // namespace server
