// The `analysis:` section of a sweep file: how the results choose each row's learning rate for
// R_L(B), fixed with the sweep, before any run exists (docs/statistics.md, "Choosing the lr apart
// from what it measures").
//
//   analysis:
//     selection: tokens_to_target   # the default: for each target, the lr whose selecting runs
//                                   #   reach it with the fewest tokens (geometric mean over seeds)
//                                   # final_loss: the lowest mean final val loss, one lr for every
//                                   #   target (the rule of Table 2 and Table 3)
//                                   # held_out_seeds: tokens_to_target over selection_seeds only;
//                                   #   R_L(B) is measured on the sweep's other seeds
//     selection_seeds: [1]          # held_out_seeds only: the seeds that choose; at least one
//                                   #   seed of the sweep must be left to measure
//     targets: from_data            # the target losses of R_L(B) and the tables: given (the
//                                   #   default: the sweep's `targets:`), or from_data: chosen
//                                   #   after the runs by the rule of docs/statistics.md ("Targets
//                                   #   from the data"), so that no target is picked by hand
//     tables_at_budget: 262144      # a sweep with budgets: Table 2 and Table 3 read each row at
//                                   #   this budget (one of budgets.tokens); absent, every rung
//                                   #   is a row of its own
//     fit_from_tokens: 65536        # a sweep with budgets: the scaling fits and the compute
//                                   #   multiplier use the budgets from this one up (one of
//                                   #   budgets.tokens, leaving at least 3); absent, every budget.
//                                   #   Rungs of a few steps sit before the power-law regime
//     trend_margin: 0.9             # R_L(B) "does not fall" with B when the lower end of its
//                                   #   per-doubling factor's 95% interval lies above this
//                                   #   (non-inferiority; docs/statistics.md); in (0, 1]
//
// A tuned sweep (`tune:`) chooses its lrs in its planner (final loss over its tuning seeds): it
// takes `targets` but no `selection`.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "trainer_core/config/config_enums.h"
#include "trainer_core/config/train_config.h"

namespace sweep_file {

enum class SelectionRule { kTokensToTarget, kFinalLoss, kHeldOutSeeds };
constexpr trainer_core::NameTable<SelectionRule, 3> names_of(SelectionRule) {
  return {{{SelectionRule::kTokensToTarget, "tokens_to_target"},
           {SelectionRule::kFinalLoss, "final_loss"},
           {SelectionRule::kHeldOutSeeds, "held_out_seeds"}}};
}

enum class TargetRule { kGiven, kFromData };
constexpr trainer_core::NameTable<TargetRule, 2> names_of(TargetRule) {
  return {{{TargetRule::kGiven, "given"}, {TargetRule::kFromData, "from_data"}}};
}

struct AnalysisSpec {
  SelectionRule selection = SelectionRule::kTokensToTarget;
  std::vector<int64_t> selection_seeds;  // held_out_seeds only
  TargetRule targets = TargetRule::kGiven;
  int64_t tables_at_budget = 0;  // 0: every rung of a budget ladder is a row of the tables
  int64_t fit_from_tokens = 0;   // 0: the scaling fits use every budget of a ladder
  double trend_margin = 0.9;     // R's largest tolerated fall per doubling of B (a factor)
  bool operator==(const AnalysisSpec&) const = default;
};

// doc["analysis"] (absent: the defaults), checked against the sweep's seeds; problems are
// reported under "analysis.".
AnalysisSpec read_analysis_spec(const nlohmann::json& doc, const std::vector<int64_t>& seeds,
                                bool tuned, std::vector<trainer_core::ConfigProblem>& problems);

// The stored form (sweeps.analysis); from_json throws std::invalid_argument on a value it did not
// write, and reads "" (sweeps stored before the section existed) as the defaults.
nlohmann::json to_json(const AnalysisSpec& spec);
AnalysisSpec analysis_spec_from_json(const nlohmann::json& j);

}  // namespace sweep_file
