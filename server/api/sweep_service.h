// The sweepctl-facing gRPC service (SweepService): submit, validate, list, watch, cancel, retry,
// fork, results, export, workers, audit, drain. Every handler runs through serve() (admission.h).
//
// Lifetime: holds the Store, the options, the notifier, the gate and the provisioner by reference;
// the coordinator's main() owns them and shuts the gRPC server down (after changes.close(), so
// long polls end) before they are destroyed. Threads: gRPC calls handlers on its own pool, many
// at once; the stores serialize their transactions, the notifier and the gate are thread-safe,
// the options are read-only after start.
#pragma once

#include <grpcpp/grpcpp.h>

#include "orchestrator.grpc.pb.h"
#include "server/api/change_notifier.h"
#include "server/api/coordinator_options.h"
#include "server/api/gate.h"
#include "server/provisioning/provisioner.h"
#include "server/storage/store.h"

namespace server {

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
  grpc::Status ForkJob(ServerContext*, const orchestrator::v1::ForkJobRequest*,
                       orchestrator::v1::ForkJobResponse*) override;
  grpc::Status ListWorkers(ServerContext*, const orchestrator::v1::ListWorkersRequest*,
                           orchestrator::v1::ListWorkersResponse*) override;
  grpc::Status DrainWorker(ServerContext*, const orchestrator::v1::DrainWorkerRequest*,
                           orchestrator::v1::DrainWorkerResponse*) override;
  grpc::Status WhoAmI(ServerContext*, const orchestrator::v1::WhoAmIRequest*,
                      orchestrator::v1::WhoAmIResponse*) override;
  grpc::Status ListAudit(ServerContext*, const orchestrator::v1::ListAuditRequest*,
                         orchestrator::v1::ListAuditResponse*) override;
  grpc::Status GetJobLog(ServerContext*, const orchestrator::v1::GetJobLogRequest*,
                         orchestrator::v1::JobLog*) override;

 private:
  grpc::Status sweep_snapshot(int64_t id, orchestrator::v1::GetSweepResponse* out);
  Store& store_;
  const CoordinatorOptions& options_;
  ChangeNotifier& changes_;
  Gate& gate_;
  const Provisioner* provisioner_;
};

}  // namespace server
