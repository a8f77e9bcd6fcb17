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

#include "trainer_core/backend/cuda/device_query.h"
#include "trainer_core/train/exit_codes.h"
#include "trainer_core/train/run_records.h"

namespace worker {

namespace pb = orchestrator::v1;
using nlohmann::json;
using namespace std::chrono_literals;

enum StopReason { kNone = 0, kCancel, kHandBack, kStale };

// A job's metric names, interned: points carry an index, each batch carries the whole table
// (indexes stay valid for the job's life here, spilled points included).
class MetricNames {
 public:
  // -1 for a name the service does not take (a fixed field's) and once the run has
  // kMaxMetricNames names: that value is dropped.
  int intern(const std::string& name) {
    if (trainer_core::is_fixed_field(name)) return -1;
    if (index_.size() >= trainer_core::kMaxMetricNames && !index_.count(name)) return -1;
    const auto [it, added] = index_.try_emplace(name, int(names_.size()));
    if (added) names_.push_back(name);
    return it->second;
  }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::map<std::string, int> index_;
  std::vector<std::string> names_;
};

struct RunningJob {
  int64_t job_id = 0;
  int attempt = 0;
  pid_t pid = -1;
  int read_fd = -1;
  std::string log_path;
  std::vector<int> devices;  // CUDA devices this job holds (its CUDA_VISIBLE_DEVICES)
  std::thread reader;
  std::mutex mu;                        // guards everything below
  std::vector<pb::MetricPoint> points;  // newer than every spilled point
  std::vector<pb::EvalPoint> evals;
  // Spilled points: length-prefixed MetricPoint records appended to spill_path; those before
  // spill_sent_offset have been stored by the coordinator.
  std::string spill_path;
  int64_t spilled = 0, spill_sent_offset = 0, spill_end = 0;
  int64_t resumed_from = -1;  // from the child's start line; sent with the first batch
  bool resume_sent = false;
  int64_t last_step = 0;
  std::optional<trainer_core::SummaryRecord>
      summary;               // the child's last record, when it got that far
  MetricNames metric_names;  // the names its points' NamedValues index, sent with every batch
  bool names_dropped = false;
  std::atomic<int> stop_reason{kNone};
  bool exited = false;
  int exit_status = 0;
};

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
  std::lock_guard lock(mu_);
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
    std::lock_guard lock(mu_);
    if (auto it = jobs_.find(r.job_id()); it != jobs_.end()) stop_job(*it->second, kStale);
  }
  spdlog::info("worker {}: registered ({} backend, {} slot(s))", options_.worker_id,
               options_.backend, options_.slots);
  return true;
}

int Daemon::free_slots() {
  std::lock_guard lock(mu_);
  return options_.slots - int(jobs_.size());
}

std::vector<int> Daemon::free_devices() {
  std::lock_guard lock(mu_);
  std::vector<bool> held(size_t(options_.gpus), false);
  for (const auto& [id, job] : jobs_)
    for (int d : job->devices) held[size_t(d)] = true;
  std::vector<int> free;
  for (int d = 0; d < options_.gpus; ++d)
    if (!held[size_t(d)]) free.push_back(d);
  return free;
}

