// Per-sweep results computed from stored rows, following the paper's method (docs/statistics.md):
//
//   1. Runs that differ only in their seed form a cell; cells that differ only in optimizer.lr
//      form a row (one ablation / architecture / optimizer / batch-size setting).
//   2. Each row keeps the lr with the lowest mean final val loss over its seeds ("best lr"); an lr
//      with a diverged or failed seed ranks after every lr whose seeds all succeeded; ties go to
//      the smaller lr. While runs of the row are unfinished the choice is provisional.
//   3. Table 2 (ablation), R_L(B) and Table 3 are computed on the selected cells only, and every
//      average says over how many of the cell's runs it was taken.
//
// R_L(B) = T_L^AdamW(B) / T_L^Muon(B) (Essential AI) pairs, per seed, the best-lr Muon row with
// the best-lr AdamW row that shares everything but the optimizer; see paired_ratio.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "server/results/paired_ratio.h"
#include "server/results/rows.h"
#include "server/results/tuning_report.h"
#include "server/storage/store.h"

namespace server {

struct AblationRow {
  std::string label;  // the job label without its lr part
  bool baseline = false;
  std::string optimizer;
  int64_t batch_tokens = 0;
  LrChoice lr;
  RunCounts counts;
  int runs = 0;                                // = counts.total
  int tuning_runs = 0, confirmation_runs = 0;  // of runs, in an adaptive sweep
  Stat val_ppl, steps_to_target, spikes, peak_memory_mb;
  bool has_delta = false;
  double delta_val_ppl = 0;
};

// Table 3: one row per row of the sweep when it varies architecture.
struct ArchitectureRow {
  std::string label, attention, ffn, optimizer;
  LrChoice lr;
  RunCounts counts;
  int runs = 0;
  Stat seconds_to_target, inference_tokens_per_second, peak_memory_mb, val_ppl, flops_to_target;
  // FLOPs to target / that of the MHA + dense + AdamW row of the same setting, paired by seed.
  bool has_relative_flops = false;
  PairedRatio relative_flops;
};

struct RatioPoint {
  std::string group;  // the Muon row's label without its optimizer and batch-size parts
  int64_t batch_tokens = 0;
  double target = 0;
  PairedRatio ratio;
  double adamw_lr = 0, muon_lr = 0;  // the selected lrs of the two rows
};

// One point of the lr-sensitivity table: a cell's final val loss at one lr, over the runs the
// selection compared (every run of a fixed sweep, the tuning runs of an adaptive one).
struct LrPoint {
  std::string row;  // the row's label
  std::string optimizer;
  int64_t batch_tokens = 0;
  double lr = 0;
  Stat final_val_loss;
  RunCounts counts;
  bool selected = false;
};

struct SweepResults {
  std::vector<double> targets;
  std::vector<AblationRow> ablation;
  std::vector<RatioPoint> ratios;
  std::vector<ArchitectureRow> architecture;  // empty unless the sweep varies architecture
  std::vector<LrPoint> lr_sensitivity;        // empty unless some row tried several lrs
  std::vector<std::string> notes;             // how the numbers were made, and what was left out
  std::optional<TuningReport> tuning;         // adaptive sweeps only
};

SweepResults analyze_sweep(const SweepRow& sweep, const std::vector<JobRow>& jobs,
                           const std::map<int64_t, std::string>& summaries);

}  // namespace server
