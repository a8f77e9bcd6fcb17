// Per-sweep results computed from stored rows, following the paper's method (docs/statistics.md):
//
//   1. Runs that differ only in their seed form a cell; cells that differ only in optimizer.lr
//      form a row (one ablation / architecture / optimizer / batch-size setting).
//   2. Each row keeps the lr with the lowest mean final val loss over its seeds ("best lr"); an lr
//      with a diverged, failed or cancelled seed ranks after every lr whose seeds all succeeded;
//      ties go to
//      the smaller lr. While runs of the row are unfinished the choice is provisional.
//   3. Table 2 (ablation) and Table 3 are computed on the selected cells only, and every
//      average says over how many of the cell's runs it was taken. R_L(B) chooses each row's lr
//      per target by the sweep's analysis rule (selection.h): by default tokens to that target.
//
// R_L(B) = T_L^AdamW(B) / T_L^Muon(B) (Essential AI) pairs, per seed, the best-lr Muon row with
// the best-lr AdamW row that shares everything but the optimizer; see paired_ratio.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "server/results/importance.h"
#include "server/results/lr_law.h"
#include "server/results/paired_ratio.h"
#include "server/results/rows.h"
#include "server/results/scaling_fit.h"
#include "server/results/tuning_report.h"
#include "server/storage/metric_store.h"
#include "server/storage/sweep_store.h"

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
  Stat val_ppl, final_val_loss, steps_to_target, spikes, peak_memory_mb;  // final_val_loss: the
                                                                          // mean of the losses
  bool has_delta = false;
  double delta_val_ppl = 0;
};

// Table 3: one row per row of the sweep when it varies architecture.
struct ArchitectureRow {
  std::string label, attention, ffn, optimizer;
  LrChoice lr;
  RunCounts counts;
  int runs = 0;
  // To the first target: tokens, FLOPs (model and optimizer) and training time, side by side.
  Stat tokens_to_target, flops_to_target, seconds_to_target;
  Stat inference_tokens_per_second, peak_memory_mb, val_ppl;
  // FLOPs to target / that of the MHA + dense + AdamW row of the same setting, paired by seed.
  bool has_relative_flops = false;
  PairedRatio relative_flops;
};

// R at a neighbouring lr of one side, the other side at its choice.
struct NeighbourRatio {
  std::string side;  // "adamw" or "muon": the side whose lr moved
  double lr = 0;
  PairedRatio ratio;
};

// Where each run's tokens to target T(L) are read.
enum class TargetReading {
  kWithinRun,  // where the run's own curve first crosses L: early speed at its lr then
  kAnnealed,   // from its budget ladder's annealed final losses against budget (budgets:)
};

// Where one side of a ratio reaches the target in its budget, over the runs R pairs (the chosen
// lr's measuring seeds): the share T / budget of each seed that reaches it. Within a run, a
// crossing before the last third of the budget is early speed at a high lr, not an annealed loss
// (docs/statistics.md); on a budget ladder T is read at the end of annealing, and a seed that
// misses is one whose largest budget did not anneal to the target.
struct CrossingShare {
  int reached = 0, missed = 0;
  double mean_share = 0, earliest_share = 0;  // over the seeds that reached it (0 when none)
};

struct RatioPoint {
  TargetReading reading = TargetReading::kWithinRun;
  std::string group;  // the Muon row's label without its optimizer and batch-size parts
  int64_t batch_tokens = 0;
  double target = 0;
  PairedRatio ratio;
  double adamw_lr = 0, muon_lr = 0;  // the lrs chosen for this target
  // How: the sweep's rule (analysis_spec.h), or an adaptive sweep's planner (final loss over its
  // tuning seeds), whatever the rule says.
  sweep_file::SelectionRule selection = sweep_file::SelectionRule::kTokensToTarget;
  bool chosen_by_planner = false;
  bool adamw_lr_at_edge = false, muon_lr_at_edge = false;
  std::vector<NeighbourRatio> neighbours;  // each side's lr one grid step down and up, if tried
  CrossingShare adamw_crossing, muon_crossing;
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
  double weight_decay = 0;  // the point's weight decay when the sweep tunes it (else 0)
};

// How R_L(B) moves with the batch size for one group and target: the least-squares slope of the
// seeds' log ratios on log2(batch tokens), over every batch size, with its 95% t-interval (n − 2
// degrees of freedom), as R's factor per doubling of B. Withheld, with the reason, when some
// batch size's ratio is a bound or missing or a chosen lr sits at its grid's edge: a verdict on
// the trend would rest on a number that is not one.
struct RatioTrend {
  TargetReading reading = TargetReading::kWithinRun;
  std::string group;
  double target = 0;
  int batch_sizes = 0, points = 0;
  bool has_slope = false;
  double per_doubling = 0, low = 0, high = 0;  // R's factor per doubling of B, its 95% interval
  double degrees_of_freedom = 0;  // Welch–Satterthwaite's (welch_slope.h); infinite: no noise
  // Non-inferiority: R "does not fall" with B when the interval's lower end lies above the
  // margin (a one-sided 97.5% bound; analysis.trend_margin, default 0.9 per doubling).
  double margin = 0;
  bool does_not_fall = false;
  std::string withheld;
};

