// Internal to the analysis (analysis.h): the parts analyze_sweep (analysis.cpp) puts together,
// by the file that defines them. Other rooms include analysis.h.
#pragma once

#include <set>

#include "server/results/analysis.h"

namespace server {

// analysis_ratios.cpp: R_L(B), and how it moves with the batch size.

// The dataset a run trained on (its summary's dataset id; empty for runs that predate it).
std::string dataset_of(const Run& r);

// Which runs of a cell a ratio pairs: its measuring runs (the tables' own), or every run (R at a
// tuned row's neighbouring lrs, where only the tuning seeds ran).
using CellRuns = std::vector<const Run*> Cell::*;

// Pairs the seeds two cells share; a seed whose run on either side has no result is left out,
// and the note says how many. Runs of different datasets are never compared.
// `measured`: only these seeds pair (held-out selection); null: every seed.
PairedRatio ratio_of_cells(const Cell& num, const Cell& den, size_t target, bool flops,
                           const std::string& num_name, const std::string& den_name,
                           const std::set<int64_t>* measured = nullptr,
                           CellRuns which = &Cell::measuring);

// R_L(B): each Muon row against the AdamW row of the same setting, on the lrs the sweep's rule
// chooses for each target (selection.h; an adaptive sweep's planner chose already), ordered by
// group, target and batch size (as numbers). `ambiguous` counts Muon rows left without a ratio
// because several AdamW rows match; `unpaired` lists those no AdamW row matches.
std::vector<RatioPoint> ratio_points(const SweepRow& sweep, const std::vector<Row>& rows,
                                     int& ambiguous, std::vector<std::string>& unpaired);

// R_L(B)'s trend with the batch size per group and target (analysis.h, RatioTrend), "does not
// fall" judged against `margin` (analysis.trend_margin). `ratios` are ordered by group, target
// and batch size.
std::vector<RatioTrend> ratio_trends(const std::vector<RatioPoint>& ratios, double margin);

// analysis_ladders.cpp: tokens to target at the end of annealing (docs/statistics.md, "Tokens to
// target from a budget ladder").

// One rung of one seed's ladder: its budget and its annealed final val loss (NaN: the rung did
// not succeed, a diverged rung's last loss is not an annealed one).
struct LadderPoint {
  double tokens = 0;
  double final_val_loss = 0;
};
struct AnnealedCrossing {
  bool reached = false;  // some budget's annealed loss is <= L
  double tokens = 0;     // T(L): linear in log(tokens) between that rung and the one below
  // T(L) is only known to be <= tokens: the smallest budget reaches L already, or the rung below
  // the first that reaches it has no loss to interpolate from.
  bool at_most = false;
};
// T(L) from a ladder's rungs (any order): not reached when even the largest budget misses L.
AnnealedCrossing annealed_tokens_to_target(std::vector<LadderPoint> rungs, double target);

// The rows whose runs train `tokens` (one budget of a ladder: every rung is a row of its own).
std::vector<Row> rows_at_budget(const std::vector<Row>& rows, int64_t tokens);

// Rewrites, for a sweep with `budgets:`, each seed's largest-budget run (its ladder's trunk, or
// the largest separate run) so that its targets are its ladder's annealed crossings (at_most ones
// marked in Run::at_most_targets) and its budget the largest; a ladder with a rung that has no
// summary loses its trunk's (the seed is left out as unfinished). Returns the rows of those runs:
// what R at the end of annealing pairs. `points`, when given, gets every ladder's rungs, keyed by
// (its row's label without the budget, seed).
using LadderPoints = std::map<std::pair<std::string, int64_t>, std::vector<LadderPoint>>;
std::vector<Row> read_targets_from_ladders(const sweep_file::BudgetLadder& ladder,
                                           const std::vector<double>& targets, Grouping& g,
                                           LadderPoints* points = nullptr);

// analysis_pareto.cpp: the compute–time plane per target, from the rows' best cells (the
// tables' lr choice) and the runs' recorded training seconds per step.
std::vector<ParetoFrontier> pareto_frontiers(const std::vector<Row>& rows,
                                             const std::vector<double>& targets,
                                             TargetReading reading);

// analysis_lr_law.cpp: how the best lr scales with width and batch, per group of rows that
// differ only in those (Row::law_key).
std::vector<LrLaw> lr_laws(const std::vector<Row>& rows);

// analysis_scaling.cpp: the scaling fit of every ladder row with one lr (`rows`, as
// read_targets_from_ladders returns them) and the compute multiplier of every AdamW-Muon pair
// of them, over the ladder's budgets from `fit_from_tokens` up (0: every budget).
void add_scaling(const std::vector<Row>& rows, const LadderPoints& points,
                 const std::vector<int64_t>& budgets, int64_t fit_from_tokens, SweepResults& out);

// analysis_tables.cpp: Table 2, Table 3 and the lr-sensitivity table.

// Table 2: one row per setting, on its best lr. The baseline marks rows (and deltas compare with
// it) only in a sweep that has ablations.
std::vector<AblationRow> ablation_table(const SweepRow& sweep, const std::vector<Row>& rows);

// Table 3, when more than one (attention, ffn) pair appears: every row, with FLOPs to target
// relative to the MHA + dense + AdamW row of the same setting.
std::vector<ArchitectureRow> architecture_table(const SweepRow& sweep,
                                                const std::vector<Row>& rows);

// The lr-sensitivity table: every lr of every row that tried several, over the runs the choice
// compared (an adaptive sweep's confirmation seeds measure the chosen lr in the tables instead).
std::vector<LrPoint> lr_sensitivity(const std::vector<Row>& rows);

// analysis_data_targets.cpp: targets the data choose (analysis_spec.h, targets: from_data).

// Targets from the data (docs/statistics.md): the losses that every run of the rows' chosen cells
// reaches, and reaches only in the last third of its budget, L in [lo, hi) with lo = the highest
// of the runs' lowest val losses and hi = the lowest of their lowest val losses up to 2/3 of
// their steps (the curve read piecewise linearly). Two targets at a third and two thirds of the
// way down, rounded to 0.001 inside it; if the range is empty, one target: lo rounded up (every
// run reaches it, some before their last third), said in the note. The runs are the succeeded
// runs of the rows R_L(B) pairs when the sweep has such rows, else of every row.
struct DataTargets {
  std::vector<double> targets;
  bool fallback = false;  // the one target is the lowest loss every run reaches (some earlier)
  std::string note;
};

DataTargets targets_from_data(const std::vector<Row>& rows,
                              const std::map<int64_t, std::vector<EvalRow>>& evals);

// Every summary's crossings again, at `targets`, from the run's stored evaluations (as the
// trainer finds them: linear between the evaluations around the target). A run without stored
// evaluations keeps no crossing.
void cross_targets_again(Grouping& g, const std::vector<JobRow>& jobs,
                         const std::map<int64_t, std::vector<EvalRow>>& evals,
                         const std::vector<double>& targets);

// analysis_notes.cpp: the prose notes.

// Appends to out.notes how the numbers were made and what was left out, after any note of
// the targets. Reads the tables, ratios and tuning report already in `out`; `ambiguous` and
// `unpaired` as ratio_points gives them.
void add_notes(const SweepRow& sweep, const Grouping& g, int ambiguous,
               const std::vector<std::string>& unpaired, SweepResults& out);

}  // namespace server
