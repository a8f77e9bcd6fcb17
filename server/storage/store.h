// The coordinator's state in SQLite (WAL). Every method is one transaction; job-changing calls
// from workers are fenced by (job_id, attempt) inside that transaction.
//
// Threads: every public method takes the store's one mutex for its whole transaction, so one
// Store is shared by all gRPC and HTTP threads; rows are returned by value and stay valid after
// the lock is released. Store failures throw DbError (full() for a full disk or --max-db-mib).
// Lifetime: the coordinator's main() owns the one Store; the services and the HTTP server hold
// it by reference and must be stopped before it is destroyed.
//
// Row values: JobRow.state is a JobState (job_state.h), WorkerRow.state a WorkerState and a
// sweep's state is derived from its jobs (SweepRow::state(), sweep_worker_states.h); times are
// milliseconds since the Unix epoch (*_ms); a loss not yet reported is NaN.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/scheduling/scheduler.h"
#include "server/storage/allocations.h"
#include "server/storage/audit.h"
#include "server/storage/job_state.h"
#include "server/storage/series_store.h"
#include "server/storage/sqlite_db.h"
#include "server/storage/sweep_worker_states.h"
#include "sweep_file/sweep_spec.h"

namespace server {

struct SweepRow {
  int64_t id = 0;
  std::string name;
  int priority = 0;
  int max_concurrency = 0;
  std::vector<double> targets;
  std::string baseline;
  int64_t submitted_ms = 0;
  std::string owner;  // the user who submitted it; empty: before users existed (the admin's)
  std::optional<sweep_file::TuneSpec> tune;  // an adaptive sweep
  sweep_file::AnalysisSpec analysis;         // how the results choose each row's lr
  bool planning_open = false;                // its planner may still add jobs
  std::map<JobState, int> jobs_by_state;
  int total_jobs = 0;
  SweepState state() const;  // from jobs_by_state: never stored
};

struct JobRow {
  int64_t id = 0, sweep_id = 0;
  int index = 0;
  std::string label, ablation;
  int64_t seed = 0;
  std::string optimizer;
  int64_t batch_tokens = 0;
  std::string config_hash, config, backend;
  int gpus = 0;
  JobState state = JobState::kPending;
  int attempt = 0, failures = 0, max_attempts = 0;
  std::string worker_id;
  int64_t lease_expiry_ms = 0;
  bool cancel_requested = false;
  int64_t step = 0, max_steps = 0;
  double last_train_loss = 0, last_val_loss = 0;
  int spikes = 0;
  std::string message;
  sweep_file::JobRole role = sweep_file::JobRole::kGrid;
  std::string reason;  // why the planner added it; empty for jobs expanded at submit
  int stage = 0;       // a telescoping sweep's stage (tune_spec.h)
};

struct WorkerRow {
  std::string id, hostname, backend;
  int gpus = 0, slots = 0;
  std::string devices_json;
  WorkerState state = WorkerState::kActive;
  int64_t last_heartbeat_ms = 0;
  std::vector<int64_t> job_ids;
  std::string allocation;     // the allocation that started it (allocations.h); empty: by hand
  std::string registered_by;  // the user whose token registered it (access/users.h)
};

// What the provisioner plans from (server/provisioning/demand.h), read in one transaction: the
// queue of one backend, the jobs running per sweep (max_concurrency), the active workers of that
// backend with what they have free, and every open allocation.
struct LiveWorker {
  std::string id, allocation;
  WorkerCapacity free;
};
struct ProvisionSnapshot {
  std::vector<PendingJob> pending;
  std::map<int64_t, int> active;
  std::vector<LiveWorker> workers;
  std::vector<AllocationRow> open_allocations;
};

struct MetricRow {
  int64_t step = 0;
  double train_loss = 0, lr = 0, grad_norm = 0, tokens = 0, elapsed_s = 0;
  bool spike = false;
};
// The fixed fields of a training step, the coordinator's one table of them: the series each is
// stored in (the spike flag rides on the loss), its name (the run record's field, the export's
// metric value, the proto MetricPoint's field) and its MetricRow member. store_test checks the
// names against the run-record contract (trainer_core::is_fixed_field).
struct StepField {
  Metric metric;
  const char* name;
  double MetricRow::*member;
};
inline constexpr StepField kStepFields[] = {
    {Metric::kTrainLoss, "train_loss", &MetricRow::train_loss},
    {Metric::kLr, "lr", &MetricRow::lr},
    {Metric::kGradNorm, "grad_norm", &MetricRow::grad_norm},
    {Metric::kTokens, "tokens", &MetricRow::tokens},
    {Metric::kElapsedSeconds, "elapsed_s", &MetricRow::elapsed_s}};

// NaN: a time not recorded (elapsed_s of a replayed eval the store did not have; train_s from a
// worker older than it). Stored as NULL; a later NULL never replaces a recorded time.
constexpr double kUnknownSeconds = std::numeric_limits<double>::quiet_NaN();
struct EvalRow {
  int64_t step = 0;
  double val_loss = 0, tokens = 0;
  double elapsed_s = kUnknownSeconds;  // wall-clock since the run started
  double train_s = kUnknownSeconds;    // training time, evaluations excluded
};

struct JobRef {
  int64_t job_id = 0;
  int attempt = 0;
};

enum class Fence { kOk, kUnknownJob, kStale };

struct HeartbeatResult {
  std::vector<JobRef> cancel, stale;
  bool drain = false;
  bool known = true;  // false: the worker must register first
};

class Store {
 public:
  explicit Store(const std::string& path);
  // Caps the database file at about `bytes`; writes past it fail with DbError::full().
  void limit_size(int64_t bytes) {
    std::lock_guard lock(mu_);
    db_.limit_size(bytes);
  }

