#include "server/tuning/health.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "server/events/event_text.h"
#include "server/results/rows.h"
#include "server/scheduling/job_config.h"
#include "server/storage/fork_rows.h"
#include "server/tuning/forking.h"
#include "trainer_core/train/checkpoint_files.h"

namespace server {

using sweep_file::HealthAction;
using sweep_file::HealthCondition;
using sweep_file::HealthRule;

namespace {

// Evaluations since the run's best val loss was last bettered (non-finite losses never are), and
// the step of that best (0 before any).
std::pair<int, int64_t> evals_without_improvement(const std::vector<EvalRow>& evals) {
  double best = INFINITY;
  int since = 0;
  int64_t best_step = 0;
  for (const EvalRow& e : evals) {
    const bool first = !std::isfinite(best);  // the first finite evaluation sets the best
    if (std::isfinite(e.val_loss) &&
        (first || e.val_loss < best - sweep_file::kValImprovementTolerance * std::fabs(best))) {
      best = e.val_loss;
      best_step = e.step;
      since = 0;
    } else if (std::isfinite(best)) {
      ++since;
    }
  }
  return {since, best_step};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string pace_text(double tokens_per_second) {
  return std::to_string(std::llround(tokens_per_second));
}

// Why `rule` holds for `run` (empty: it does not), and the step before the trouble began.
std::string why_it_holds(const HealthRule& rule, const RunHealth& run, int64_t& trouble_step) {
  if (run.diverged != (rule.when == HealthCondition::kDiverged)) return "";
  switch (rule.when) {
    case HealthCondition::kLossSpikesOver: {
      const size_t over = size_t(rule.threshold);
      if (run.spike_starts.size() <= over) return "";
      trouble_step = std::max<int64_t>(0, run.spike_starts[over] - 1);
      return std::to_string(run.spike_starts.size()) + " loss-spike events";
    }
    case HealthCondition::kNoValImprovementEvals: {
      const auto [since, best_step] = evals_without_improvement(run.evals);
      if (since < int(rule.threshold)) return "";
      trouble_step = best_step;
      return "no val-loss improvement in the last " + std::to_string(since) + " evaluations";
    }
    case HealthCondition::kTokensPerSecondBelowRowMedian: {
      const std::optional<double> pace = pace_of(run.evals);
      if (!pace || run.row_paces.size() < 2) return "";
      const double row = median(run.row_paces);
      if (!(*pace < rule.threshold * row)) return "";
      return pace_text(*pace) + " tokens/s against its row's median " + pace_text(row) + " over " +
             std::to_string(run.row_paces.size()) + " other runs";
    }
    case HealthCondition::kDiverged:
      trouble_step = std::max<int64_t>(0, run.last_step - 1);
      return "diverged at step " + std::to_string(run.last_step);
  }
  return "";
}

bool reads(const std::vector<HealthRule>& rules, HealthCondition condition) {
  return std::any_of(rules.begin(), rules.end(),
                     [&](const HealthRule& r) { return r.when == condition; });
}

}  // namespace

std::optional<double> pace_of(const std::vector<EvalRow>& evals) {
  const EvalRow* later = nullptr;
  for (auto e = evals.rbegin(); e != evals.rend(); ++e) {
    if (!std::isfinite(e->train_s)) continue;
    if (later == nullptr) {
      later = &*e;
    } else if (later->train_s > e->train_s && later->tokens > e->tokens) {
      return (later->tokens - e->tokens) / (later->train_s - e->train_s);
    }
  }
  return std::nullopt;
}

std::vector<HealthFiring> judge_health(const std::vector<HealthRule>& rules, const RunHealth& run) {
  std::vector<HealthFiring> out;
  for (size_t i = 0; i < rules.size(); ++i) {
    int64_t trouble_step = 0;
    if (const std::string why = why_it_holds(rules[i], run, trouble_step); !why.empty())
      out.push_back({i, rules[i], "health rule " + sweep_file::describe(rules[i]) + ": " + why,
                     trouble_step});
  }
  return out;
}

std::vector<double> HealthWatch::row_paces(const JobRow& job) {
  const std::optional<SweepRow> sweep = sweeps_.sweep(job.sweep_id);
  if (!sweep) return {};
  const std::vector<JobRow> jobs = sweeps_.jobs(job.sweep_id);
  Grouping g;
  group_into_rows(jobs, {}, sweep->tune, g);  // rows and runs; no selection needed
  const Row* row = row_of(g, job.id);
  if (row == nullptr) return {};
  const std::map<int64_t, std::vector<EvalRow>> evals = metrics_.sweep_eval_points(job.sweep_id);
  std::vector<double> paces;
  for (const Cell& cell : row->cells)
    for (const Run* r : cell.runs)
      if (const auto it = evals.find(r->job->id); r->job->id != job.id && it != evals.end())
        if (const std::optional<double> pace = pace_of(it->second)) paces.push_back(*pace);
  return paces;
}

RunHealth HealthWatch::observe(const JobRow& job, const std::vector<HealthRule>& rules) {
  RunHealth run;
  run.diverged = job.state == JobState::kDiverged;
  run.last_step = job.step;
  if (run.diverged) return run;
  // A rewind is judged on its own steps: the trouble before its branch is its parent's.
  const int64_t from =
      job.role == sweep_file::JobRole::kRewind && job.fork ? job.fork->plan.branch_step : INT64_MIN;
  if (reads(rules, HealthCondition::kLossSpikesOver))
    for (int64_t start : metrics_.loss_spike_events(job.id))
      if (start > from) run.spike_starts.push_back(start);
  if (reads(rules, HealthCondition::kNoValImprovementEvals) ||
      reads(rules, HealthCondition::kTokensPerSecondBelowRowMedian))
    for (const EvalRow& e : metrics_.eval_points(job.id))
      if (e.step > from) run.evals.push_back(e);
  if (reads(rules, HealthCondition::kTokensPerSecondBelowRowMedian)) run.row_paces = row_paces(job);
  return run;
}

std::string HealthWatch::rewind(const JobRow& job, const HealthFiring& firing, int64_t now_ms) {
  const auto stop = [&](const std::string& why) {
    if (job.state == JobState::kRunning)
      sweeps_.request_stop(job.id, firing.reason + ": " + why + "; stopped", now_ms,
                           SweepStore::StopScope::kAnyRun);
    return why + (job.state == JobState::kRunning ? "; stopped" : "");
  };
  int rewinds = 0;  // along its lineage, itself included
  std::optional<JobRow> at = job;
  for (int depth = 0; at && depth < kMaxForkDepth; ++depth) {
    rewinds += at->role == sweep_file::JobRole::kRewind ? 1 : 0;
    at = at->fork ? sweeps_.job(at->fork->parent_job_id) : std::nullopt;
  }
  if (rewinds >= firing.rule.rewind.times)
    return stop("rewound " + std::to_string(rewinds) + " time(s) already");
  const RunRef owner = job.checkpoint_owner();
  const std::vector<int64_t> kept =
      trainer_core::kept_checkpoint_steps(job_checkpoint_dir(root_, owner.sweep_id, owner.job_id));
  const auto after = std::upper_bound(kept.begin(), kept.end(), firing.trouble_step);
  if (after == kept.begin())
    return stop("no checkpoint kept at or before step " + std::to_string(firing.trouble_step));
  const int64_t step = *std::prev(after);

  ForkRequest request;
  request.spec.from = job.label;
  request.spec.at_tokens = step * job.batch_tokens;
  request.spec.label =
      "rewind" + std::to_string(rewinds + 1) + "@" + std::to_string(request.spec.at_tokens);
  request.spec.set = sweep_file::scaled_lr_settings(nlohmann::json::parse(job.config),
                                                    firing.rule.rewind.lr_scale);
  request.path = "health[" + std::to_string(firing.rule_index) + "].do.rewind";
  request.role = sweep_file::JobRole::kRewind;
  request.reason = firing.reason;
  const ForkOutcome made = fork_stored_job(sweeps_, root_, job, request, now_ms);
  // A fork of its label there already: this rewind was made by an earlier judgement.
  const std::optional<JobRow>& fork = made.existing ? made.existing : made.added;
  if (!fork)
    return stop("cannot rewind: " +
                (made.problems.empty() ? made.refusal : made.problems[0].to_string()));
  const std::string what = "rewound as job " + std::to_string(fork->id) + " (" + fork->label +
                           ") from step " + std::to_string(step);
  if (job.state == JobState::kRunning)
    sweeps_.request_stop(job.id, firing.reason + ": " + what, now_ms,
                         SweepStore::StopScope::kAnyRun);
  return what;
}

std::vector<HealthWatch::Acted> HealthWatch::consider(int64_t job_id, int64_t now_ms) {
  const std::optional<JobRow> job = sweeps_.job(job_id);
  if (!job || (job->state != JobState::kRunning && job->state != JobState::kDiverged)) return {};
  const std::vector<HealthRule> rules = sweeps_.health_rules(job->sweep_id);
  if (rules.empty()) return {};
  std::vector<Acted> acted;
  for (const HealthFiring& firing : judge_health(rules, observe(*job, rules))) {
    Acted a{firing, "health-" + std::string(trainer_core::name_of(firing.rule.action)),
            firing.reason};
    // A stop is asked once (the stop reason is kept); a later holding of the rule acts no more.
    if (firing.rule.action == HealthAction::kStop &&
        !sweeps_.request_stop(job_id, firing.reason, now_ms, SweepStore::StopScope::kAnyRun))
      continue;
    if (firing.rule.action == HealthAction::kRewind) a.what += ": " + rewind(*job, firing, now_ms);
    const std::string once =
        "health:" + std::to_string(job_id) + ":" + std::to_string(firing.rule_index);
    if (!events_.append(health_event(job->sweep_id, job_id, job->label, a.what, now_ms), once) &&
        firing.rule.action != HealthAction::kStop)
      continue;  // told before
    acted.push_back(std::move(a));
  }
  return acted;
}

}  // namespace server
