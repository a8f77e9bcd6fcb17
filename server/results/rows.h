// The runs of a sweep grouped the way the paper's method reads them (docs/statistics.md):
//
//   cell  runs that differ only in their seed;
//   row   cells that differ only in optimizer.lr (one ablation / architecture / optimizer /
//         batch-size setting), with its lr chosen by the selection rule below; in a sweep that
//         tunes the weight decay too (tune.weight_decay), cells that differ only in the lr and
//         optimizer.weight_decay, a cell then being a point (lr, weight decay).
//
// Selection (select_lr): the cell with the lowest mean final val loss over its selecting runs; a
// cell with a diverged, failed or cancelled selecting run ranks after every cell whose runs all
// succeeded
// (fewer failures first); ties go to the smaller lr (then the smaller weight decay). The selecting
// runs are every run of a fixed sweep, and the tuning runs of a tuned one: confirmation seeds,
// which only the chosen lr has, measure the choice and never make it (a 3-seed mean against 1-seed
// means is no contest).
//
// Measurement: the tables and R_L(B) average a cell's measuring runs: every run of a fixed sweep;
// in a tuned sweep, the runs whose seed is in tune.confirm_seeds. A tuning seed measures only
// where confirm_seeds lists it too, so confirm_seeds apart from tune.seeds keeps the seed that
// chose an lr out of what that lr is credited with (docs/statistics.md).
// Shared by the analysis (the tables) and the tuning planner (which value to run next).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "server/storage/sweep_store.h"
#include "trainer_core/train/run_records.h"