// A budget ladder row's scaling fit, L(D) = E + A·D^(−α) over its seeds' annealed final losses
// (scaling_fit.h); intervals by a bootstrap over seeds, shown from kMinSeedsForScalingInterval
// seeds on (fewer cover far less than 95%: docs/statistics.md).
struct ScalingRow {
  std::string group, optimizer;
  int64_t batch_tokens = 0;
  double lr = 0;
  PowerLaw fit;
  bool alpha_at_bound = false;  // scaling_fit.h: the fit is not a power law's
  bool has_interval = false;
  Interval E, A, alpha;
  int seeds = 0, points = 0;
  int draws = 0, failed_draws = 0;   // bootstrap refits, and those that gave no fit (left out)
  std::vector<SeedLadder> observed;  // the points fitted: each seed's annealed final losses
};

// AdamW's compute multiplier against Muon for one pair of ladder rows: at each budget D, how many
// times D AdamW's law needs to reach the loss Muon's reaches at D.
struct MultiplierRow {
  std::string group;
  int64_t batch_tokens = 0;
  std::vector<MultiplierAt> at;
  bool has_interval = false;
  int seeds = 0;  // paired seeds of the bootstrap
};

constexpr int kMinSeedsForScalingInterval = 5;

// The compute–time plane of the paper's section 3.2 (docs/statistics.md, "The compute–time
// Pareto frontier"): per optimizer, each batch size B is a point (devices = B / the sweep's
// smallest batch, one device's batch; time to target = T(L, B) / B steps × that optimizer's
// measured seconds per step at one device's batch).
struct ParetoPoint {
  std::string optimizer;
  int64_t batch_tokens = 0;
  double devices = 0;
  bool reached = false;  // every seed of the row reached the target (else no time: not a point)
  // Some seed's T is only known to be at most its ladder's smallest budget: the point would be at
  // least this fast, so no verdict may rest on its absence.
  bool bounded_above = false;
  double seconds = 0;  // geometric mean over seeds
  bool has_interval = false;
  double seconds_low = 0, seconds_high = 0;  // 95% t-interval over seeds (from 3 seeds on)
  int seeds = 0;
  bool on_frontier = false;  // no point of its optimizer with as few devices is as fast
};

enum class ParetoVerdict {
  kMuonDominates,  // every AdamW frontier point is beaten, intervals apart, with no more devices
  kNotDominated,   // some AdamW frontier point is faster, intervals apart, than every such Muon one
  kUndecided,      // otherwise (overlapping intervals, too few seeds, points missing)
};

struct ParetoFrontier {
  TargetReading reading = TargetReading::kWithinRun;
  std::string group;  // the setting, as R_L(B)'s groups name it
  double target = 0;
  int64_t device_batch_tokens = 0;                       // one device's batch: the sweep's smallest
  double adamw_step_seconds = 0, muon_step_seconds = 0;  // measured at that batch
  std::vector<ParetoPoint> points;                       // by optimizer, then devices
  ParetoVerdict verdict = ParetoVerdict::kUndecided;
  std::string why;  // the verdict's reason, in words
};

// How the best lr scales over rows that differ only in width and batch (lr_law.h): rows whose lr
// choice is bracketed (several lrs tried, not at the grid's edge, not provisional).
struct LrLaw {
  std::string group, optimizer;
  int rows = 0;              // fitted
  int left_out_at_edge = 0;  // rows whose best lr sits at its grid's edge: not bracketed
  LrLawFit fit;
};

// Where a sweep's target losses came from (analysis_parts.h, targets_from_data).
enum class TargetSource {
  kGiven,             // fixed with the sweep, before any run
  kFromData,          // chosen after the runs by the rule of docs/statistics.md
  kFromDataFallback,  // that rule's fallback: the lowest loss every run reaches (some early)
};

struct SweepResults {
  std::vector<double> targets;
  TargetSource target_source = TargetSource::kGiven;
  std::vector<AblationRow> ablation;
  std::vector<RatioPoint> ratios;
  std::vector<RatioTrend> trends;             // one per group and target with ratios
  std::vector<ScalingRow> scaling;            // budget ladders: each row's fit
  std::vector<MultiplierRow> multipliers;     // budget ladders: each AdamW-Muon pair of rows
  std::vector<ParetoFrontier> pareto;         // per target (and reading) with both optimizers
  std::vector<LrLaw> lr_laws;                 // per group of rows varying width or batch
  std::vector<ArchitectureRow> architecture;  // empty unless the sweep varies architecture
  std::vector<LrPoint> lr_sensitivity;        // empty unless some row tried several lrs
  std::vector<std::string> notes;             // how the numbers were made, and what was left out
  std::optional<TuningReport> tuning;         // adaptive sweeps only
  std::optional<Importance> importance;       // which varied settings move final val loss
};

// `evals`: the stored evaluations of the runs, by job id; read only where the sweep's targets come
// from the data (analysis_spec.h).
SweepResults analyze_sweep(const SweepRow& sweep, const std::vector<JobRow>& jobs,
                           const std::map<int64_t, std::string>& summaries,
                           const std::map<int64_t, std::vector<EvalRow>>& evals = {});

// The same for a stored sweep: its jobs, summaries and (targets from the data) evaluations.
SweepResults analyze_stored_sweep(SweepStore& sweeps, MetricStore& metrics, const SweepRow& sweep);

}  // namespace server
