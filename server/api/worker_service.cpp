#include "server/api/worker_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>

#include "server/api/admission.h"
#include "server/api/rows_proto.h"
#include "server/api/step_series.h"
#include "server/scheduling/fork_source.h"
#include "server/scheduling/job_config.h"
#include "server/storage/clock.h"
#include "trainer_core/train/run_records.h"

namespace server {

namespace pb = orchestrator::v1;
using grpc::Status;
using grpc::StatusCode;
using nlohmann::json;

namespace {

// The request's named metrics as one series per name, checked against the run-record limits,
// appended to `out`; series without points are dropped.
Status named_series(const pb::ReportMetricsRequest& req, std::vector<NamedSeries>& out) {
  const size_t first = out.size();
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
      out[first + size_t(v.name())].points.push_back({p.step(), v.value(), false});
    }
  std::erase_if(out, [](const NamedSeries& n) { return n.points.empty(); });
  return Status::OK;
}

// The finished run a job's trainer took instead of training (trainer_core/train/reuse.h); 0 when
// it trained (or sent no summary this version reads: stored as sent, as before).
int64_t reused_from_job(const std::string& summary_json) {
  if (summary_json.empty()) return 0;
  try {
    return trainer_core::summary_from_json(json::parse(summary_json)).reused_from_job;
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

Status WorkerServiceImpl::RegisterWorker(ServerContext* ctx, const pb::RegisterWorkerRequest* req,
                                         pb::RegisterWorkerResponse* resp) {
  return serve(ctx, gate_, Action::kWorkerApi, worker_target(req->worker_id()),
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
                 for (const JobRef& r :
                      store_.workers.register_worker(w, running, now_ms(), options_.lease_ms)) {
                   auto* out = resp->add_rejected();
                   out->set_job_id(r.job_id);
                   out->set_attempt(r.attempt);
                 }
                 gate_.record(
                     caller, "register", worker_target(w.id),
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
  const auto worker = store_.workers.worker(worker_id);
  return gate_.admit_worker(caller, worker_id, worker ? worker->registered_by : "");
}

Decision WorkerServiceImpl::admit_job(const Caller& caller, int64_t job_id) {
  if (caller.user.role == Role::kAdmin) return {true, ""};
  const auto job = store_.sweeps.job(job_id);
  // A job no worker holds is refused by its fence, with the reason; only a holder is checked here.
  if (!job || job->worker_id.empty()) return {true, ""};
  return admit_worker(caller, job->worker_id);
}

Status WorkerServiceImpl::AcquireJob(ServerContext* ctx, const pb::AcquireJobRequest* req,
                                     pb::AcquireJobResponse* resp) {
  return serve(
      ctx, gate_, Action::kWorkerApi, worker_target(req->worker_id()),
      [&](const Caller& caller) -> Status {
        const auto worker = store_.workers.worker(req->worker_id());
        if (!worker)
          return Status(StatusCode::FAILED_PRECONDITION,
                        worker_target(req->worker_id()) + " is not registered");
        if (const Decision d = gate_.admit_worker(caller, worker->id, worker->registered_by);
            !d.allowed)
          return refused(d);
        const WorkerCapacity capacity{worker->backend, req->free_slots(), req->free_gpus()};
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::milliseconds(std::clamp(req->wait_ms(), 0, 30000));
        uint64_t seen = changes_.version(Change::kScheduling);
        while (!store_.workers.is_leaving(req->worker_id())) {
          if (auto job =
                  store_.workers.acquire_job(req->worker_id(), capacity, now_ms(),
                                             options_.lease_ms, options_.max_running_per_user)) {
            gate_.record(caller, "lease", job_target(job->id),
                         "attempt " + std::to_string(job->attempt) + " of sweep " +
                             std::to_string(job->sweep_id) + " to worker " + req->worker_id());
            const std::optional<json> config = leased_config(*job);
            if (!config) continue;  // failed: it needs what this coordinator lacks
            resp->set_has_job(true);
            auto* lease = resp->mutable_lease();
            lease->set_job_id(job->id);
            lease->set_attempt(job->attempt);
            lease->set_sweep_id(job->sweep_id);
            lease->set_label(job->label);
            lease->set_config_json(config->dump());
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

std::optional<json> WorkerServiceImpl::leased_config(const JobRow& job) {
  LeasedJob leased{job.sweep_id,     job.id,       job.max_steps,
                   job.pinned_steps, std::nullopt, std::nullopt};
  leased.keeps_rewind_points = sweep_file::any_rewinds(store_.sweeps.health_rules(job.sweep_id));
  if (job.fork)
    if (const std::optional<JobRow> parent = store_.sweeps.job(job.fork->parent_job_id)) {
      const RunRef owner = parent->checkpoint_owner();
      leased.fork = ForkSource{owner.sweep_id, owner.job_id, job.fork->plan.branch_step};
    }
  if (job.sweep_reuse) leased.reusable_run = reuse_offer(job);
  try {
    // The fork of a running parent that passed the branch step before keeping it cannot start.
    if (const std::string missing =
            missing_fork_checkpoint(options_.checkpoint_root, leased, job.batch_tokens);
        !missing.empty())
      throw std::invalid_argument(missing);
    return job_time_config(job.config, leased, options_.checkpoint_root);
  } catch (const std::invalid_argument& e) {
    store_.workers.complete_job({job.id, job.attempt}, JobState::kFailed, e.what(), "", now_ms(),
                                /*retryable=*/false);
    spdlog::warn("coordinator: job {} cannot run: {}", job.id, e.what());
    return std::nullopt;
  }
}

std::optional<trainer_core::ReusableRunConfig> WorkerServiceImpl::reuse_offer(const JobRow& job) {
  // A run whose forks this job would have must hold their branch points, or they cannot start.
  for (const ReuseCandidate& c : store_.workers.reuse_candidates(job.id))
    if (keeps_checkpoints_at(options_.checkpoint_root, c.run.sweep_id, c.run.job_id,
                             job.pinned_steps))
      return c.offer;
  return std::nullopt;
}

Status WorkerServiceImpl::Heartbeat(ServerContext* ctx, const pb::HeartbeatRequest* req,
                                    pb::HeartbeatResponse* resp) {
  return serve(ctx, gate_, Action::kWorkerApi, worker_target(req->worker_id()),
               [&](const Caller& caller) -> Status {
                 if (const Decision d = admit_worker(caller, req->worker_id()); !d.allowed)
                   return refused(d);
                 if (req->leaving() && store_.workers.set_leaving(req->worker_id()))
                   changes_.notify(Change::kScheduling);  // its job poll ends now
                 std::vector<std::pair<JobRef, int64_t>> progress;
                 for (const auto& j : req->jobs())
                   progress.push_back({{j.job_id(), j.attempt()}, j.step()});
                 const HeartbeatResult r = store_.workers.heartbeat(req->worker_id(), progress,
                                                                    now_ms(), options_.lease_ms);
                 if (!r.known)
                   return Status(StatusCode::FAILED_PRECONDITION,
                                 worker_target(req->worker_id()) + " is not registered");
                 // Its last word: leaving with no job, it is gone (an idle provisioned worker's
                 // exit).
                 if (req->leaving() && req->jobs().empty())
                   store_.workers.worker_left(req->worker_id(), now_ms());
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
                 if (r.forks_ready) changes_.notify(Change::kScheduling);
                 return Status::OK;
               });
}

Status WorkerServiceImpl::ReportMetrics(ServerContext* ctx, const pb::ReportMetricsRequest* req,
                                        pb::ReportMetricsResponse* resp) {
  return serve(
      ctx, gate_, Action::kWorkerApi, job_target(req->job_id()),
      [&](const Caller& caller) -> Status {
        if (const Decision d = admit_job(caller, req->job_id()); !d.allowed) return refused(d);
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
        std::vector<NamedSeries> series = step_series(req->points());
        if (auto s = named_series(*req, series); !s.ok()) return s;
        const Fence f = store_.metrics.store_metrics({req->job_id(), req->attempt()}, series, evals,
                                                     req->resumed_from_step(), now_ms());
        if (f != Fence::kOk) return fence_status(f, req->job_id(), req->attempt());
        points_ingested_ += int64_t(req->points_size());
        resp->set_stored(int64_t(req->points_size()));
        if (!evals.empty()) try {  // early stopping judges a tuning run at its rungs' evaluations
            std::vector<int64_t> steps;
            for (const EvalRow& e : evals) steps.push_back(e.step);
            if (planner_.consider_stopping(req->job_id(), steps, now_ms()))
              spdlog::info("coordinator: job {} stopped early", req->job_id());
          } catch (const std::exception& e) {
            spdlog::warn("coordinator: job {}: early stopping not judged: {}", req->job_id(),
                         e.what());
          }
        if (!evals.empty()) judge_health(caller, req->job_id());  // health_spec.h
        changes_.notify(Change::kProgress);  // watchers see the step; no worker can acquire more
        return Status::OK;
      });
}

void WorkerServiceImpl::judge_health(const Caller& caller, int64_t job_id) {
  try {
    for (const HealthWatch::Acted& a : health_.consider(job_id, now_ms())) {
      gate_.record(caller, a.audit_action, job_target(job_id), a.what);
      spdlog::info("coordinator: job {}: {}", job_id, a.what);
      if (a.firing.rule.action == sweep_file::HealthAction::kRewind)
        changes_.notify(Change::kScheduling);  // its fork waits for a worker
    }
  } catch (const std::exception& e) {
    spdlog::warn("coordinator: job {}: health rules not judged: {}", job_id, e.what());
  }
}

Status WorkerServiceImpl::ShipLog(ServerContext* ctx, const pb::ShipLogRequest* req,
                                  pb::ShipLogResponse* resp) {
  return serve(ctx, gate_, Action::kWorkerApi, job_target(req->job_id()),
               [&](const Caller& caller) -> Status {
                 if (const Decision d = admit_job(caller, req->job_id()); !d.allowed)
                   return refused(d);
                 if (req->offset() < 0 || int64_t(req->data().size()) > LogStore::kMaxChunkBytes)
                   return Status(StatusCode::INVALID_ARGUMENT,
                                 "job " + std::to_string(req->job_id()) +
                                     ": a log chunk is at most " +
                                     std::to_string(LogStore::kMaxChunkBytes) +
                                     " bytes at a non-negative offset");
                 int64_t through = 0;
                 const Fence f = store_.logs.append({req->job_id(), req->attempt()}, req->offset(),
                                                    req->data(), &through);
                 if (f != Fence::kOk) return fence_status(f, req->job_id(), req->attempt());
                 resp->set_stored_through(through);
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
        const JobRef ref{req->job_id(), req->attempt()};
        const int64_t reused =
            *state == JobState::kSucceeded ? reused_from_job(req->summary_json()) : 0;
        const Fence f = reused > 0
                            ? store_.workers.complete_reused(ref, reused, now_ms())
                            : store_.workers.complete_job(ref, *state, req->message(),
                                                          req->summary_json(), now_ms(), retryable);
        if (f != Fence::kOk) return fence_status(f, req->job_id(), req->attempt());
        gate_.record(
            caller, "complete", job_target(req->job_id()),
            "attempt " + std::to_string(req->attempt()) + ": " + pb::JobState_Name(req->state()) +
                (req->message().empty() ? "" : " (" + req->message().substr(0, 200) + ")"));
        if (*state == JobState::kDiverged) judge_health(caller, req->job_id());  // `diverged`
        if (options_.crash_after_completions > 0 &&
            ++completions_ == options_.crash_after_completions)
          std::_Exit(137);  // the test's kill -9 between a completion and its planning
        // A tuned sweep's next jobs (a fixed sweep's jobs, role grid, have none to plan). Should
        // this fail or the coordinator die first, the open sweep is planned again by the
        // housekeeping loop and at start: a completion is never lost.
        if (const std::optional<JobRow> job = store_.sweeps.job(req->job_id());
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
