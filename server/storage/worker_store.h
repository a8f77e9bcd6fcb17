// Workers and their leases: registration, the scheduler's lease of a job, heartbeats,
// completions, drain and leave, and the housekeeping of expired leases. Job-changing calls from
// workers are fenced by (job_id, attempt) inside their transaction (job_rows.h). Every method is
// one transaction under the database's mutex (database.h).
// Lifetime: holds the CoordinatorDatabase by reference; main() keeps both alive (store.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/scheduling/scheduler.h"
#include "server/storage/database.h"
#include "server/storage/job_rows.h"
#include "server/storage/reuse_rows.h"
#include "server/storage/sweep_worker_states.h"

namespace server {

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

struct HeartbeatResult {
  std::vector<JobRef> cancel, stale;
  bool drain = false;
  bool known = true;         // false: the worker must register first
  bool forks_ready = false;  // a job passed the branch step of a waiting fork: poll for it
};

class WorkerStore {
 public:
  explicit WorkerStore(CoordinatorDatabase& database) : database_(database) {}

  // Returns the jobs it says it runs that are no longer its own (it must stop them).
  std::vector<JobRef> register_worker(const WorkerRow& w, const std::vector<JobRef>& running,
                                      int64_t now_ms, int64_t lease_ms);
  // The scheduler's pick (scheduler.h) among each sweep's first pending job; max_running_per_user:
  // 0 for no cap.
  std::optional<JobRow> acquire_job(const std::string& worker_id, const WorkerCapacity& capacity,
                                    int64_t now_ms, int64_t lease_ms, int max_running_per_user = 0);
  HeartbeatResult heartbeat(const std::string& worker_id,
                            const std::vector<std::pair<JobRef, int64_t>>& progress, int64_t now_ms,
                            int64_t lease_ms);
  // state: a terminal state, or kPending to hand the job back (std::invalid_argument else). A
  // FAILED job is retried (back to PENDING) while it has attempts left, unless `retryable` is
  // false (out of memory: the same config would fail the same way).
  Fence complete_job(const JobRef& ref, JobState state, const std::string& message,
                     const std::string& summary_json, int64_t now_ms, bool retryable = true);
  // Reuse of finished runs (reuse_rows.h): the runs a leased job may be offered, newest first;
  // and its worker's report that the trainer took `source`'s results instead of training. A
  // source that is not among the job's candidates fails the job for good, naming it.
  std::vector<ReuseCandidate> reuse_candidates(int64_t job_id);
  Fence complete_reused(const JobRef& ref, int64_t source, int64_t now_ms);
  bool drain_worker(const std::string& worker_id);
  // A worker that says it is leaving (shutting down, or idle and exiting) is leased nothing
  // until it registers again; kept in the table, so across a coordinator restart too. True when
  // it was not leaving before.
  bool set_leaving(const std::string& worker_id);
  bool is_leaving(const std::string& worker_id);
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

 private:
  CoordinatorDatabase& database_;
};

}  // namespace server