  int64_t create_sweep(const sweep_file::SweepPlan& plan, const std::string& spec_text,
                       int64_t now_ms, const std::string& owner = "");
  std::vector<SweepRow> list_sweeps(int limit, int64_t before_id);
  std::optional<SweepRow> sweep(int64_t id);
  std::vector<JobRow> jobs(int64_t sweep_id);
  // The tuning planner's writes (server/tuning/planner.h). add_planned_jobs appends jobs to a sweep
  // with the resources of its existing jobs and skips any whose plan_key the sweep already has;
  // returns how many it added. close_planning marks the sweep's planning done (idempotent).
  int add_planned_jobs(int64_t sweep_id, const std::vector<sweep_file::ExpandedJob>& jobs,
                       int64_t now_ms);
  void close_planning(int64_t sweep_id);
  // Early stopping: asks the worker of a running tuning run to stop it (as a cancel does); its
  // report then stores it as STOPPED with `reason`. False: not a running tuning run, or already
  // asked.
  bool request_stop(int64_t job_id, const std::string& reason, int64_t now_ms);
  std::vector<int64_t> sweeps_planning_open();
  std::optional<JobRow> job(int64_t job_id);
  int cancel_sweep(int64_t sweep_id, int64_t now_ms);
  int retry_failed(int64_t sweep_id, int64_t now_ms);

  // Workers.
  std::vector<JobRef> register_worker(const WorkerRow& w, const std::vector<JobRef>& running,
                                      int64_t now_ms, int64_t lease_ms);
  // The scheduler's pick (scheduler.h) among each sweep's first pending job; max_running_per_user:
  // 0 for no cap.
  std::optional<JobRow> acquire_job(const std::string& worker_id, const WorkerCapacity& capacity,
                                    int64_t now_ms, int64_t lease_ms, int max_running_per_user = 0);
  HeartbeatResult heartbeat(const std::string& worker_id,
                            const std::vector<std::pair<JobRef, int64_t>>& progress, int64_t now_ms,
                            int64_t lease_ms);
  Fence store_metrics(const JobRef& ref, const std::vector<MetricRow>& points,
                      const std::vector<EvalRow>& evals, int64_t resumed_from_step, int64_t now_ms,
                      const std::vector<NamedSeries>& named = {});
  // state: a terminal state, or kPending to hand the job back (std::invalid_argument else). A
  // FAILED job is retried (back to PENDING) while it has attempts left, unless `retryable` is
  // false (out of memory: the same config would fail the same way).
  Fence complete_job(const JobRef& ref, JobState state, const std::string& message,
                     const std::string& summary_json, int64_t now_ms, bool retryable = true);
  bool drain_worker(const std::string& worker_id);
  // A worker that says it is leaving and holds no job is LEFT (its allocation then ends); false
  // while it still holds a job.
  bool worker_left(const std::string& worker_id, int64_t now_ms);
  std::vector<WorkerRow> workers();
  std::optional<WorkerRow> worker(const std::string& id);

