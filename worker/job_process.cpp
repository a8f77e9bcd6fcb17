// The job's child process: launched from a lease (start_job), its run records read into the
// job's buffers (read_child), and stopped on cancellation, hand-back or staleness (stop_job).
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
#include <nlohmann/json.hpp>

#include "daemon.h"
#include "running_job.h"
#include "trainer_core/backend/cuda/device_query.h"
#include "trainer_core/train/exit_codes.h"
#include "trainer_core/train/record_fields.h"

namespace worker {

namespace {

// A step record as the proto MetricPoint: every field the coordinator keeps (record_fields.h),
// set by its name, which the proto shares (tests/unit/record_fields_test.cpp checks it); the
// others (z-scores, tokens per second, replayed) stay with the worker's log.
pb::MetricPoint to_metric_point(const trainer_core::StepMetrics& m) {
  using google::protobuf::FieldDescriptor;
  // Each kept field with its proto field, looked up by name once.
  using Member = decltype(trainer_core::kStepFields[0].member);
  static const std::vector<std::pair<Member, const FieldDescriptor*>> kept = [] {
    std::vector<std::pair<Member, const FieldDescriptor*>> out;
    for (const auto& f : trainer_core::kStepFields)
      if (f.has(trainer_core::kKept))
        out.push_back({f.member, pb::MetricPoint::descriptor()->FindFieldByName(f.name)});
    return out;
  }();
  pb::MetricPoint p;
  const google::protobuf::Reflection* reflection = p.GetReflection();
  for (const auto& entry : kept) {
    // Not a structured binding: clang before 16 cannot capture one in a lambda.
    const FieldDescriptor* field = entry.second;
    std::visit(
        [&](auto pointer) {
          const auto value = m.*pointer;
          switch (field->cpp_type()) {
            case FieldDescriptor::CPPTYPE_DOUBLE:
              reflection->SetDouble(&p, field, double(value));
              break;
            case FieldDescriptor::CPPTYPE_INT64:
              reflection->SetInt64(&p, field, int64_t(value));
              break;
            default:  // CPPTYPE_BOOL: the test allows no other type
              reflection->SetBool(&p, field, bool(value));
          }
        },
        entry.first);
  }
  return p;
}

}  // namespace

using nlohmann::json;
using namespace std::chrono_literals;

void Daemon::start_job(const pb::Lease& lease) {
  // The coordinator may lease back a job this worker has just handed back (its process was
  // stopped from outside, as a cluster's time limit signals every process) before the report
  // loop has forgotten the earlier attempt: it completes the attempt, then forgets it. Wait for
  // that; an entry is never replaced, since its reader thread must be joined first.
  for (int waited_ms = 0;; waited_ms += 10) {
    {
      trainer_core::MutexLock lock(mu_);
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
  trainer_core::MutexLock lock(mu_);
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
    trainer_core::MutexLock lock(job->mu);
    if (const auto* m = std::get_if<trainer_core::StepMetrics>(&*record)) {
      pb::MetricPoint p = to_metric_point(*m);
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
      p.set_tokens(double(e->tokens));
      p.set_elapsed_s(e->elapsed_s);  // NaN on a replayed eval: the store keeps its own
      if (std::isfinite(e->train_s)) p.mutable_train_s()->set_value(e->train_s);
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
  trainer_core::MutexLock lock(job->mu);
  job->exit_status = status;
  job->exited = true;
}

void Daemon::stop_job(RunningJob& job, int reason) {
  int expected = kNone;
  job.stop_reason.compare_exchange_strong(expected, reason);
  // SIGTERM lets the trainer checkpoint; a stale job is not ours any more: kill it outright.
  kill(job.pid, reason == kStale ? SIGKILL : SIGTERM);
}

}  // namespace worker