namespace server {

struct Stat {
  double mean = 0, std = 0;  // std: sample standard deviation over runs (0 for one run)
  int n = 0;                 // runs that contributed
  int of = 0;                // runs it could have averaged over; n < of: a subset, shown as (n/of)
};
Stat stat_of(const std::vector<double>& values, int of);

// Outcomes of a cell's runs. unfinished: pending, assigned or running.
struct RunCounts {
  int total = 0, succeeded = 0, diverged = 0, failed = 0, cancelled = 0, stopped = 0,
      unfinished = 0;
};
void count(RunCounts& counts, JobState state);

// A run that ended without a result an lr can be judged on: diverged, failed or cancelled (a
// cancelled seed would leave the lr's mean over fewer seeds than its rivals'). Both selection
// rules rank an lr with such a seed after the others.
bool counts_against_its_lr(JobState state);
int runs_against_its_lr(const RunCounts& counts);

// Which learning rate a row uses, and how it was chosen.
struct LrChoice {
  bool decided = false;  // false: no lr of the row has a finished run yet (lr is then 0)
  double lr = 0;
  double weight_decay = 0;  // the chosen weight decay, when the sweep tunes it (else 0)
  int candidates = 1;       // distinct lrs (points, with a tuned weight decay) tried
  // The best lacks a tried neighbour on some side of a tuned axis (axis_neighbours): widen the
  // grid. In one dimension: the best lr is the smallest or largest tried.
  bool at_grid_edge = false;
  bool provisional = false;  // selecting runs of the row are unfinished; the choice may change
  // Tuned sweeps (tune_spec.h) only:
  bool tuned = false;                 // chosen over the tuning runs by the planner's rule
  int extensions = 0;                 // values tried beyond tune.start
  bool extensions_exhausted = false;  // at an edge after max_extensions: not bracketed
  bool bracketed = false;     // interior, each neighbour worse beyond the noise (bracketing.h)
  bool within_noise = false;  // a neighbour stays within the noise after every tune.noise seed
};

// One job with what the analysis reads from it.
struct Run {
  const JobRow* job = nullptr;
  const trainer_core::RunSummary* summary = nullptr;  // SUCCEEDED or DIVERGED runs that sent one
  double lr = 0;
  double wd = 0;         // optimizer.weight_decay when the sweep tunes it, else 0
  std::string row_key;   // empty: unreadable config
  bool selects = true;   // a selecting run (above): not a confirmation seed
  bool measures = true;  // a measuring run (above)
  // Targets (by index) whose tokens its budget ladder bounds from above only (RunAmount::at_most;
  // analysis_parts.h, read_targets_from_ladders).
  std::set<size_t> at_most_targets;
};

// Runs that differ only in their seed.
struct Cell {
  double lr = 0;
  double wd = 0;  // the weight decay when the sweep tunes it, else 0
  sweep_file::TunePoint point() const { return {lr, wd}; }
  std::vector<const Run*> runs;       // every run: what the planner reads
  std::vector<const Run*> measuring;  // the measuring runs: what the tables average
  RunCounts counts;                   // the measuring runs
  Stat final_val_loss;                // over succeeded measuring runs
  RunCounts selecting;                // the selecting runs only
  Stat selecting_val_loss;            // over succeeded selecting runs: what select_lr compares
};

// Cells that differ only in the learning rate: one setting of the sweep.
struct Row {
  std::string label;       // for display: unique among the sweep's rows
  std::string base_label;  // the job label without its tuned parts, as the jobs carry it
  std::string ablation, optimizer, attention, ffn;
  int64_t batch_tokens = 0;
  std::string key;            // equal for the runs of this row (a hash of their setting)
  std::string family_key;     // equal for the rows that differ only in width (telescoping)
  std::string law_key;        // equal for the rows that differ only in width and batch (lr_law.h)
  int stage = 0;              // a telescoping sweep's stage (its jobs'); else 0
  int width = 0;              // model.hidden
  std::string pair_key;       // shared with the rows it forms R_L(B) with (other optimizer)
  std::string reference_key;  // shared with the rows of other architectures (Table 3)
  bool tunes_weight_decay = false;  // cells are points (lr, weight decay)
  std::vector<Cell> cells;          // by increasing lr, then weight decay
  size_t selected = 0;
  LrChoice choice;
  const Cell& best() const { return cells[selected]; }
};

// One side of a cell along a tuned axis, and the nearest tried cell there: along the lr, the
// cells at the same weight decay; along the weight decay, the cells at the same lr.
struct AxisNeighbour {
  sweep_file::TuneAxis axis = sweep_file::TuneAxis::kLr;
  bool up = false;             // the larger value's side
  std::optional<size_t> cell;  // none tried on that side
};
// Both sides of every axis the row searches (the lr; the weight decay when tuned), lr first,
// down before up. An axis along which the whole row has one value (a fixed sweep's single lr)
// has no sides: nothing there to bracket or widen.
std::vector<AxisNeighbour> axis_neighbours(const Row& row, size_t cell);
// Whether `cell` lacks a tried neighbour on some side of a tuned axis: a best there is at the
// grid's edge (in one dimension: the smallest or largest lr tried).
bool has_open_side(const Row& row, size_t cell);

// The runs of a sweep grouped into rows and cells, each row with its lr chosen.
struct Grouping {
  std::map<int64_t, trainer_core::RunSummary> summaries;  // parsed, by job id
  int unparsable_summaries = 0;                           // left out, with a note
  std::vector<Run> runs;                                  // one per job; cells point into it
  std::vector<Row> rows;                                  // in expansion order
  int unreadable = 0;  // jobs whose config does not parse, left out
  // Rewinds (health rules' forks at a lower lr, sweep_file::JobRole::kRewind), left out: their
  // lr changed mid-run, so no cell's lr describes them; the run they rewound counts as stopped.
  int rewinds = 0;
};

// `jobs` and `summaries` must outlive `g` (runs point into them). With `tune`, each row's choice
// also says how many extensions it used and whether they ran out at an edge.
void group_into_rows(const std::vector<JobRow>& jobs,
                     const std::map<int64_t, std::string>& summaries,
                     const std::optional<sweep_file::TuneSpec>& tune, Grouping& g);

// The row of a job in `g`; nullptr when it is in none (unreadable config, a rewind, unknown id).
const Row* row_of(const Grouping& g, int64_t job_id);

// "baseline/optimizer=muon/lr=0.01/batch_tokens=1024" without the parts named in `drop`.
std::string label_without(const std::string& label, std::initializer_list<const char*> drop);

}  // namespace server