void Daemon::start_job(const pb::Lease& lease) {
  // The coordinator may lease back a job this worker has just handed back (its process was
  // stopped from outside, as a cluster's time limit signals every process) before the report
  // loop has forgotten the earlier attempt: it completes the attempt, then forgets it. Wait for
  // that; an entry is never replaced, since its reader thread must be joined first.
  for (int waited_ms = 0;; waited_ms += 10) {
    {
      std::lock_guard lock(mu_);
      if (!jobs_.count(lease.job_id())) break;
    }
    if (waited_ms >= 10000)
      throw std::runtime_error("its previous attempt is still being completed here");
    std::this_thread::sleep_for(10ms);
  }
  auto job = std::make_unique<RunningJob>();
  job->job_id = lease.job_id();
  job->attempt = lease.attempt();
  const std::string stem = options_.work_dir + "/job-" + std::to_string(lease.job_id()) +
                           "-attempt-" + std::to_string(lease.attempt());
  json config = json::parse(lease.config_json());
  const int cores = int(std::thread::hardware_concurrency());
  config["threads"] =
      options_.threads_per_job > 0 ? options_.threads_per_job : std::max(1, cores / options_.slots);
  if (!(std::ofstream(stem + ".json") << config.dump(2)))
    throw std::runtime_error("cannot write the job's config " + stem +
                             ".json (disk full or not writable?)");
  job->log_path = stem + ".log";
  job->spill_path = stem + ".spill";
  // A GPU job sees only its own devices, renumbered 0..N-1 (its ranks use devices 0..N-1).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "CUDA_VISIBLE_DEVICES=", 21) != 0) env_strings.push_back(*e);
  if (config.value("backend", "cpu") == "cuda") {
    const std::vector<int> free = free_devices();
    const size_t wanted = size_t(std::max(1, lease.gpus()));
    if (free.size() < wanted)
      throw std::runtime_error("job needs " + std::to_string(wanted) + " GPU(s), " +
                               std::to_string(free.size()) + " free");
    job->devices.assign(free.begin(), free.begin() + long(wanted));
    std::string visible;
    for (int d : job->devices) visible += (visible.empty() ? "" : ",") + std::to_string(d);
    env_strings.push_back("CUDA_VISIBLE_DEVICES=" + visible);
  }
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  // A sweep may name its own training program (`command`): it runs as the job's child like the
  // built-in trainer, finds its config, record pipe and checkpoint directory in SWEEP_* variables
  // and speaks the run-record contract (docs/run-records.md) with the same exit codes.
  std::vector<std::string> program;
  if (config.contains("command")) {
    for (const auto& word : config["command"]) program.push_back(word.get<std::string>());
    env_strings.push_back("SWEEP_CONFIG=" + stem + ".json");
    env_strings.push_back("SWEEP_RECORDS_FD=" + std::to_string(fds[1]));
    env_strings.push_back("SWEEP_JOB_ID=" + std::to_string(lease.job_id()));
    env_strings.push_back("SWEEP_ATTEMPT=" + std::to_string(lease.attempt()));
    const json training = config.value("training", json::object());
    if (training.is_object() && training.value("checkpoint_dir", std::string()) != "")
      env_strings.push_back("SWEEP_CHECKPOINT_DIR=" +
                            training["checkpoint_dir"].get<std::string>());
  }
  std::vector<char*> child_env;
  for (auto& e : env_strings) child_env.push_back(e.data());
  child_env.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {  // child: exec ourselves in run-job mode
    close(fds[0]);
    FILE* log = std::fopen(job->log_path.c_str(), "w");
    if (log) {
      dup2(fileno(log), STDOUT_FILENO);
      dup2(fileno(log), STDERR_FILENO);
    }
    setpgid(0, 0);  // a terminal's Ctrl-C reaches the daemon, which decides for its children
    // The daemon ignores SIGPIPE, and ignored signals survive exec: restore it, so a job whose
    // daemon died (kill -9) ends at its next metrics line instead of training unobserved.
    std::signal(SIGPIPE, SIG_DFL);
    if (!program.empty()) {
      std::vector<char*> words;
      for (auto& w : program) words.push_back(w.data());
      words.push_back(nullptr);
      execvpe(words[0], words.data(), child_env.data());
      std::fprintf(stderr, "cannot run %s: %s\n", words[0], std::strerror(errno));
      _exit(127);
    }
    const std::string fd = std::to_string(fds[1]);
    const std::string cfg = stem + ".json";
    const char* argv[] = {options_.self_path.c_str(),
                          "run-job",
                          "--config",
                          cfg.c_str(),
                          "--metrics-fd",
                          fd.c_str(),
                          nullptr};
    execve(options_.self_path.c_str(), const_cast<char* const*>(argv), child_env.data());
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    throw std::runtime_error("fork failed");
  }
  job->pid = pid;
  job->read_fd = fds[0];
  RunningJob* raw = job.get();
  spdlog::info("worker {}: job {} attempt {} started ({}), pid {}", options_.worker_id,
               lease.job_id(), lease.attempt(), lease.label(), pid);
  std::lock_guard lock(mu_);
  jobs_[lease.job_id()] = std::move(job);
  raw->reader = std::thread([this, raw] { read_child(raw); });
}

void Daemon::read_child(RunningJob* job) {
  FILE* in = fdopen(job->read_fd, "r");
  char* line = nullptr;
  size_t cap = 0;
  while (getline(&line, &cap, in) > 0) {
    std::optional<trainer_core::RunRecord> record;
    try {
      record = trainer_core::parse_run_record(line);
    } catch (const trainer_core::RunRecordError& e) {
      spdlog::warn("worker {}: job {}: a run record is refused ({}): {:.200}", options_.worker_id,
                   job->job_id, e.what(), line);
      continue;
    }
    if (!record) continue;  // a record type of a later version
    std::lock_guard lock(job->mu);
    if (const auto* m = std::get_if<trainer_core::StepMetrics>(&*record)) {
      pb::MetricPoint p;
      p.set_step(m->step);
      p.set_train_loss(m->train_loss);
      p.set_lr(m->lr);
      p.set_grad_norm(m->grad_norm);
      p.set_tokens(double(m->tokens_seen));
      p.set_elapsed_s(m->elapsed_seconds);
      p.set_spike(m->loss_spike);
      for (const auto& v : m->metrics) {
        const int name = job->metric_names.intern(v.name);
        if (name < 0) {
          if (!job->names_dropped)
            spdlog::warn(
                "worker {}: job {}: metric \"{}\" dropped (a fixed field's name, or past {} "
                "names); "
                "further such values are dropped silently",
                options_.worker_id, job->job_id, v.name, trainer_core::kMaxMetricNames);
          job->names_dropped = true;
          continue;
        }
        auto* named = p.add_metrics();
        named->set_name(name);
        named->set_value(v.value);
      }
      job->last_step = p.step();
      job->points.push_back(std::move(p));
      if (job->points.size() > size_t(options_.max_buffered_points)) spill(*job);
    } else if (const auto* e = std::get_if<trainer_core::EvalMetrics>(&*record)) {
      pb::EvalPoint p;
      p.set_step(e->step);
      p.set_val_loss(e->val_loss);
      p.set_tokens(double(e->tokens_seen));
      p.set_elapsed_s(e->elapsed_seconds);
      job->evals.push_back(std::move(p));
    } else if (const auto* start = std::get_if<trainer_core::StartRecord>(&*record)) {
      job->resumed_from = start->start_step;
      job->last_step = job->resumed_from;
      if (job->resumed_from > 0)
        spdlog::info("worker {}: job {} attempt {} resumed at step {} from its checkpoint",
                     options_.worker_id, job->job_id, job->attempt, job->resumed_from);
    } else if (const auto* summary = std::get_if<trainer_core::SummaryRecord>(&*record)) {
      job->summary = *summary;
    }
  }
  free(line);
  fclose(in);
  int status = 0;
  waitpid(job->pid, &status, 0);
  std::lock_guard lock(job->mu);
  job->exit_status = status;
  job->exited = true;
}

