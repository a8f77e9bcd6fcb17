// Health rules (sweep_file/health_spec.h): whether a run's stored curves make one of its sweep's
// rules hold, and the run stopped when one does. Judged by the coordinator each time the run
// reports evaluations (server/api/worker_service.cpp; evaluations bound how often the whole
// curve is read), from what the store holds, so a rule holds across worker and coordinator
// restarts; a run is asked to stop once (its stop reason is kept).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/metric_store.h"
#include "server/storage/sweep_store.h"

namespace server {

struct HealthFiring {
  sweep_file::HealthRule rule;
  std::string reason;  // "health rule loss_spikes_over 3: stop: 4 loss-spike events"
};

// The first of `rules` that holds for a run with `spike_events` loss-spike events and
// evaluations `evals` (in step order), or nullopt.
//   loss_spikes_over N: more than N events.
//   no_val_improvement_evals N: the run's best val loss was last bettered (by more than
//     sweep_file::kValImprovementTolerance of it) N or more evaluations ago; the first
//     evaluation sets the best, so it takes N + 1 evaluations to hold.
std::optional<HealthFiring> judge_health(const std::vector<sweep_file::HealthRule>& rules,
                                         int spike_events, const std::vector<EvalRow>& evals);

// Reads the job, its sweep's rules and its curves, and asks its worker to stop it when a `stop`
// rule holds. Returns the firing when it asked (the caller audits it), nullopt otherwise.
// Threads: called on gRPC handler threads; the stores serialise.
class HealthWatch {
 public:
  HealthWatch(SweepStore& sweeps, MetricStore& metrics) : sweeps_(sweeps), metrics_(metrics) {}
  std::optional<HealthFiring> consider(int64_t job_id, int64_t now_ms);

 private:
  SweepStore& sweeps_;
  MetricStore& metrics_;
};

}  // namespace server
