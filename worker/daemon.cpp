#include "daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "running_job.h"
#include "trainer_core/backend/cuda/device_query.h"
#include "trainer_core/train/exit_codes.h"
#include "trainer_core/train/run_records.h"

namespace worker {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string log_tail(const std::string& path, size_t max_bytes = 600) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

bool unavailable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

}  // namespace

Daemon::Daemon(DaemonOptions options) : options_(std::move(options)) {
  channel_ = orchestrator_client::make_channel(options_.coordinator);
  stub_ = pb::WorkerService::NewStub(channel_);
  std::filesystem::create_directories(options_.work_dir);
}

Daemon::~Daemon() {
  for (auto& [id, job] : jobs_)
    if (job->reader.joinable()) job->reader.join();
}

std::vector<pb::JobRef> Daemon::running_refs() {
  trainer_core::MutexLock lock(mu_);
  std::vector<pb::JobRef> refs;
  for (auto& [id, job] : jobs_) {
    pb::JobRef r;
    r.set_job_id(job->job_id);
    r.set_attempt(job->attempt);
    refs.push_back(r);
  }
  return refs;
}

bool Daemon::register_worker() {
  pb::RegisterWorkerRequest req;
  req.set_worker_id(options_.worker_id);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  req.set_hostname(host);
  req.set_backend(options_.backend);
  req.set_slots(options_.slots);
  req.set_allocation(options_.allocation);
  if (options_.backend == "cuda") {
    for (const auto& d : trainer_core::list_cuda_devices()) {
      auto* dev = req.add_devices();
      dev->set_kind("cuda");
      dev->set_name(d.name);
      dev->set_memory_bytes(int64_t(d.total_memory_bytes));
    }
  } else {
    auto* dev = req.add_devices();
    dev->set_kind("cpu");
    dev->set_name(std::to_string(std::thread::hardware_concurrency()) + " cores");
    dev->set_memory_bytes(int64_t(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE));
  }
  for (const auto& r : running_refs()) *req.add_running() = r;
  pb::RegisterWorkerResponse resp;
  auto ctx = orchestrator_client::make_context(options_.coordinator, 5s);
  const grpc::Status s = stub_->RegisterWorker(ctx.get(), req, &resp);
  if (!s.ok()) {
    if (!unavailable(s))
      spdlog::error("worker {}: register refused: {}", options_.worker_id, s.error_message());
    return false;
  }
  heartbeat_ms_ = std::max(100, resp.heartbeat_interval_ms());
  for (const auto& r : resp.rejected()) {
    trainer_core::MutexLock lock(mu_);
    if (auto it = jobs_.find(r.job_id()); it != jobs_.end()) stop_job(*it->second, kStale);
  }
  spdlog::info("worker {}: registered ({} backend, {} slot(s))", options_.worker_id,
               options_.backend, options_.slots);
  return true;
}

int Daemon::free_slots() {
  trainer_core::MutexLock lock(mu_);
  return options_.slots - int(jobs_.size());
}

std::vector<int> Daemon::free_devices() {
  trainer_core::MutexLock lock(mu_);
  std::vector<bool> held(size_t(options_.gpus), false);
  for (const auto& [id, job] : jobs_)
    for (int d : job->devices) held[size_t(d)] = true;
  std::vector<int> free;
  for (int d = 0; d < options_.gpus; ++d)
    if (!held[size_t(d)]) free.push_back(d);
  return free;
}

