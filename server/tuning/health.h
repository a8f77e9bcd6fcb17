// Health rules (sweep_file/health_spec.h): whether a run's stored curves make one of its sweep's
// rules hold, and what the coordinator does then. Judged each time the run reports evaluations
// (server/api/worker_service.cpp; evaluations bound how often the whole curve is read) and, for
// `diverged`, when it ends DIVERGED; from what the store holds, so a rule holds across worker
// and coordinator restarts; a run is asked to stop once (its stop reason is kept).
//
// Rewind: the run is stopped (a diverged one has ended already) and forked, role rewind, from
// the last checkpoint it kept at or before the step where its trouble began (RunHealth's
// trouble steps below), with optimizer.lr (and a Muon run's adamw_lr) times lr_scale; the fork
// is labelled <label>/rewind<k>@<tokens>, carries the rule as its reason, and is judged by the
// same rules on its own steps. A run under a rewind rule keeps every checkpoint of its cadence
// (rewind_points; job_config.h). A lineage rewound `times` times already, or a run with no kept
// checkpoint before its trouble, is stopped instead, and the event says why.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/event_store.h"
#include "server/storage/metric_store.h"
#include "server/storage/sweep_store.h"

namespace server {

// What a run's rules read, from the store. For a rewound run only its own steps (after its
// branch step): what went wrong before is its parent's.
struct RunHealth {
  bool diverged = false;              // it ended DIVERGED: only `diverged` rules are judged
  int64_t last_step = 0;              // the last step it reported
  std::vector<int64_t> spike_starts;  // the first step of each loss-spike event, ascending
  std::vector<EvalRow> evals;         // in step order
  std::vector<double> row_paces;      // pace_of() of the other runs of its row that have one
};

// Tokens per second of training between a run's last two evaluations that were timed
// (EvalRow::train_s), so start-up and evaluations are not counted; nullopt before two.
std::optional<double> pace_of(const std::vector<EvalRow>& evals);

struct HealthFiring {
  size_t rule_index = 0;  // its place in the sweep's rules
  sweep_file::HealthRule rule;
  std::string reason;  // "health rule loss_spikes_over 3: stop: 4 loss-spike events"
  // The last step before the trouble began (a rewind starts at a kept step at or before it):
  // the step before the loss-spike event that made the count exceed N; the step of the best
  // evaluation; the step before the last one reported, for a diverged run. 0 for a slow run.
  int64_t trouble_step = 0;
};

// Every one of `rules` that holds for `run`, in the rules' order.
//   loss_spikes_over N: more than N events.
//   no_val_improvement_evals N: the run's best val loss was last bettered (by more than
//     sweep_file::kValImprovementTolerance of it) N or more evaluations ago; the first
//     evaluation sets the best, so it takes N + 1 evaluations to hold.
//   tokens_per_second_below_row_median F: its pace is below F times the median pace of the
//     other runs of its row (results/rows.h: runs that differ only in lr and seed, so they train
//     the same model on the same batch), judged once at least two of them have one.
//   diverged: it ended DIVERGED.
std::vector<HealthFiring> judge_health(const std::vector<sweep_file::HealthRule>& rules,
                                       const RunHealth& run);

// Reads the job, its sweep's rules and what they need, and acts on each rule that holds and has
// not acted on this run before: `stop` asks its worker to stop it, `rewind` forks it as above,
// and every acting rule writes an event (once per run and rule: the event's once-key). Returns
// the firings that acted, each with what it did (the caller audits them).
// Threads: called on gRPC handler threads; the stores serialise.
class HealthWatch {
 public:
  HealthWatch(SweepStore& sweeps, MetricStore& metrics, EventStore& events,
              std::string checkpoint_root)
      : sweeps_(sweeps), metrics_(metrics), events_(events), root_(std::move(checkpoint_root)) {}
  struct Acted {
    HealthFiring firing;
    std::string audit_action;  // health-stop, health-notify, health-rewind
    std::string what;          // the firing's reason and, for a rewind, its outcome
  };
  std::vector<Acted> consider(int64_t job_id, int64_t now_ms);

 private:
  RunHealth observe(const JobRow& job, const std::vector<sweep_file::HealthRule>& rules);
  std::vector<double> row_paces(const JobRow& job);
  // The rewind's outcome: "rewound as job 12 (label) from step 40", or why it stopped instead.
  std::string rewind(const JobRow& job, const HealthFiring& firing, int64_t now_ms);

  SweepStore& sweeps_;
  MetricStore& metrics_;
  EventStore& events_;
  std::string root_;
};

}  // namespace server
