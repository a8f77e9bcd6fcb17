// The store's rows in the wire contract: one conversion per record, used by the gRPC services
// and the dashboard's /api/ alike, so a field has one name from the store to the page. (Results
// have theirs in results_proto.h, sweep plans in sweep_file/plan_proto.h.)
#pragma once

#include <google/protobuf/struct.pb.h>

#include <optional>
#include <string>
#include <vector>

#include "orchestrator.pb.h"
#include "server/provisioning/provisioner.h"
#include "server/results/config_columns.h"
#include "server/storage/store.h"

namespace server {

orchestrator::v1::JobState to_proto(JobState state);
std::optional<JobState> from_proto(orchestrator::v1::JobState state);  // nullopt: unspecified
orchestrator::v1::SweepState to_proto(SweepState state);
orchestrator::v1::WorkerState to_proto(WorkerState state);
orchestrator::v1::AllocationState to_proto(AllocationState state);
orchestrator::v1::EventKind to_proto(EventKind kind);

// with_config: the whole stored config as config_json (leases and single-run answers).
void fill_job(const JobRow& job, orchestrator::v1::JobInfo* out, bool with_config = false);
// The job's values of `columns`' paths into out->settings.
void fill_settings(const ConfigColumns& columns, int64_t job_id, orchestrator::v1::JobInfo* out);
void fill_sweep(const SweepRow& sweep, orchestrator::v1::SweepInfo* out);
// A sweep and its jobs; with `columns`, also the config paths the jobs vary and each job's
// values of them (the dashboard's filters), which cost a read of every job's config. With a
// `provisioner` held back by failures while some job waits on its backend, the setback too.
// `events`: the sweep's newest (EventStore::for_sweep).
void fill_sweep_detail(const SweepRow& sweep, const std::vector<JobRow>& jobs,
                       const std::vector<EventRow>& events, const ConfigColumns* columns,
                       const Provisioner* provisioner, orchestrator::v1::GetSweepResponse* out);
// A job attempt's log from byte `from` (attempt 0: its newest with a log; LogStore::read), with
// the attempts that have logs and whether the attempt is over; empty when it wrote nothing yet.
// False: no such job.
bool fill_job_log(Store& store, int64_t job_id, int attempt, int64_t from,
                  orchestrator::v1::JobLog* out);
void fill_event(const EventRow& event, orchestrator::v1::Event* out);
// A sweep detail's events: at most this many, the newest.
constexpr int kSweepEventsShown = 50;
// A worker's devices as stored (WorkerRow.devices_json); fill_worker reads them back.
std::string devices_json(
    const google::protobuf::RepeatedPtrField<orchestrator::v1::Device>& devices);
void fill_worker(const WorkerRow& worker, orchestrator::v1::WorkerInfo* out);
void fill_allocation(const AllocationRow& allocation, orchestrator::v1::AllocationInfo* out);
// The workers page (gRPC ListWorkers and /api/workers alike): every worker, the open allocations
// and the latest 50 ended ones (newest first), and the provisioner's last look at the queue
// (engine "none" when `provisioner` is null).
void fill_workers_page(WorkerStore& workers, AllocationStore& allocations,
                       const Provisioner* provisioner, orchestrator::v1::ListWorkersResponse* out);
// The audit rows a request asks for (gRPC ListAudit and /api/audit alike).
void fill_audit(AuditStore& audit, const orchestrator::v1::ListAuditRequest& request,
                orchestrator::v1::ListAuditResponse* out);
void fill_curve(const std::vector<CurveBucket>& buckets, orchestrator::v1::Curve* out);
void fill_evals(const std::vector<EvalRow>& evals, orchestrator::v1::EvalCurve* out);
// A JSON object's text as a Struct; false (out cleared) when the text is not a JSON object.
bool fill_struct(const std::string& json_text, google::protobuf::Struct* out);

}  // namespace server
