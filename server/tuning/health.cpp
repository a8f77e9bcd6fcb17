#include "server/tuning/health.h"

#include <cmath>

namespace server {

using sweep_file::HealthCondition;
using sweep_file::HealthRule;

namespace {

// Evaluations since the run's best val loss was last bettered (non-finite losses never are).
int evals_without_improvement(const std::vector<EvalRow>& evals) {
  double best = INFINITY;
  int since = 0;
  for (const EvalRow& e : evals) {
    const bool first = !std::isfinite(best);  // the first finite evaluation sets the best
    if (std::isfinite(e.val_loss) &&
        (first || e.val_loss < best - sweep_file::kValImprovementTolerance * std::fabs(best))) {
      best = e.val_loss;
      since = 0;
    } else if (std::isfinite(best)) {
      ++since;
    }
  }
  return since;
}

}  // namespace

std::optional<HealthFiring> judge_health(const std::vector<HealthRule>& rules, int spike_events,
                                         const std::vector<EvalRow>& evals) {
  for (const HealthRule& rule : rules) {
    std::string why;
    switch (rule.when) {
      case HealthCondition::kLossSpikesOver:
        if (spike_events > rule.threshold)
          why = std::to_string(spike_events) + " loss-spike events";
        break;
      case HealthCondition::kNoValImprovementEvals:
        if (const int since = evals_without_improvement(evals); since >= rule.threshold)
          why = "no val-loss improvement in the last " + std::to_string(since) + " evaluations";
        break;
    }
    if (!why.empty())
      return HealthFiring{rule, "health rule " + sweep_file::describe(rule) + ": " + why};
  }
  return std::nullopt;
}

std::optional<HealthFiring> HealthWatch::consider(int64_t job_id, int64_t now_ms) {
  const std::optional<JobRow> job = sweeps_.job(job_id);
  if (!job || job->state != JobState::kRunning) return std::nullopt;
  const std::vector<sweep_file::HealthRule> rules = sweeps_.health_rules(job->sweep_id);
  if (rules.empty()) return std::nullopt;
  const std::optional<HealthFiring> firing =
      judge_health(rules, metrics_.loss_spike_events(job_id), metrics_.eval_points(job_id));
  if (!firing) return std::nullopt;
  // stop is the only action in this release (health_spec.h).
  if (!sweeps_.request_stop(job_id, firing->reason, now_ms, SweepStore::StopScope::kAnyRun))
    return std::nullopt;  // asked before, or no longer running
  return firing;
}

}  // namespace server
