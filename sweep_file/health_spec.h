// The `health:` section of a sweep file: rules the coordinator judges on each run's stored curves
// while it trains, and what it does when one holds (docs/sweeps.md, "Health rules").
//
//   health:
//     - {when: {loss_spikes_over: 3}, do: stop}          # more than 3 loss-spike events
//     - {when: {no_val_improvement_evals: 5}, do: stop}  # the best val loss not bettered (by
//                                                        #   more than 1e-4 of it) in the last
//                                                        #   5 evaluations
//     - {when: {loss_spikes_over: 1}, do: notify}        # tell, and let it run
//
// Typed, not an expression language: a rule is one condition with its threshold and one action.
// `stop` ends the run STOPPED with the rule as its message: a stopped run has no final result, so
// no table or R_L(B) reads it (docs/statistics.md). `notify` writes an event (sweepctl watch, the
// sweep page, webhooks: docs/deploy.md "Notifications") and lets the run go on. Every rule that
// holds acts, each at most once per run. The coordinator judges a run's rules each time the run
// reports evaluations, from what it stored, so a rule holds across worker and coordinator
// restarts; each firing is written to the audit trail and is an event. At most 16 rules.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trainer_core/config/config_enums.h"
#include "trainer_core/config/train_config.h"

namespace sweep_file {

enum class HealthCondition { kLossSpikesOver, kNoValImprovementEvals };
constexpr trainer_core::NameTable<HealthCondition, 2> names_of(HealthCondition) {
  return {{{HealthCondition::kLossSpikesOver, "loss_spikes_over"},
           {HealthCondition::kNoValImprovementEvals, "no_val_improvement_evals"}}};
}

enum class HealthAction { kStop, kNotify };
constexpr trainer_core::NameTable<HealthAction, 2> names_of(HealthAction) {
  return {{{HealthAction::kStop, "stop"}, {HealthAction::kNotify, "notify"}}};
}

struct HealthRule {
  HealthCondition when = HealthCondition::kLossSpikesOver;
  int threshold = 0;  // spike events (more than this), or evaluations without improvement
  HealthAction action = HealthAction::kStop;
  bool operator==(const HealthRule&) const = default;
};

// A val loss improves on the best so far when it is lower by more than this share of it.
constexpr double kValImprovementTolerance = 1e-4;

// doc["health"] (absent: no rules); problems under "health[i].".
std::vector<HealthRule> read_health_rules(const nlohmann::json& doc,
                                          std::vector<trainer_core::ConfigProblem>& problems);

// "loss_spikes_over 3: stop" (what a stopped run's message and the audit trail say).
std::string describe(const HealthRule& rule);

// The stored form (sweeps.health); from_json throws std::invalid_argument on a value it did not
// write, and reads "" (sweeps stored before rules existed) as none.
nlohmann::json to_json(const std::vector<HealthRule>& rules);
std::vector<HealthRule> health_rules_from_json(const nlohmann::json& j);

}  // namespace sweep_file
