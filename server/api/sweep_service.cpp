#include "server/api/sweep_service.h"

#include <algorithm>
#include <set>

#include "server/api/admission.h"
#include "server/api/results_proto.h"
#include "server/api/rows_proto.h"
#include "server/results/analysis.h"
#include "server/results/export.h"
#include "server/storage/clock.h"
#include "server/tuning/forking.h"
#include "sweep_file/plan_proto.h"

namespace server {

namespace pb = orchestrator::v1;
using grpc::Status;
using grpc::StatusCode;

namespace {

// INVALID_ARGUMENT listing every problem with its path: "invalid <what>:\n  path: message...".
Status invalid(const std::string& what, const std::vector<trainer_core::ConfigProblem>& problems) {
  std::string text = "invalid " + what + ":";
  for (const auto& p : problems) text += "\n  " + p.to_string();
  return Status(StatusCode::INVALID_ARGUMENT, text);
}

constexpr const char* kForksNeedCheckpointRoot =
    "forks start from their parent's kept checkpoint, and this coordinator keeps no checkpoints: "
    "start it with --checkpoint-root";

// The plan of a sweep file with what this coordinator cannot run added to its problems: forks
// start from kept checkpoints, which live under --checkpoint-root.
sweep_file::SweepPlan plan_here(const pb::SubmitSweepRequest& req,
                                const CoordinatorOptions& options) {
  sweep_file::SweepPlan plan =
      sweep_file::plan_sweep(req.spec(), req.source_name(), options.max_jobs_per_sweep);
  const bool forks = std::any_of(plan.jobs.begin(), plan.jobs.end(),
                                 [](const sweep_file::ExpandedJob& j) { return j.fork; });
  if (forks && options.checkpoint_root.empty())
    plan.problems.push_back(
        {plan.budgets ? "budgets.via" : "forks",
         kForksNeedCheckpointRoot + std::string(plan.budgets ? ", or use via: separate" : "")});
  if (sweep_file::any_rewinds(plan.health) && options.checkpoint_root.empty())
    plan.problems.push_back(
        {"health", std::string("a rewind forks the run from a checkpoint it "
                               "kept, and this coordinator keeps no "
                               "checkpoints: start it with --checkpoint-root")});
  // A sweep file may not make the coordinator call any address: only origins its operator allows.
  for (size_t i = 0; i < plan.notify.size(); ++i) {
    std::string problem;
    const auto url = sweep_file::parse_webhook_url(plan.notify[i], problem);
    if (url && std::find(options.notify_allow_origins.begin(), options.notify_allow_origins.end(),
                         url->origin()) == options.notify_allow_origins.end())
      plan.problems.push_back(
          {"notify[" + std::to_string(i) + "]",
           url->origin() + " is not among this coordinator's --notify-allow origins" +
               (options.notify_allow_origins.empty() ? " (it allows none)" : "")});
  }
  return plan;
}

}  // namespace

Status SweepServiceImpl::SubmitSweep(ServerContext* ctx, const pb::SubmitSweepRequest* req,
                                     pb::SubmitSweepResponse* resp) {
  return serve(ctx, gate_, Action::kSubmit, "", [&](const Caller& caller) -> Status {
    const sweep_file::SweepPlan plan = plan_here(*req, options_);
    if (!plan.problems.empty()) return invalid("sweep", plan.problems);
    const int64_t id = store_.sweeps.create_sweep(plan, req->spec(), now_ms(), caller.user.name);
    gate_.record(caller, "submit", sweep_target(id),
                 "'" + plan.name + "', " + std::to_string(plan.jobs.size()) + " job(s)");
    resp->set_sweep_id(id);
    for (const JobRow& j : store_.sweeps.jobs(id)) fill_job(j, resp->add_jobs());
    changes_.notify(Change::kScheduling);
    return Status::OK;
  });
}

Status SweepServiceImpl::ValidateSweep(ServerContext* ctx, const pb::SubmitSweepRequest* req,
                                       pb::ValidateSweepResponse* resp) {
  return serve(ctx, gate_, Action::kSubmit, "", [&](const Caller&) -> Status {
    *resp = sweep_file::plan_to_proto(plan_here(*req, options_));
    return Status::OK;
  });
}

Status SweepServiceImpl::ListSweeps(ServerContext* ctx, const pb::ListSweepsRequest* req,
                                    pb::ListSweepsResponse* resp) {
  return serve(ctx, gate_, Action::kRead, "", [&](const Caller&) -> Status {
    const int limit = req->limit() > 0 ? std::min(req->limit(), 1000) : 50;
    for (const SweepRow& s : store_.sweeps.list_sweeps(limit, req->before_id()))
      fill_sweep(s, resp->add_sweeps());
    return Status::OK;
  });
}

Status SweepServiceImpl::sweep_snapshot(int64_t id, pb::GetSweepResponse* out) {
  const auto sweep = store_.sweeps.sweep(id);
  if (!sweep) return Status(StatusCode::NOT_FOUND, "no sweep " + std::to_string(id));
  fill_sweep_detail(*sweep, store_.sweeps.jobs(id),
                    store_.events.for_sweep(id, 0, kSweepEventsShown), nullptr, provisioner_, out);
  return Status::OK;
}

Status SweepServiceImpl::GetSweep(ServerContext* ctx, const pb::SweepRef* req,
                                  pb::GetSweepResponse* resp) {
  return serve(ctx, gate_, Action::kRead, sweep_target(req->sweep_id()),
               [&](const Caller&) -> Status { return sweep_snapshot(req->sweep_id(), resp); });
}

Status SweepServiceImpl::WatchSweep(ServerContext* ctx, const pb::SweepRef* req,
                                    grpc::ServerWriter<pb::GetSweepResponse>* writer) {
  return serve(ctx, gate_, Action::kRead, sweep_target(req->sweep_id()),
               [&](const Caller&) -> Status {
                 std::string last_sent;
                 uint64_t seen = changes_.version(Change::kProgress);
                 while (!ctx->IsCancelled() && !changes_.closed()) {
                   pb::GetSweepResponse snapshot;
                   if (auto s = sweep_snapshot(req->sweep_id(), &snapshot); !s.ok()) return s;
                   std::string bytes;
                   snapshot.SerializeToString(&bytes);
                   if (bytes != last_sent) {
                     if (!writer->Write(snapshot)) return Status::OK;  // client went away
                     last_sent = std::move(bytes);
                   }
                   const pb::SweepState state = snapshot.sweep().state();
                   if (state == pb::SWEEP_FINISHED || state == pb::SWEEP_CANCELLED)
                     return Status::OK;
                   seen = changes_.wait(Change::kProgress, seen, 1000);
                 }
                 return Status::OK;
               });
}

Status SweepServiceImpl::CancelSweep(ServerContext* ctx, const pb::SweepRef* req,
                                     pb::CancelSweepResponse* resp) {
  return serve_owner_checked(
      ctx, gate_, store_.sweeps, Action::kCancelSweep, req->sweep_id(),
      [&](const Caller& caller, const std::string& target) -> Status {
        resp->set_cancelled_jobs(store_.sweeps.cancel_sweep(req->sweep_id(), now_ms()));
        gate_.record(caller, "cancel", target,
                     std::to_string(resp->cancelled_jobs()) + " job(s) cancelled or asked to stop");
        changes_.notify(Change::kScheduling);
        return Status::OK;
      });
}

Status SweepServiceImpl::GetResults(ServerContext* ctx, const pb::SweepRef* req,
                                    pb::GetResultsResponse* resp) {
  return serve(
      ctx, gate_, Action::kRead, sweep_target(req->sweep_id()), [&](const Caller&) -> Status {
        const auto sweep = store_.sweeps.sweep(req->sweep_id());
        if (!sweep)
          return Status(StatusCode::NOT_FOUND, "no sweep " + std::to_string(req->sweep_id()));
        *resp = results_to_proto(analyze_stored_sweep(store_.sweeps, store_.metrics, *sweep));
        return Status::OK;
      });
}

Status SweepServiceImpl::ExportSweep(ServerContext* ctx, const pb::ExportSweepRequest* req,
                                     grpc::ServerWriter<pb::ExportChunk>* writer) {
  return serve(
      ctx, gate_, Action::kRead, sweep_target(req->sweep_id()), [&](const Caller&) -> Status {
        const auto sweep = store_.sweeps.sweep(req->sweep_id());
        if (!sweep)
          return Status(StatusCode::NOT_FOUND, "no sweep " + std::to_string(req->sweep_id()));
        const ExportTable table =
            req->table() == pb::EXPORT_SUMMARIES ? ExportTable::kSummaries : ExportTable::kCurves;
        const ExportFormat format =
            req->format() == pb::EXPORT_JSONL ? ExportFormat::kJsonl : ExportFormat::kCsv;
        struct ClientGone {};  // stops the export at the next piece
        try {
          export_sweep(store_.sweeps, store_.metrics, *sweep, table, format,
                       [&](const std::string& piece) {
                         pb::ExportChunk chunk;
                         chunk.set_data(piece);
                         if (ctx->IsCancelled() || !writer->Write(chunk)) throw ClientGone{};
                       });
        } catch (const ClientGone&) {
          return Status(StatusCode::CANCELLED, "the client went away");
        }
        return Status::OK;
      });
}

Status SweepServiceImpl::RetryFailed(ServerContext* ctx, const pb::SweepRef* req,
                                     pb::RetryFailedResponse* resp) {
  return serve_owner_checked(
      ctx, gate_, store_.sweeps, Action::kRetrySweep, req->sweep_id(),
      [&](const Caller& caller, const std::string& target) -> Status {
        resp->set_requeued_jobs(store_.sweeps.retry_failed(req->sweep_id(), now_ms()));
        gate_.record(caller, "retry", target,
                     std::to_string(resp->requeued_jobs()) + " job(s) re-queued");
        changes_.notify(Change::kScheduling);
        return Status::OK;
      });
}

Status SweepServiceImpl::ForkJob(ServerContext* ctx, const pb::ForkJobRequest* req,
                                 pb::ForkJobResponse* resp) {
  const std::optional<JobRow> parent = store_.sweeps.job(req->job_id());
  if (!parent)  // nothing to own: any reader learns only that it does not exist
    return serve(ctx, gate_, Action::kRead, "job " + std::to_string(req->job_id()),
                 [&](const Caller&) -> Status {
                   return Status(StatusCode::NOT_FOUND, "no job " + std::to_string(req->job_id()));
                 });
  return serve_owner_checked(
      ctx, gate_, store_.sweeps, Action::kForkJob, parent->sweep_id,
      [&](const Caller& caller, const std::string& target) -> Status {
        if (options_.checkpoint_root.empty())
          return Status(StatusCode::FAILED_PRECONDITION, kForksNeedCheckpointRoot);
        // A cancelled sweep stays cancelled: a fork's pending job would start it again, behind
        // the back of whoever cancelled it.
        if (const auto sweep = store_.sweeps.sweep(parent->sweep_id);
            sweep && sweep->state() == SweepState::kCancelled)
          return Status(StatusCode::FAILED_PRECONDITION,
                        target +
                            " is cancelled: a fork would start it again; fork a job of a "
                            "sweep that is running or finished, or submit a new sweep");
        ForkRequest fork;
        fork.spec.from = parent->label;
        fork.spec.at_tokens = req->at_case() == pb::ForkJobRequest::kAtStep
                                  ? req->at_step() * parent->batch_tokens
                                  : req->at_tokens();
        fork.spec.label =
            req->label().empty() ? "fork@" + std::to_string(fork.spec.at_tokens) : req->label();
        fork.spec.set = sweep_file::changes_from_proto(req->set());
        const ForkOutcome made =
            fork_stored_job(store_.sweeps, options_.checkpoint_root, *parent, fork, now_ms());
        if (!made.problems.empty()) return invalid("fork", made.problems);
        if (!made.refusal.empty()) return Status(StatusCode::FAILED_PRECONDITION, made.refusal);
        const JobRow& added = *made.added;
        gate_.record(caller, "fork", target,
                     "job " + std::to_string(added.id) + " from job " + std::to_string(parent->id) +
                         " at step " + std::to_string(made.branch_step) + ", changing " +
                         (made.changes.empty() ? std::string("nothing") : made.changes.dump()));
        fill_job(added, resp->mutable_job());
        changes_.notify(Change::kScheduling);
        return Status::OK;
      });
}

Status SweepServiceImpl::ListWorkers(ServerContext* ctx, const pb::ListWorkersRequest*,
                                     pb::ListWorkersResponse* resp) {
  return serve(ctx, gate_, Action::kRead, "", [&](const Caller&) -> Status {
    fill_workers_page(store_.workers, store_.allocations, provisioner_, resp);
    return Status::OK;
  });
}

Status SweepServiceImpl::WhoAmI(ServerContext* ctx, const pb::WhoAmIRequest*,
                                pb::WhoAmIResponse* resp) {
  return serve(ctx, gate_, Action::kWhoAmI, "", [&](const Caller& caller) -> Status {
    resp->set_user(caller.user.name);
    resp->set_role(role_name(caller.user.role));
    return Status::OK;
  });
}

Status SweepServiceImpl::ListAudit(ServerContext* ctx, const pb::ListAuditRequest* req,
                                   pb::ListAuditResponse* resp) {
  return serve(ctx, gate_, Action::kReadAudit, "audit", [&](const Caller&) -> Status {
    fill_audit(store_.audit, *req, resp);
    return Status::OK;
  });
}

Status SweepServiceImpl::GetJobLog(ServerContext* ctx, const pb::GetJobLogRequest* req,
                                   pb::JobLog* resp) {
  return serve(ctx, gate_, Action::kRead, job_target(req->job_id()), [&](const Caller&) -> Status {
    if (!fill_job_log(store_, req->job_id(), req->attempt(), req->from_offset(), resp))
      return Status(StatusCode::NOT_FOUND, "no job " + std::to_string(req->job_id()));
    return Status::OK;
  });
}

Status SweepServiceImpl::DrainWorker(ServerContext* ctx, const pb::DrainWorkerRequest* req,
                                     pb::DrainWorkerResponse*) {
  return serve(ctx, gate_, Action::kDrainWorker, worker_target(req->worker_id()),
               [&](const Caller& caller) -> Status {
                 if (!store_.workers.drain_worker(req->worker_id()))
                   return Status(StatusCode::NOT_FOUND, "no worker " + req->worker_id());
                 gate_.record(caller, "drain", worker_target(req->worker_id()),
                              "takes no new jobs");
                 return Status::OK;
               });
}

}  // namespace server
