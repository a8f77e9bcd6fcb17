// The tuning planner: the next jobs of an adaptive sweep (sweep_file/tune_spec.h), from the
// results of its finished ones.
//
// Per row (results/rows.h: everything the sweep varies but the tuned values), once every tuning
// run of the row is final:
//   1. the row's best point (lr, and weight decay when tuned) by the selection rule over its
//      tuning runs (docs/statistics.md);
//   2. best at an edge (no tried neighbour on some side of a tuned axis: rows.h, axis_neighbours),
//      extensions left: one run per tuning seed at the next value beyond each open side (the best
//      times or divided by the stage's step, sweep_file::axis_step); when no tuning run of the
//      row succeeded and its smallest lr diverged, the next value below it;
//   3. otherwise (interior, or out of extensions), in a telescoping sweep before its last width:
//      the row's next stage, at the next width on a grid centred on this choice (one run per
//      value and tuning seed; sweep_file::stage_points), bracketed in turn by steps 1-3;
//   4. otherwise: the confirmation seeds at the chosen point, each seed without a run there yet.
// A row with a cancelled run gets nothing more (someone stopped it), nor one whose tuning runs
// all failed. The sweep's planning is done when no row waits for a run and nothing was added.
//
// Planning is a pure function of the stored jobs and summaries: running it twice, or after a
// coordinator restart at any moment, adds nothing twice (every planned job has a key unique in
// its sweep, Store::add_planned_jobs) and loses nothing (open sweeps are planned at start).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "server/storage/metric_store.h"
#include "server/storage/sweep_store.h"
#include "trainer_core/util/thread_annotations.h"

namespace server {

struct TuningDecision {
  std::vector<sweep_file::ExpandedJob> add;  // new jobs, each with its reason and plan_key
  bool done = false;                         // nothing left to plan, whatever finishes next
};

// sweep.tune must be set. `jobs` are every job of the sweep, `summaries` their run summaries.
TuningDecision plan_tuning(const SweepRow& sweep, const std::vector<JobRow>& jobs,
                           const std::map<int64_t, std::string>& summaries);

// Reads a sweep, plans and writes the result. One planning at a time per coordinator (a mutex);
// the plan keys keep it exact even without. Threads: plan() and consider_stopping() run on gRPC
// handler threads (after a completion, after an evaluation), plan_open_sweeps() on main()'s
// housekeeping thread. Lifetime: main() owns it and the stores it holds by reference.
class TuningPlanner {
 public:
  TuningPlanner(SweepStore& sweeps, MetricStore& metrics) : sweeps_(sweeps), metrics_(metrics) {}
  // Returns the jobs added (0 for a sweep that is not tuned or whose planning is closed).
  int plan(int64_t sweep_id, int64_t now_ms) EXCLUDES(mu_);
  // Every sweep whose planning is open: at start, and as the housekeeping loop's safety net.
  int plan_open_sweeps(int64_t now_ms) EXCLUDES(mu_);
  // Whether a planning threw (a full disk, say) since the last plan_open_sweeps that did not.
  bool needs_retry() const { return needs_retry_; }
  // Early stopping (early_stop.h) after a job reported evaluations at `eval_steps`: it, or the
  // runs of its row that waited for it at a rung, may be asked to stop. True when the reporting
  // job was. Does nothing for sweeps without tune.early_stop.
  bool consider_stopping(int64_t job_id, const std::vector<int64_t>& eval_steps, int64_t now_ms);

 private:
  int plan_locked(int64_t sweep_id, int64_t now_ms) REQUIRES(mu_);
  SweepStore& sweeps_;
  MetricStore& metrics_;
  trainer_core::Mutex mu_;  // one planning at a time
  std::atomic<bool> needs_retry_{false};
};

}  // namespace server