bool Daemon::flush(RunningJob& job) {
  while (true) {
    pb::ReportMetricsRequest req;
    int64_t spill_next = -1;  // >= 0: this batch comes from the spill file, ending at this offset
    {
      trainer_core::MutexLock lock(job.mu);
      const bool spill_pending = job.spill_sent_offset < job.spill_end;
      if (!spill_pending && job.points.empty() && job.evals.empty() &&
          (job.resume_sent || job.resumed_from < 0))
        return true;
      req.set_job_id(job.job_id);
      req.set_attempt(job.attempt);
      req.set_resumed_from_step(job.resume_sent ? -1 : job.resumed_from);
      for (const std::string& name : job.metric_names.names()) req.add_metric_names(name);
      if (spill_pending) {
        spill_next = read_spill(job, req);  // the oldest points go first
        if (req.points_size() == 0) {       // an unreadable spill file: report it, never loop on it
          spdlog::error("worker {}: job {}: cannot read spilled metrics from {} at offset {}",
                        options_.worker_id, job.job_id, job.spill_path, job.spill_sent_offset);
          job.spill_sent_offset = job.spill_end;
          continue;
        }
      } else {
        const size_t n = std::min(job.points.size(), size_t(options_.max_batch_points));
        for (size_t i = 0; i < n; ++i) *req.add_points() = job.points[i];
        for (const auto& e : job.evals) *req.add_evals() = e;
      }
    }
    pb::ReportMetricsResponse resp;
    auto ctx = orchestrator_client::make_context(options_.coordinator, 10s);
    const grpc::Status s = stub_->ReportMetrics(ctx.get(), req, &resp);
    const bool stale = s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
                       s.error_code() == grpc::StatusCode::NOT_FOUND;
    if (!s.ok() && !stale) {
      // Unreachable, or failing (a full disk): keep everything buffered and retry with backoff.
      if (!unavailable(s))
        spdlog::warn("worker {}: reporting job {}: {}", options_.worker_id, job.job_id,
                     orchestrator_client::describe(s, options_.coordinator));
      return false;
    }
    trainer_core::MutexLock lock(job.mu);
    if (stale) {
      // FAILED_PRECONDITION: this attempt is no longer current. Nothing we hold may be written.
      spdlog::warn("worker {}: job {} attempt {}: {}", options_.worker_id, job.job_id, job.attempt,
                   s.error_message());
      job.points.clear();
      job.evals.clear();
      std::filesystem::remove(job.spill_path);
      job.spill_sent_offset = job.spill_end = 0;
      if (job.stop_reason == kNone) {
        job.stop_reason = kStale;
        kill(job.pid, SIGKILL);
      }
      return true;
    }
    job.resume_sent = true;
    if (spill_next >= 0) {
      job.spill_sent_offset = spill_next;
      if (job.spill_sent_offset == job.spill_end) {  // all stored: start the file afresh
        std::filesystem::remove(job.spill_path);
        job.spill_sent_offset = job.spill_end = 0;
      }
      continue;
    }
    job.points.erase(job.points.begin(), job.points.begin() + req.points_size());
    job.evals.erase(job.evals.begin(), job.evals.begin() + req.evals_size());
  }
}

// A job this worker could not start goes back to the queue at once (not a failure of the job),
// instead of waiting out its lease.
void Daemon::hand_back_unstarted(const pb::Lease& lease, const std::string& reason) {
  pb::CompleteJobRequest req;
  req.set_job_id(lease.job_id());
  req.set_attempt(lease.attempt());
  req.set_state(pb::PENDING);
  req.set_message("worker " + options_.worker_id + " could not start it: " + reason);
  pb::CompleteJobResponse resp;
  auto ctx = orchestrator_client::make_context(options_.coordinator, 10s);
  const grpc::Status s = stub_->CompleteJob(ctx.get(), req, &resp);
  if (!s.ok())
    spdlog::warn("worker {}: handing back job {}: {} (its lease will expire)", options_.worker_id,
                 lease.job_id(), s.error_message());
}

pb::CompleteJobRequest Daemon::completion_request(RunningJob& job) {
  pb::CompleteJobRequest req;
  req.set_job_id(job.job_id);
  req.set_attempt(job.attempt);
  const int status = job.exit_status;
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (job.summary)
    req.set_summary_json(job.summary->fields.dump(-1, ' ', false, json::error_handler_t::replace));
  if (code == trainer_core::kExitSucceeded) {
    req.set_state(pb::SUCCEEDED);
  } else if (code == trainer_core::kExitOutOfMemory) {
    req.set_state(pb::FAILED);
    req.set_failure(pb::FAILURE_OUT_OF_MEMORY);
    req.set_message("out of memory, not retried (the same config would fail again): " +
                    log_tail(job.log_path));
  } else if (code == trainer_core::kExitDiverged) {
    req.set_state(pb::DIVERGED);
    req.set_message(job.summary && !job.summary->message.empty() ? job.summary->message
                                                                 : "diverged");
  } else if (code == trainer_core::kExitStopped && job.stop_reason == kCancel) {
    req.set_state(pb::CANCELLED);
    req.set_message("cancelled at step " + std::to_string(job.last_step));
  } else if (code == trainer_core::kExitStopped) {
    req.set_state(pb::PENDING);
    req.set_message("handed back by worker " + options_.worker_id + " at step " +
                    std::to_string(job.last_step));
  } else {
    req.set_state(pb::FAILED);
    const std::string how = WIFSIGNALED(status)
                                ? "killed by signal " + std::to_string(WTERMSIG(status))
                                : "exited with code " + std::to_string(code);
    req.set_message("job process " + how + ": " + log_tail(job.log_path));
  }
  return req;
}

