// A job's row as the stores read it, and the fence on a worker's calls: a report or completion
// for (job_id, attempt) changes the job only while that attempt is its current, active one.
// Shared by sweep_store.h, worker_store.h and metric_store.h; the helpers run inside the
// caller's lock and transaction (database.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/job_state.h"
#include "server/storage/sqlite_db.h"
#include "sweep_file/sweep_spec.h"

namespace server {

// A fork's lineage (migrations/013): its parent job and the branch point.
struct JobFork {
  int64_t parent_job_id = 0;
  sweep_file::ForkPlan plan;  // parent_index: the parent's position in the sweep
};

// A job and its sweep: where its checkpoints lie (job_config.h's job_checkpoint_dir).
struct RunRef {
  int64_t job_id = 0, sweep_id = 0;
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
  double last_train_loss = 0, last_val_loss = 0;  // NaN: not reported yet
  int spikes = 0;
  std::string message;
  sweep_file::JobRole role = sweep_file::JobRole::kGrid;
  std::string reason;                 // why the planner added it; empty for jobs expanded at submit
  int stage = 0;                      // a telescoping sweep's stage (tune_spec.h)
  std::optional<JobFork> fork;        // a fork: where it starts
  std::vector<int64_t> pinned_steps;  // its forks' branch steps: checkpoints it keeps
  bool sweep_reuse = false;           // its sweep asked for reuse of finished runs
  std::optional<RunRef> reused;       // the finished run it took the results of (migrations/014)
  // Whose checkpoint directory holds its checkpoints: the run it reused, else its own.
  RunRef checkpoint_owner() const { return reused ? *reused : RunRef{id, sweep_id}; }
  int64_t budget_tokens() const { return max_steps * batch_tokens; }  // its whole run's
};

struct JobRef {
  int64_t job_id = 0;
  int attempt = 0;
};

enum class Fence { kOk, kUnknownJob, kStale };

// The jobs `WHERE <where_sql>` with ?1 bound to `arg`.
std::vector<JobRow> query_jobs(Database& db, const char* where_sql, int64_t arg);
// Whether a worker's call for `ref` may change its job.
Fence fence(Database& db, const JobRef& ref);

}  // namespace server
