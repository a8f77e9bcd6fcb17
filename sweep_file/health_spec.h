// The `health:` section of a sweep file: rules the coordinator judges on each run's stored curves
// while it trains, and what it does when one holds (docs/sweeps.md, "Health rules").
//
//   health:
//     - {when: {loss_spikes_over: 3}, do: stop}          # more than 3 loss-spike events
//     - {when: {no_val_improvement_evals: 5}, do: stop}  # the best val loss not bettered (by
//                                                        #   more than 1e-4 of it) in the last
//                                                        #   5 evaluations
//     - {when: {tokens_per_second_below_row_median: 0.5}, do: notify}  # under half its row's pace
//     - {when: diverged, do: notify}                     # the run ended DIVERGED
//     - {when: {loss_spikes_over: 1}, do: {rewind: {lr_scale: 0.5, times: 2}}}
//
// Typed, not an expression language: a rule is one condition with its threshold and one action.
// `stop` ends the run STOPPED with the rule as its message: a stopped run has no final result, so
// no table or R_L(B) reads it (docs/statistics.md). `notify` writes an event (sweepctl watch, the
// sweep page, webhooks: docs/deploy.md "Notifications") and lets the run go on. `rewind` stops
// the run and forks it from its last rewind point before the trouble began with its lr scaled
// (server/tuning/health.h says which step and what happens after `times` rewinds). Every rule
// that holds acts, each at most once per run. The coordinator judges a run's rules each time the
// run reports evaluations (and `diverged` when it ends so), from what it stored, so a rule holds
// across worker and coordinator restarts; each firing is written to the audit trail and is an
// event. At most 16 rules.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "trainer_core/config/config_enums.h"
#include "trainer_core/config/train_config.h"

namespace sweep_file {

enum class HealthCondition {
  kLossSpikesOver,
  kNoValImprovementEvals,
  kTokensPerSecondBelowRowMedian,
  kDiverged,
};
constexpr trainer_core::NameTable<HealthCondition, 4> names_of(HealthCondition) {
  return {{{HealthCondition::kLossSpikesOver, "loss_spikes_over"},
           {HealthCondition::kNoValImprovementEvals, "no_val_improvement_evals"},
           {HealthCondition::kTokensPerSecondBelowRowMedian, "tokens_per_second_below_row_median"},
           {HealthCondition::kDiverged, "diverged"}}};
}

enum class HealthAction { kStop, kNotify, kRewind };
constexpr trainer_core::NameTable<HealthAction, 3> names_of(HealthAction) {
  return {{{HealthAction::kStop, "stop"},
           {HealthAction::kNotify, "notify"},
           {HealthAction::kRewind, "rewind"}}};
}

// What a rewind changes, and how often a lineage may be rewound.
struct Rewind {
  double lr_scale = 0;  // the fork's lr (and a Muon run's AdamW lr) times this, in (0, 1)
  int times = 0;        // rewinds a lineage may take, 1..8; after them the rule stops the run
  bool operator==(const Rewind&) const = default;
};

struct HealthRule {
  HealthCondition when = HealthCondition::kLossSpikesOver;
  // Spike events (more than this), evaluations without improvement, or the share of the row's
  // median tokens per second (in (0, 1)); 0 for `diverged`, which has none.
  double threshold = 0;
  HealthAction action = HealthAction::kStop;
  Rewind rewind;  // kRewind only
  bool operator==(const HealthRule&) const = default;
};

// A val loss improves on the best so far when it is lower by more than this share of it.
constexpr double kValImprovementTolerance = 1e-4;

// doc["health"] (absent: no rules); problems under "health[i].".
std::vector<HealthRule> read_health_rules(const nlohmann::json& doc,
                                          std::vector<trainer_core::ConfigProblem>& problems);

// Rules that could never hold for a job, because its trainer does not record what they read, as
// problems under "health[i].when": a job running its own `command` (evaluations: nullopt) need not
// flag loss spikes, evaluate or time its training (docs/run-records.md: those records are
// optional), and a job of the built-in trainer that makes fewer than N + 1 evaluations cannot go
// N evaluations without improving, nor be timed between two. `label` names the job.
void check_rules_for_job(const std::vector<HealthRule>& rules, std::optional<int64_t> evaluations,
                         const std::string& label,
                         std::vector<trainer_core::ConfigProblem>& problems);

bool any_rewinds(const std::vector<HealthRule>& rules);

// "loss_spikes_over 3: stop", "diverged: rewind (lr x0.5, at most 2)" (what a stopped run's
// message and the audit trail say).
std::string describe(const HealthRule& rule);

// The stored form (sweeps.health); from_json throws std::invalid_argument on a value it did not
// write, and reads "" (sweeps stored before rules existed) as none.
nlohmann::json to_json(const std::vector<HealthRule>& rules);
std::vector<HealthRule> health_rules_from_json(const nlohmann::json& j);

}  // namespace sweep_file