bool Daemon::complete(RunningJob& job) {
  pb::CompleteJobRequest req;
  {
    trainer_core::MutexLock lock(job.mu);
    req = completion_request(job);
  }
  pb::CompleteJobResponse resp;
  auto ctx = orchestrator_client::make_context(options_.coordinator, 10s);
  const grpc::Status s = stub_->CompleteJob(ctx.get(), req, &resp);
  if (unavailable(s)) return false;
  if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
    // The coordinator cannot store the result now (a full disk): keep it and retry, as for the
    // metrics; dropping it would leave the job to its lease and a second run of the same work.
    spdlog::warn("worker {}: completing job {}: {} (kept, retrying)", options_.worker_id,
                 job.job_id, s.error_message());
    return false;
  }
  if (!s.ok())
    spdlog::warn("worker {}: completing job {}: {}", options_.worker_id, job.job_id,
                 s.error_message());
  else
    spdlog::info("worker {}: job {} attempt {} ended {}{}{}", options_.worker_id, job.job_id,
                 job.attempt, pb::JobState_Name(req.state()), req.message().empty() ? "" : ": ",
                 req.message());
  return true;
}

void Daemon::report_loop() {
  auto backoff = 200ms;
  std::optional<std::chrono::steady_clock::time_point> stop_seen;
  while (true) {
    std::vector<RunningJob*> jobs;
    {
      trainer_core::MutexLock lock(mu_);
      for (auto& [id, job] : jobs_) jobs.push_back(job.get());
      if (jobs.empty() && stopping_) return;
    }
    if (stopping_ && !stop_seen) stop_seen = std::chrono::steady_clock::now();
    if (stop_seen && std::chrono::steady_clock::now() - *stop_seen > 60s) {
      spdlog::error(
          "worker {}: coordinator unreachable for 60 s while shutting down; {} job(s) will be "
          "requeued when their leases expire",
          options_.worker_id, jobs.size());
      return;
    }
    bool ok = true;
    for (RunningJob* job : jobs) {
      bool exited;
      {
        trainer_core::MutexLock lock(job->mu);
        exited = job->exited;
      }
      if (job->stop_reason != kStale) {
        if (!flush(*job) || !ship_log(*job, exited)) {
          ok = false;
          break;
        }
      }
      if (!exited) continue;
      // flush() may have found the attempt stale: then there is nothing to complete.
      if (job->stop_reason != kStale && !complete(*job)) {
        ok = false;
        break;
      }
      // Finished (or stale and dead): forget it. A finished job's spill file is stored and gone; a
      // stale one's may have grown after it was dropped (its reader spills what the child still
      // wrote before it died), and those points are not this worker's to send.
      if (job->reader.joinable()) job->reader.join();
      std::filesystem::remove(job->spill_path);
      trainer_core::MutexLock lock(mu_);
      jobs_.erase(job->job_id);
    }
    backoff = ok ? 200ms : std::min(backoff * 2, std::chrono::milliseconds(5000));
    if (!ok) need_register_ = true;
    std::this_thread::sleep_for(backoff);
  }
}

bool Daemon::ship_log(RunningJob& job, bool to_end) {
  constexpr int64_t kChunk = 64 * 1024;
  constexpr int64_t kEveryMs = 1000;  // a running job's log goes out about once a second
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  if (!to_end && now - job.log_shipped_at_ms < kEveryMs) return true;
  std::ifstream in(job.log_path, std::ios::binary);
  if (!in) return true;  // not started yet, or gone: nothing to ship
  for (;;) {
    std::string chunk(size_t(kChunk), '\0');
    in.clear();
    in.seekg(job.log_shipped);
    in.read(chunk.data(), kChunk);
    chunk.resize(size_t(in.gcount()));
    if (chunk.empty()) break;
    pb::ShipLogRequest req;
    req.set_job_id(job.job_id);
    req.set_attempt(job.attempt);
    req.set_offset(job.log_shipped);
    req.set_data(chunk);
    pb::ShipLogResponse resp;
    auto ctx = orchestrator_client::make_context(options_.coordinator, 10s);
    const grpc::Status s = stub_->ShipLog(ctx.get(), req, &resp);
    if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
        s.error_code() == grpc::StatusCode::NOT_FOUND)
      break;  // no longer this worker's attempt: its log is not ours to send
    if (!s.ok()) {
      if (!unavailable(s))
        spdlog::warn("worker {}: shipping job {}'s log: {}", options_.worker_id, job.job_id,
                     orchestrator_client::describe(s, options_.coordinator));
      return false;
    }
    // The coordinator's length: past this chunk normally; elsewhere after a gap or a restore.
    job.log_shipped = resp.stored_through();
    if (!to_end || int64_t(chunk.size()) < kChunk) break;
  }
  job.log_shipped_at_ms = now;
  return true;
}

