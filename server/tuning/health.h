// Health rules (sweep_file/health_spec.h): whether a run's stored curves make one of its sweep's
// rules hold, and the run stopped when one does. Judged by the coordinator each time the run
// reports evaluations (server/api/worker_service.cpp; evaluations bound how often the whole
// curve is read), from what the store holds, so a rule holds across worker and coordinator
// restarts; a run is asked to stop once (its stop reason is kept).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/storage/event_store.h"
#include "server/storage/metric_store.h"
#include "server/storage/sweep_store.h"

namespace server {

struct HealthFiring {
  size_t rule_index = 0;  // its place in the sweep's rules
  sweep_file::HealthRule rule;
  std::string reason;  // "health rule loss_spikes_over 3: stop: 4 loss-spike events"
};

// Every one of `rules` that holds for a run with `spike_events` loss-spike events and
// evaluations `evals` (in step order), in the rules' order.
//   loss_spikes_over N: more than N events.
//   no_val_improvement_evals N: the run's best val loss was last bettered (by more than
//     sweep_file::kValImprovementTolerance of it) N or more evaluations ago; the first
//     evaluation sets the best, so it takes N + 1 evaluations to hold.
std::vector<HealthFiring> judge_health(const std::vector<sweep_file::HealthRule>& rules,
                                       int spike_events, const std::vector<EvalRow>& evals);

// Reads the job, its sweep's rules and its curves, and acts on each rule that holds and has not
// acted on this run before: `stop` asks its worker to stop it, and every acting rule writes an
// event (once per run and rule: the event's once-key). Returns the firings that acted (the
// caller audits them).
// Threads: called on gRPC handler threads; the stores serialise.
class HealthWatch {
 public:
  HealthWatch(SweepStore& sweeps, MetricStore& metrics, EventStore& events)
      : sweeps_(sweeps), metrics_(metrics), events_(events) {}
  std::vector<HealthFiring> consider(int64_t job_id, int64_t now_ms);

 private:
  SweepStore& sweeps_;
  MetricStore& metrics_;
  EventStore& events_;
};

}  // namespace server
