// The worker-facing gRPC service (WorkerService): register, lease, heartbeat, report, complete.
// Every handler runs through serve() (admission.h) and then the per-worker rule (a worker's calls
// only from the user whose token registered it); ReportMetrics and CompleteJob are fenced by
// (job_id, attempt) in the store. A worker that says it is leaving is kept in the store
// (WorkerStore::set_leaving), so a restarted coordinator leases it nothing either.
//
// Lifetime: holds the Store, the options, the notifier, the gate and the planner by reference;
// main() owns them and shuts the gRPC server down before they are destroyed. Threads: handlers
// run on gRPC's pool, many at once; the counters are atomics.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "orchestrator.grpc.pb.h"
#include "server/api/change_notifier.h"
#include "server/api/coordinator_options.h"
#include "server/api/gate.h"
#include "server/storage/store.h"
#include "server/tuning/health.h"
#include "server/tuning/planner.h"

namespace server {

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
  grpc::Status ShipLog(ServerContext*, const orchestrator::v1::ShipLogRequest*,
                       orchestrator::v1::ShipLogResponse*) override;

  int64_t points_ingested() const { return points_ingested_.load(); }

 private:
  // The worker API's per-worker rule (gate.h): for a worker id, and for the worker holding a job.
  Decision admit_worker(const Caller& caller, const std::string& worker_id);
  Decision admit_job(const Caller& caller, int64_t job_id);
  // The config a just-leased job runs with (job_config.h); nullopt when it cannot run here (a
  // fork on a coordinator without --checkpoint-root): the job is then FAILED with the reason.
  std::optional<nlohmann::json> leased_config(const JobRow& job);
  // The newest finished run that may stand in for a job of a sweep with `reuse: true`.
  std::optional<trainer_core::ReusableRunConfig> reuse_offer(const JobRow& job);
  Store& store_;
  const CoordinatorOptions& options_;
  ChangeNotifier& changes_;
  Gate& gate_;
  TuningPlanner& planner_;
  HealthWatch health_{store_.sweeps, store_.metrics, store_.events,
                      options_.checkpoint_root};  // the sweeps' health rules
  // Judges a job's health rules and audits what they did; never throws (a failure is logged).
  void judge_health(const Caller& caller, int64_t job_id);
  std::atomic<int64_t> points_ingested_{0};
  std::atomic<int> completions_{0};
};

}  // namespace server
