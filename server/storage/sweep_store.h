// Sweeps and their jobs: submission, the tuning planner's additions, forks by hand, cancel and
// retry, and the
// reads of the sweep pages and results. Every method is one transaction under the database's
// mutex (database.h); rows are returned by value.
// Lifetime: holds the CoordinatorDatabase by reference; main() keeps both alive (store.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/database.h"
#include "server/storage/job_rows.h"
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
  std::optional<sweep_file::TuneSpec> tune;         // an adaptive sweep
  sweep_file::AnalysisSpec analysis;                // how the results choose each row's lr
  std::optional<sweep_file::BudgetLadder> budgets;  // each row and seed at several budgets
  bool planning_open = false;                       // its planner may still add jobs
  bool reuse = false;  // its jobs may take a matching finished run's results (reuse_rows.h)
  std::map<JobState, int> jobs_by_state;
  int total_jobs = 0;
  SweepState state() const;  // from jobs_by_state: never stored
};

class SweepStore {
 public:
  explicit SweepStore(CoordinatorDatabase& database) : database_(database) {}

  int64_t create_sweep(const sweep_file::SweepPlan& plan, const std::string& spec_text,
                       int64_t now_ms, const std::string& owner = "");
  std::vector<SweepRow> list_sweeps(int limit, int64_t before_id);
  std::optional<SweepRow> sweep(int64_t id);
  std::vector<JobRow> jobs(int64_t sweep_id);
  std::optional<JobRow> job(int64_t job_id);
  std::map<JobState, int> job_counts_by_state();  // over every sweep (/metrics)

  // The tuning planner's writes (server/tuning/planner.h). add_planned_jobs appends jobs to a sweep
  // with the resources of its existing jobs and skips any whose plan_key the sweep already has;
  // returns how many it added. close_planning marks the sweep's planning done (idempotent).
  int add_planned_jobs(int64_t sweep_id, const std::vector<sweep_file::ExpandedJob>& jobs,
                       int64_t now_ms);
  void close_planning(int64_t sweep_id);
  // A fork by hand (`sweepctl fork`): appended to its parent's sweep with the resources of the
  // sweep's jobs, with its job_forks row; returns the new job. A parent that has meanwhile ended
  // without passing the branch step ends the fork at once with its reason.
  JobRow add_fork(int64_t parent_job_id, const sweep_file::ExpandedJob& fork, int64_t now_ms);
  std::vector<int64_t> sweeps_planning_open();
  // A sweep's health rules alone (empty: none, or no such sweep): read on every evaluation a run
  // reports, so it reads one column, not the sweep's job counts.
  std::vector<sweep_file::HealthRule> health_rules(int64_t sweep_id);
  // Early stopping and health rules: asks the worker of a running run to stop it (as a cancel
  // does); its report then stores it as STOPPED with `reason`. kTuningRuns (early stopping): only
  // a tuning or extension run. False: not such a running run, or already asked.
  enum class StopScope { kTuningRuns, kAnyRun };
  bool request_stop(int64_t job_id, const std::string& reason, int64_t now_ms,
                    StopScope scope = StopScope::kTuningRuns);

  int cancel_sweep(int64_t sweep_id, int64_t now_ms);
  int retry_failed(int64_t sweep_id, int64_t now_ms);

 private:
  CoordinatorDatabase& database_;
};

}  // namespace server
