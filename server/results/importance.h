// Which varied settings move final val loss most (docs/dashboard.md, "Which settings matter"):
// the main effects of a functional ANOVA over the sweep's finished runs. For each setting the
// sweep varies (config_columns.h: grid, ablation and tuned values; the seed is not a setting, so
// seeds are the replication), its share of the variance of final val loss explained by its own
// level means:
//   share_i = sum over its levels v of n_v (mean_v - mean)^2 / sum over runs of (y - mean)^2
// (one-way ANOVA's eta squared). On a balanced full grid (every combination of the settings'
// levels run equally often) this is functional ANOVA's main-effect fraction (Hooker 2007; Hutter,
// Hoos and Leyton-Brown 2014, who use it for hyperparameter importance), and 1 - sum of shares is
// what interactions and seed noise explain. Used: runs that SUCCEEDED with a finite final val
// loss; the others are counted as left out. The limits travel with the result (`balanced` and the
// note): on an unbalanced design (an adaptive sweep's extensions, exclusions, failures) settings
// that vary together share credit and the shares can sum past 1; a main effect says nothing of
// interactions; a numeric setting counts by level, not as a trend. Settings that always vary
// together (each optimizer with its own lr) are one setting "a + b": no analysis of these runs
// can tell them apart.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "server/results/rows.h"

namespace server {

struct SettingLevel {
  std::string value;  // the JSON text of the setting's value ("0.003", "\"muon\"")
  double mean_final_val_loss = 0;
  int runs = 0;
};

struct SettingImportance {
  std::string path;                  // "optimizer.lr"
  double share = 0;                  // of the variance of final val loss, in [0, 1]
  std::vector<SettingLevel> levels;  // in the order of their values
};

struct Importance {
  std::vector<SettingImportance> settings;  // largest share first
  double residual_share = 0;                // 1 - sum of shares, at least 0: interactions and noise
  int runs_used = 0, runs_left_out = 0;
  bool balanced = false;  // every combination of levels that was run, run equally often, and
                          // every combination of levels run
  std::string note;       // the method and its limits, in words, for this sweep
};

// nullopt when fewer than 3 runs are usable, no setting varies among them, or their losses do
// not vary.
std::optional<Importance> setting_importance(const std::vector<JobRow>& jobs,
                                             const std::vector<Run>& runs);

}  // namespace server