void Daemon::heartbeat_loop() {
  while (!(stopping_ && free_slots() == options_.slots)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(heartbeat_ms_.load()));
    if (need_register_) {
      if (register_worker()) need_register_ = false;
      continue;
    }
    pb::HeartbeatRequest req;
    req.set_worker_id(options_.worker_id);
    req.set_leaving(stopping_);  // shutting down: no more leases, and the job poll ends now
    {
      trainer_core::MutexLock lock(mu_);
      for (auto& [id, job] : jobs_) {
        auto* p = req.add_jobs();
        p->set_job_id(job->job_id);
        p->set_attempt(job->attempt);
        trainer_core::MutexLock jl(job->mu);
        p->set_step(job->last_step);
      }
    }
    pb::HeartbeatResponse resp;
    auto ctx = orchestrator_client::make_context(options_.coordinator, 5s);
    const grpc::Status s = stub_->Heartbeat(ctx.get(), req, &resp);
    if (!s.ok()) {
      if (!unavailable(s))
        spdlog::warn("worker {}: heartbeat: {}", options_.worker_id, s.error_message());
      need_register_ = true;  // a restarted or forgetful coordinator: register again, keep jobs
      continue;
    }
    if (resp.drain() && !draining_)
      spdlog::info("worker {}: draining: no new jobs", options_.worker_id);
    draining_ = resp.drain();
    trainer_core::MutexLock lock(mu_);
    for (const auto& c : resp.cancel())
      if (auto it = jobs_.find(c.job_id()); it != jobs_.end()) stop_job(*it->second, kCancel);
    for (const auto& c : resp.stale())
      if (auto it = jobs_.find(c.job_id()); it != jobs_.end() && it->second->attempt == c.attempt())
        stop_job(*it->second, kStale);
  }
}

int Daemon::run() {
  while (!stopping_ && !register_worker()) std::this_thread::sleep_for(1s);
  need_register_ = false;
  std::thread heartbeat([this] { heartbeat_loop(); });
  std::thread reporter([this] { report_loop(); });
  auto last_busy = std::chrono::steady_clock::now();
  while (!stopping_) {
    const int free = free_slots();
    if (free < options_.slots) last_busy = std::chrono::steady_clock::now();
    if (options_.idle_exit_s > 0 && free == options_.slots &&
        std::chrono::steady_clock::now() - last_busy >=
            std::chrono::seconds(options_.idle_exit_s)) {
      spdlog::info("worker {}: no job for {} s (--idle-exit-s): leaving", options_.worker_id,
                   options_.idle_exit_s);
      stopping_ = true;
      break;
    }
    if (free <= 0 || draining_ || need_register_) {
      std::this_thread::sleep_for(200ms);
      continue;
    }
    pb::AcquireJobRequest req;
    req.set_worker_id(options_.worker_id);
    req.set_free_slots(free);
    req.set_free_gpus(int(free_devices().size()));
    req.set_wait_ms(2000);
    pb::AcquireJobResponse resp;
    auto ctx = orchestrator_client::make_context(options_.coordinator, 7s);
    const grpc::Status s = stub_->AcquireJob(ctx.get(), req, &resp);
    if (!s.ok()) {
      if (!unavailable(s))
        spdlog::warn("worker {}: acquire: {}", options_.worker_id, s.error_message());
      need_register_ = true;
      std::this_thread::sleep_for(500ms);
      continue;
    }
    if (resp.has_job() && stopping_) {
      hand_back_unstarted(resp.lease(), "the worker is shutting down");
    } else if (resp.has_job()) {
      try {
        start_job(resp.lease());
      } catch (const std::exception& e) {
        spdlog::error("worker {}: cannot start job {}: {}", options_.worker_id,
                      resp.lease().job_id(), e.what());
        hand_back_unstarted(resp.lease(), e.what());
      }
    }
  }
  // Shutting down: every job checkpoints and is handed back (or finishes its completion).
  spdlog::info("worker {}: shutting down, handing back {} job(s)", options_.worker_id,
               options_.slots - free_slots());
  {
    trainer_core::MutexLock lock(mu_);
    for (auto& [id, job] : jobs_) stop_job(*job, kHandBack);
  }
  reporter.join();
  heartbeat.join();
  say_leaving();
  return 0;
}

void Daemon::say_leaving() {
  if (free_slots() != options_.slots) return;  // jobs it could not hand back: their leases tell
  pb::HeartbeatRequest req;
  req.set_worker_id(options_.worker_id);
  req.set_leaving(true);
  pb::HeartbeatResponse resp;
  auto ctx = orchestrator_client::make_context(options_.coordinator, 5s);
  const grpc::Status s = stub_->Heartbeat(ctx.get(), req, &resp);
  if (!s.ok())
    spdlog::warn("worker {}: could not say it leaves ({}): the coordinator will mark it lost",
                 options_.worker_id, s.error_message());
}

}  // namespace worker