void Daemon::stop_job(RunningJob& job, int reason) {
  int expected = kNone;
  job.stop_reason.compare_exchange_strong(expected, reason);
  // SIGTERM lets the trainer checkpoint; a stale job is not ours any more: kill it outright.
  kill(job.pid, reason == kStale ? SIGKILL : SIGTERM);
}

// Moves the oldest half of the in-memory points to the job's spill file (append-only, in order).
// Called with job.mu held.
void Daemon::spill(RunningJob& job) {
  const size_t n = job.points.size() / 2;
  std::ofstream out(job.spill_path, std::ios::binary | std::ios::app);
  std::string record;
  for (size_t i = 0; i < n; ++i) {
    job.points[i].SerializeToString(&record);
    const uint32_t size = uint32_t(record.size());
    out.write(reinterpret_cast<const char*>(&size), sizeof size);
    out.write(record.data(), std::streamsize(record.size()));
  }
  out.flush();
  if (!out) {  // cannot spill (disk full): keep them in memory rather than lose them
    spdlog::warn("worker {}: job {}: cannot spill metrics to {}; keeping them in memory",
                 options_.worker_id, job.job_id, job.spill_path);
    return;
  }
  job.spill_end = int64_t(std::filesystem::file_size(job.spill_path));
  job.spilled += int64_t(n);
  job.points.erase(job.points.begin(), job.points.begin() + std::ptrdiff_t(n));
  spdlog::info("worker {}: job {}: coordinator away, {} metric points spilled to {}",
               options_.worker_id, job.job_id, job.spilled, job.spill_path);
}

// Reads the next batch of spilled points into `req`; returns the file offset after them. Called
// with job.mu held.
int64_t Daemon::read_spill(RunningJob& job, pb::ReportMetricsRequest& req) {
  std::ifstream in(job.spill_path, std::ios::binary);
  in.seekg(job.spill_sent_offset);
  int64_t offset = job.spill_sent_offset;
  std::string record;
  while (offset < job.spill_end && req.points_size() < options_.max_batch_points) {
    uint32_t size = 0;
    if (!in.read(reinterpret_cast<char*>(&size), sizeof size)) break;
    record.resize(size);
    if (!in.read(record.data(), std::streamsize(size))) break;
    if (!req.add_points()->ParseFromString(record)) break;
    offset += int64_t(sizeof size) + int64_t(size);
  }
  return offset;
}

bool Daemon::flush(RunningJob& job) {
  while (true) {
    pb::ReportMetricsRequest req;
    int64_t spill_next = -1;  // >= 0: this batch comes from the spill file, ending at this offset
    {
      std::lock_guard lock(job.mu);
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
    std::lock_guard lock(job.mu);
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

bool Daemon::complete(RunningJob& job) {
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
      std::lock_guard lock(mu_);
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
        std::lock_guard lock(job->mu);
        exited = job->exited;
      }
      if (job->stop_reason != kStale) {
        if (!flush(*job)) {
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
      std::lock_guard lock(mu_);
      jobs_.erase(job->job_id);
    }
    backoff = ok ? 200ms : std::min(backoff * 2, std::chrono::milliseconds(5000));
    if (!ok) need_register_ = true;
    std::this_thread::sleep_for(backoff);
  }
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
    {
      std::lock_guard lock(mu_);
      for (auto& [id, job] : jobs_) {
        auto* p = req.add_jobs();
        p->set_job_id(job->job_id);
        p->set_attempt(job->attempt);
        std::lock_guard jl(job->mu);
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
    std::lock_guard lock(mu_);
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
  while (!stopping_) {
    const int free = free_slots();
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
    std::lock_guard lock(mu_);
    for (auto& [id, job] : jobs_) stop_job(*job, kHandBack);
  }
  reporter.join();
  heartbeat.join();
  return 0;
}

}  // namespace worker
