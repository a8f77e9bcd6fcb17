#include "server/tuning/health.h"

#include <cmath>

#include "server/events/event_text.h"

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

std::vector<HealthFiring> judge_health(const std::vector<HealthRule>& rules, int spike_events,
                                       const std::vector<EvalRow>& evals) {
  std::vector<HealthFiring> out;
  for (size_t i = 0; i < rules.size(); ++i) {
    const HealthRule& rule = rules[i];
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
      out.push_back({i, rule, "health rule " + sweep_file::describe(rule) + ": " + why});
  }
  return out;
}

std::vector<HealthFiring> HealthWatch::consider(int64_t job_id, int64_t now_ms) {
  const std::optional<JobRow> job = sweeps_.job(job_id);
  if (!job || job->state != JobState::kRunning) return {};
  const std::vector<sweep_file::HealthRule> rules = sweeps_.health_rules(job->sweep_id);
  if (rules.empty()) return {};
  std::vector<HealthFiring> acted;
  for (const HealthFiring& firing :
       judge_health(rules, metrics_.loss_spike_events(job_id), metrics_.eval_points(job_id))) {
    // A stop is asked once (the stop reason is kept); a later holding of the rule acts no more.
    if (firing.rule.action == sweep_file::HealthAction::kStop &&
        !sweeps_.request_stop(job_id, firing.reason, now_ms, SweepStore::StopScope::kAnyRun))
      continue;
    const std::string once =
        "health:" + std::to_string(job_id) + ":" + std::to_string(firing.rule_index);
    if (!events_.append(health_event(job->sweep_id, job_id, job->label, firing.reason, now_ms),
                        once) &&
        firing.rule.action == sweep_file::HealthAction::kNotify)
      continue;  // told before
    acted.push_back(firing);
  }
  return acted;
}

}  // namespace server
