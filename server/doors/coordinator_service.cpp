#include "server/doors/coordinator_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "server/doors/results_proto.h"
#include "server/doors/rows_proto.h"
#include "server/results/analysis.h"
#include "server/results/export.h"
#include "server/scheduling/job_config.h"
#include "sweep_file/plan_proto.h"
#include "trainer_core/train/run_records.h"

namespace server {

namespace pb = orchestrator::v1;
using grpc::Status;
using grpc::StatusCode;
using nlohmann::json;

namespace {

// The request's named metrics as one series per name, checked against the run-record limits.
Status named_series(const pb::ReportMetricsRequest& req, std::vector<NamedSeries>& out) {
  const auto refuse = [&](const std::string& why) {
    return Status(StatusCode::INVALID_ARGUMENT, "job " + std::to_string(req.job_id()) + ": " + why);
  };
  if (size_t(req.metric_names_size()) > trainer_core::kMaxMetricNames)
    return refuse(std::to_string(req.metric_names_size()) + " metric names (at most " +
                  std::to_string(trainer_core::kMaxMetricNames) + ")");
  for (const std::string& name : req.metric_names()) {
    if (name.empty() || name.size() > trainer_core::kMaxMetricNameBytes ||
        trainer_core::is_fixed_field(name))
      return refuse("metric name \"" + name.substr(0, 64) + "\": names are 1.." +
                    std::to_string(trainer_core::kMaxMetricNameBytes) +
                    " bytes and not a fixed field's");
    out.push_back({name, {}});
  }
  for (const auto& p : req.points())
    for (const auto& v : p.metrics()) {
      if (v.name() < 0 || v.name() >= req.metric_names_size())
        return refuse("a named value at step " + std::to_string(p.step()) + " indexes name " +
                      std::to_string(v.name()) + " of " + std::to_string(req.metric_names_size()));
      out[size_t(v.name())].points.push_back({p.step(), v.value(), false});
    }
  std::erase_if(out, [](const NamedSeries& n) { return n.points.empty(); });
  return Status::OK;
}

Status invalid_sweep(const std::vector<trainer_core::ConfigProblem>& problems) {
  std::string text = "invalid sweep:";
  for (const auto& p : problems) text += "\n  " + p.to_string();
  return Status(StatusCode::INVALID_ARGUMENT, text);
}

Status fence_status(Fence f, int64_t job_id, int attempt) {
  if (f == Fence::kUnknownJob)
    return Status(StatusCode::NOT_FOUND, "no job " + std::to_string(job_id));
  if (f == Fence::kStale)
    return Status(StatusCode::FAILED_PRECONDITION, "job " + std::to_string(job_id) + " attempt " +
                                                       std::to_string(attempt) +
                                                       " is no longer current");
  return Status::OK;
}

// A store failure (disk full, I/O error) becomes INTERNAL with its reason instead of gRPC's
// anonymous "unexpected error"; the worker keeps its metrics buffered and retries.
template <typename Handler>
Status guarded(Handler&& handler) {
  try {
    return handler();
  } catch (const DbError& e) {
    // A full database is a resource problem, not a bug: callers keep their data and retry.
    if (e.full())
      return Status(
          StatusCode::RESOURCE_EXHAUSTED,
          std::string(
              "coordinator: the database cannot grow (disk full, or --max-db-mib reached): ") +
              e.what());
    return Status(StatusCode::INTERNAL, std::string("coordinator: ") + e.what());
  } catch (const std::exception& e) {
    return Status(StatusCode::INTERNAL, std::string("coordinator: ") + e.what());
  }
}

Status refused(const Decision& d) { return Status(StatusCode::PERMISSION_DENIED, d.rule); }

// Every handler of both services runs through here: the caller is identified (no or an unknown
// token: UNAUTHENTICATED), the policy admits the action (a refusal: PERMISSION_DENIED with its
// rule; both audited by the gate), then the handler runs with the caller under guarded().
// Owner-checked actions (cancel, retry) and the worker API's per-worker check are admitted by
// their handlers, which know the sweep's owner or the worker's registrant. gRPC C++ offers no
// server interceptor that can end a call with a status, and an AuthMetadataProcessor only works
// on TLS credentials, so this wrapper is the services' interceptor.
template <typename Handler>
Status serve(const grpc::ServerContext* context, Gate& gate, Action action,
             const std::string& target, Handler&& handler) {
  const auto& md = context->client_metadata();
  const auto it = md.find("authorization");
  const std::string_view header =
      it == md.end() ? std::string_view() : std::string_view(it->second.data(), it->second.size());
  const std::optional<Caller> caller = gate.identify(header, context->peer(), action, target);
  if (!caller) return Status(StatusCode::UNAUTHENTICATED, "missing or wrong bearer token");
  if (action != Action::kCancelSweep && action != Action::kRetrySweep)
    if (const Decision d = gate.admit(*caller, action, target); !d.allowed) return refused(d);
  return guarded([&] { return handler(*caller); });
}

std::string sweep_target(int64_t id) { return "sweep " + std::to_string(id); }
std::string job_target(int64_t id) { return "job " + std::to_string(id); }

}  // namespace

// ---------------------------------------------------------------- sweepctl-facing

Status SweepServiceImpl::SubmitSweep(ServerContext* ctx, const pb::SubmitSweepRequest* req,
                                     pb::SubmitSweepResponse* resp) {
  return serve(ctx, gate_, Action::kSubmit, "", [&](const Caller& caller) -> Status {
    const sweep_file::SweepPlan plan =
        sweep_file::plan_sweep(req->spec(), req->source_name(), options_.max_jobs_per_sweep);
    if (!plan.problems.empty()) return invalid_sweep(plan.problems);
    const int64_t id = store_.create_sweep(plan, req->spec(), now_ms(), caller.user.name);
    gate_.record(caller, "submit", sweep_target(id),
                 "'" + plan.name + "', " + std::to_string(plan.jobs.size()) + " job(s)");
    resp->set_sweep_id(id);
    for (const JobRow& j : store_.jobs(id)) fill_job(j, resp->add_jobs());
    changes_.notify(Change::kScheduling);
    return Status::OK;
  });
}

Status SweepServiceImpl::ValidateSweep(ServerContext* ctx, const pb::SubmitSweepRequest* req,
                                       pb::ValidateSweepResponse* resp) {
  return serve(ctx, gate_, Action::kSubmit, "", [&](const Caller&) -> Status {
    *resp = sweep_file::plan_to_proto(
        sweep_file::plan_sweep(req->spec(), req->source_name(), options_.max_jobs_per_sweep));
    return Status::OK;
  });
}

Status SweepServiceImpl::ListSweeps(ServerContext* ctx, const pb::ListSweepsRequest* req,
                                    pb::ListSweepsResponse* resp) {
  return serve(ctx, gate_, Action::kRead, "", [&](const Caller&) -> Status {
    const int limit = req->limit() > 0 ? std::min(req->limit(), 1000) : 50;
    for (const SweepRow& s : store_.list_sweeps(limit, req->before_id()))
      fill_sweep(s, resp->add_sweeps());
    return Status::OK;
  });
}

Status SweepServiceImpl::sweep_snapshot(int64_t id, pb::GetSweepResponse* out) {
  const auto sweep = store_.sweep(id);
  if (!sweep) return Status(StatusCode::NOT_FOUND, "no sweep " + std::to_string(id));
  fill_sweep_detail(*sweep, store_.jobs(id), nullptr, out);
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
  const std::string target = sweep_target(req->sweep_id());
  return serve(ctx, gate_, Action::kCancelSweep, target, [&](const Caller& caller) -> Status {
    const auto sweep = store_.sweep(req->sweep_id());
    if (!sweep) return Status(StatusCode::NOT_FOUND, "no " + target);
    if (const Decision d = gate_.admit(caller, Action::kCancelSweep, target, sweep->owner);
        !d.allowed)
      return refused(d);
    resp->set_cancelled_jobs(store_.cancel_sweep(req->sweep_id(), now_ms()));
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
        const auto sweep = store_.sweep(req->sweep_id());
        if (!sweep)
          return Status(StatusCode::NOT_FOUND, "no sweep " + std::to_string(req->sweep_id()));
        *resp = results_to_proto(analyze_stored_sweep(store_, *sweep));
        return Status::OK;
      });
}

Status SweepServiceImpl::ExportSweep(ServerContext* ctx, const pb::ExportSweepRequest* req,
                                     grpc::ServerWriter<pb::ExportChunk>* writer) {
  return serve(
      ctx, gate_, Action::kRead, sweep_target(req->sweep_id()), [&](const Caller&) -> Status {
        const auto sweep = store_.sweep(req->sweep_id());
        if (!sweep)
          return Status(StatusCode::NOT_FOUND, "no sweep " + std::to_string(req->sweep_id()));
        const ExportTable table =
            req->table() == pb::EXPORT_SUMMARIES ? ExportTable::kSummaries : ExportTable::kCurves;
        const ExportFormat format =
            req->format() == pb::EXPORT_JSONL ? ExportFormat::kJsonl : ExportFormat::kCsv;
        struct ClientGone {};  // stops the export at the next piece
        try {
          export_sweep(store_, *sweep, table, format, [&](const std::string& piece) {
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
  const std::string target = sweep_target(req->sweep_id());
  return serve(ctx, gate_, Action::kRetrySweep, target, [&](const Caller& caller) -> Status {
    const auto sweep = store_.sweep(req->sweep_id());
    if (!sweep) return Status(StatusCode::NOT_FOUND, "no " + target);
    if (const Decision d = gate_.admit(caller, Action::kRetrySweep, target, sweep->owner);
        !d.allowed)
      return refused(d);
    resp->set_requeued_jobs(store_.retry_failed(req->sweep_id(), now_ms()));
    gate_.record(caller, "retry", target,
                 std::to_string(resp->requeued_jobs()) + " job(s) re-queued");
    changes_.notify(Change::kScheduling);
    return Status::OK;
  });
}

Status SweepServiceImpl::ListWorkers(ServerContext* ctx, const pb::ListWorkersRequest*,
                                     pb::ListWorkersResponse* resp) {
  return serve(ctx, gate_, Action::kRead, "", [&](const Caller&) -> Status {
    fill_workers_page(store_, provisioner_, resp);
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
    fill_audit(store_, *req, resp);
    return Status::OK;
  });
}

Status SweepServiceImpl::DrainWorker(ServerContext* ctx, const pb::DrainWorkerRequest* req,
                                     pb::DrainWorkerResponse*) {
  return serve(ctx, gate_, Action::kDrainWorker, "worker " + req->worker_id(),
               [&](const Caller& caller) -> Status {
                 if (!store_.drain_worker(req->worker_id()))
                   return Status(StatusCode::NOT_FOUND, "no worker " + req->worker_id());
                 gate_.record(caller, "drain", "worker " + req->worker_id(), "takes no new jobs");
                 return Status::OK;
               });
}

// ---------------------------------------------------------------- worker-facing

Status WorkerServiceImpl::RegisterWorker(ServerContext* ctx, const pb::RegisterWorkerRequest* req,
                                         pb::RegisterWorkerResponse* resp) {
  return serve(
      ctx, gate_, Action::kWorkerApi, "worker " + req->worker_id(),
      [&](const Caller& caller) -> Status {
        if (req->worker_id().empty())
          return Status(StatusCode::INVALID_ARGUMENT, "worker_id is empty");
        if (const Decision d = admit_worker(caller, req->worker_id()); !d.allowed)
          return refused(d);
        if (req->backend() != "cpu" && req->backend() != "cuda")
          return Status(StatusCode::INVALID_ARGUMENT,
                        "backend must be cpu or cuda, got '" + req->backend() + "'");
        WorkerRow w;
        w.id = req->worker_id();
        w.hostname = req->hostname();
        w.backend = req->backend();
        w.slots = std::max(1, req->slots());
        w.devices_json = devices_json(req->devices());
        w.allocation = req->allocation();
        w.registered_by = caller.user.name;
        for (const auto& d : req->devices()) w.gpus += d.kind() == "cuda" ? 1 : 0;
        std::vector<JobRef> running;
        for (const auto& r : req->running()) running.push_back({r.job_id(), r.attempt()});
        for (const JobRef& r : store_.register_worker(w, running, now_ms(), options_.lease_ms)) {
          auto* out = resp->add_rejected();
          out->set_job_id(r.job_id);
          out->set_attempt(r.attempt);
        }
        set_leaving(w.id, false);  // a worker that registers again is back
        gate_.record(caller, "register", "worker " + w.id,
                     w.backend + ", " + std::to_string(w.slots) + " slot(s)" +
                         (w.allocation.empty() ? "" : ", from allocation " + w.allocation));
        resp->set_heartbeat_interval_ms(options_.heartbeat_interval_ms);
        resp->set_lease_ms(int32_t(options_.lease_ms));
        changes_.notify(Change::kScheduling);
        return Status::OK;
      });
}

Decision WorkerServiceImpl::admit_worker(const Caller& caller, const std::string& worker_id) {
  if (caller.user.role == Role::kAdmin) return {true, ""};  // no lookup for the one-token set-up
  const auto worker = store_.worker(worker_id);
  return gate_.admit_worker(caller, worker_id, worker ? worker->registered_by : "");
}

Decision WorkerServiceImpl::admit_job(const Caller& caller, int64_t job_id) {
  if (caller.user.role == Role::kAdmin) return {true, ""};
  const auto job = store_.job(job_id);
  // A job no worker holds is refused by its fence, with the reason; only a holder is checked here.
  if (!job || job->worker_id.empty()) return {true, ""};
  return admit_worker(caller, job->worker_id);
}

bool WorkerServiceImpl::leaving(const std::string& worker_id) {
  std::lock_guard lock(leaving_mu_);
  return leaving_.count(worker_id) > 0;
}

void WorkerServiceImpl::set_leaving(const std::string& worker_id, bool leaving) {
  std::lock_guard lock(leaving_mu_);
  if (leaving)
    leaving_.insert(worker_id);
  else
    leaving_.erase(worker_id);
}

Status WorkerServiceImpl::AcquireJob(ServerContext* ctx, const pb::AcquireJobRequest* req,
                                     pb::AcquireJobResponse* resp) {
  return serve(
      ctx, gate_, Action::kWorkerApi, "worker " + req->worker_id(),
      [&](const Caller& caller) -> Status {
        const auto worker = store_.worker(req->worker_id());
        if (!worker)
          return Status(StatusCode::FAILED_PRECONDITION,
                        "worker " + req->worker_id() + " is not registered");
        if (const Decision d = gate_.admit_worker(caller, worker->id, worker->registered_by);
            !d.allowed)
          return refused(d);
        const WorkerCapacity capacity{worker->backend, req->free_slots(), req->free_gpus()};
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::milliseconds(std::clamp(req->wait_ms(), 0, 30000));
        uint64_t seen = changes_.version(Change::kScheduling);
        while (!leaving(req->worker_id())) {
          if (auto job = store_.acquire_job(req->worker_id(), capacity, now_ms(), options_.lease_ms,
                                            options_.max_running_per_user)) {
            gate_.record(caller, "lease", job_target(job->id),
                         "attempt " + std::to_string(job->attempt) + " of sweep " +
                             std::to_string(job->sweep_id) + " to worker " + req->worker_id());
            const json config = job_time_config(job->config, job->sweep_id, job->id, job->max_steps,
                                                options_.checkpoint_root);
            resp->set_has_job(true);
            auto* lease = resp->mutable_lease();
            lease->set_job_id(job->id);
            lease->set_attempt(job->attempt);
            lease->set_sweep_id(job->sweep_id);
            lease->set_label(job->label);
            lease->set_config_json(config.dump());
            lease->set_lease_expiry_unix_ms(job->lease_expiry_ms);
            lease->set_gpus(job->gpus);
            changes_.notify(Change::kProgress);  // a lease frees nothing for other workers
            return Status::OK;
          }
          const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                deadline - std::chrono::steady_clock::now())
                                .count();
          if (left <= 0 || ctx->IsCancelled() || changes_.closed()) break;
          seen = changes_.wait(Change::kScheduling, seen, int(std::min<int64_t>(left, 1000)));
        }
        resp->set_has_job(false);
        return Status::OK;
      });
}

Status WorkerServiceImpl::Heartbeat(ServerContext* ctx, const pb::HeartbeatRequest* req,
                                    pb::HeartbeatResponse* resp) {
  return serve(ctx, gate_, Action::kWorkerApi, "worker " + req->worker_id(),
               [&](const Caller& caller) -> Status {
                 if (const Decision d = admit_worker(caller, req->worker_id()); !d.allowed)
                   return refused(d);
                 if (req->leaving() && !leaving(req->worker_id())) {
                   set_leaving(req->worker_id(), true);
                   changes_.notify(Change::kScheduling);  // its job poll ends now
                 }
                 std::vector<std::pair<JobRef, int64_t>> progress;
                 for (const auto& j : req->jobs())
                   progress.push_back({{j.job_id(), j.attempt()}, j.step()});
                 const HeartbeatResult r =
                     store_.heartbeat(req->worker_id(), progress, now_ms(), options_.lease_ms);
                 if (!r.known)
                   return Status(StatusCode::FAILED_PRECONDITION,
                                 "worker " + req->worker_id() + " is not registered");
                 // Its last word: leaving with no job, it is gone (an idle provisioned worker's
                 // exit).
                 if (req->leaving() && req->jobs().empty())
                   store_.worker_left(req->worker_id(), now_ms());
                 for (const JobRef& c : r.cancel) {
                   auto* out = resp->add_cancel();
                   out->set_job_id(c.job_id);
                   out->set_attempt(c.attempt);
                 }
                 for (const JobRef& c : r.stale) {
                   auto* out = resp->add_stale();
                   out->set_job_id(c.job_id);
                   out->set_attempt(c.attempt);
                 }
                 resp->set_drain(r.drain);
                 return Status::OK;
               });
}

Status WorkerServiceImpl::ReportMetrics(ServerContext* ctx, const pb::ReportMetricsRequest* req,
                                        pb::ReportMetricsResponse* resp) {
  return serve(
      ctx, gate_, Action::kWorkerApi, job_target(req->job_id()),
      [&](const Caller& caller) -> Status {
        if (const Decision d = admit_job(caller, req->job_id()); !d.allowed) return refused(d);
        std::vector<MetricRow> points;
        points.reserve(size_t(req->points_size()));
        for (const auto& p : req->points())
          points.push_back({p.step(), p.train_loss(), p.lr(), p.grad_norm(), p.tokens(),
                            p.elapsed_s(), p.spike()});
        std::vector<EvalRow> evals;
        for (const auto& e : req->evals())
          evals.push_back({e.step(), e.val_loss(), e.tokens(), e.elapsed_s(),
                           e.has_train_s() ? e.train_s().value() : kUnknownSeconds});
        for (const auto& p : req->points())
          if (p.step() < 0 || p.step() > SeriesStore::kMaxStep)
            return Status(StatusCode::INVALID_ARGUMENT,
                          "job " + std::to_string(req->job_id()) + ": metric point at step " +
                              std::to_string(p.step()) + " (steps are 0.." +
                              std::to_string(SeriesStore::kMaxStep) + ")");
        std::vector<NamedSeries> named;
        if (auto s = named_series(*req, named); !s.ok()) return s;
        const Fence f = store_.store_metrics({req->job_id(), req->attempt()}, points, evals,
                                             req->resumed_from_step(), now_ms(), named);
        if (f != Fence::kOk) return fence_status(f, req->job_id(), req->attempt());
        points_ingested_ += int64_t(points.size());
        resp->set_stored(int64_t(points.size()));
        if (!evals.empty()) try {  // early stopping judges a tuning run at its rungs' evaluations
            std::vector<int64_t> steps;
            for (const EvalRow& e : evals) steps.push_back(e.step);
            if (planner_.consider_stopping(req->job_id(), steps, now_ms()))
              spdlog::info("coordinator: job {} stopped early", req->job_id());
          } catch (const std::exception& e) {
            spdlog::warn("coordinator: job {}: early stopping not judged: {}", req->job_id(),
                         e.what());
          }
        changes_.notify(Change::kProgress);  // watchers see the step; no worker can acquire more
        return Status::OK;
      });
}

Status WorkerServiceImpl::CompleteJob(ServerContext* ctx, const pb::CompleteJobRequest* req,
                                      pb::CompleteJobResponse*) {
  return serve(
      ctx, gate_, Action::kWorkerApi, job_target(req->job_id()),
      [&](const Caller& caller) -> Status {
        if (const Decision d = admit_job(caller, req->job_id()); !d.allowed) return refused(d);
        const std::optional<JobState> state = from_proto(req->state());
        if (!state || (*state != JobState::kPending && !is_terminal(*state)))
          return Status(StatusCode::INVALID_ARGUMENT,
                        "a job cannot complete as " + pb::JobState_Name(req->state()));
        const bool retryable = req->failure() != pb::FAILURE_OUT_OF_MEMORY;
        const Fence f = store_.complete_job({req->job_id(), req->attempt()}, *state, req->message(),
                                            req->summary_json(), now_ms(), retryable);
        if (f != Fence::kOk) return fence_status(f, req->job_id(), req->attempt());
        gate_.record(
            caller, "complete", job_target(req->job_id()),
            "attempt " + std::to_string(req->attempt()) + ": " + pb::JobState_Name(req->state()) +
                (req->message().empty() ? "" : " (" + req->message().substr(0, 200) + ")"));
        if (options_.crash_after_completions > 0 &&
            ++completions_ == options_.crash_after_completions)
          std::_Exit(137);  // the test's kill -9 between a completion and its planning
        // A tuned sweep's next jobs (a fixed sweep's jobs, role grid, have none to plan). Should
        // this fail or the coordinator die first, the open sweep is planned again by the
        // housekeeping loop and at start: a completion is never lost.
        if (const std::optional<JobRow> job = store_.job(req->job_id());
            job && job->role != sweep_file::JobRole::kGrid)
          try {
            if (const int added = planner_.plan(job->sweep_id, now_ms()); added > 0)
              spdlog::info("coordinator: sweep {}: the tuning planner added {} job(s)",
                           job->sweep_id, added);
          } catch (const std::exception& e) {
            spdlog::warn("coordinator: sweep {}: tuning planning failed, retried later: {}",
                         job->sweep_id, e.what());
          }
        changes_.notify(Change::kScheduling);
        return Status::OK;
      });
}

}  // namespace server