  // Housekeeping: leases past expiry go back to PENDING (or FAILED after max_attempts);
  // workers silent for lost_after_ms are marked lost. Returns jobs requeued or failed.
  int expire_leases(int64_t now_ms, int64_t lost_after_ms);
  // After a coordinator restart: give every running job a fresh lease so workers can re-register.
  void extend_leases(int64_t until_ms);

  // The audit trail (audit.h): append-only.
  void append_audit(const AuditRow& row);
  std::vector<AuditRow> audit(const AuditQuery& query);

  // Allocations (allocations.h), written by the provisioner alone. begin_allocation stores the row
  // as requested, names it (allocation_name_prefix() + id) and returns it; record_allocation
  // stores the engine's view (final states stamp ended_ms); allocations() lists the newest first.
  std::string allocation_name_prefix();
  AllocationRow begin_allocation(const AllocationRow& request, int64_t now_ms);
  void record_allocation(int64_t id, AllocationState state, const std::string& engine_id,
                         const std::string& engine_reason, int64_t now_ms);
  void withdraw_allocation(int64_t id, const std::string& why, int64_t now_ms);
  std::vector<AllocationRow> allocations(bool open_only, int limit = 200);
  ProvisionSnapshot provision_snapshot(const std::string& backend);

  // Curves and summaries.
  std::vector<MetricRow> metric_points(int64_t job_id);
  std::vector<EvalRow> eval_points(int64_t job_id);
  // Every job's evaluations in one sweep, by job id (jobs without any are absent).
  std::map<int64_t, std::vector<EvalRow>> sweep_eval_points(int64_t sweep_id);
  // The training curve in at most `buckets` equal step ranges (W&B-style min/max downsampling).
  std::vector<CurveBucket> downsampled_curve(int64_t job_id, int buckets);
  // Many curves in one read transaction.
  std::map<int64_t, std::vector<CurveBucket>> downsampled_curves(
      const std::vector<int64_t>& job_ids, int buckets);
  // A named metric of many jobs, downsampled the same way; nullopt when no job has the name.
  std::optional<std::map<int64_t, std::vector<CurveBucket>>> downsampled_metric(
      const std::vector<int64_t>& job_ids, const std::string& name, int buckets);
  // The named metrics a job has points of.
  std::vector<std::string> metric_names(int64_t job_id);
  // Every point of one named metric of a job (empty when it has none).
  std::vector<SeriesPoint> named_metric_points(int64_t job_id, const std::string& name);
  std::map<int64_t, std::string> summaries(int64_t sweep_id);
  std::map<JobState, int> job_counts_by_state();
  int64_t metric_point_count();

 private:
  std::vector<JobRow> query_jobs(const char* where_sql, int64_t arg);
  std::vector<AllocationRow> query_allocations(const char* where_sql, int limit);  // mu_ held
  // One metric of many jobs in one read transaction; call with mu_ held.
  std::map<int64_t, std::vector<CurveBucket>> downsample_many(const std::vector<int64_t>& job_ids,
                                                              MetricId metric, int buckets);
  Fence fence(const JobRef& ref);  // call inside a transaction
  std::mutex mu_;
  Database db_;
  std::unique_ptr<SeriesStore> series_;  // prepared after the migrations
};

}  // namespace server
