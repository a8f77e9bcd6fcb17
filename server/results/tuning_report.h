// What an adaptive sweep's search did and cost (sweep_file/tune_spec.h): per row and stage the
// values tried, the choice and its compute; for telescoping, the total against one full grid at
// the largest width; for early stopping, the runs stopped and the compute they did not spend.
//
// Compute is training FLOPs: a run's tokens times its model's training FLOPs per token (the run
// summary's figures; a run without a summary, stopped or failed, counts the steps it trained at
// the per-token FLOPs of a run of the same row). Evaluations are not counted.
#pragma once

#include <string>
#include <vector>

#include "server/results/rows.h"

namespace server {

struct TuningStage {
  std::string row;     // the row's label
  std::string family;  // the row's label without its width: equal across a telescope's stages
  std::string optimizer;
  int stage = 0, width = 0;
  std::vector<double> values;  // the lrs its tuning runs tried, increasing (one per point)
  // With a tuned weight decay: each tried point's, parallel to values; else empty.
  std::vector<double> weight_decays;
  LrChoice choice;
  int tuning_runs = 0, confirmation_runs = 0, stopped_runs = 0;
  double tuning_flops = 0;      // every tuning and extension run of this row and stage
  double run_budget_flops = 0;  // one run of this row trained to its end
};

// A telescoping row family: what its stages cost against tuning the last width directly.
struct TelescopeCost {
  std::string family, optimizer;
  int widths = 0;
  double telescoped_flops = 0;  // the tuning runs of every stage
  // A full grid at the largest width: as many values as stage 0 tried, each a whole run there.
  int full_grid_values = 0;
  double full_grid_flops = 0;
};

struct TuningReport {
  std::vector<TuningStage> stages;  // in row order
  std::vector<TelescopeCost> telescopes;
  double tuning_flops = 0, confirmation_flops = 0;
  int stopped_runs = 0;
  double stopped_flops_saved = 0;  // what the stopped runs would have spent to their end
};

TuningReport tuning_report(const Grouping& g);

}  // namespace server
