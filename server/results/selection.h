// Choosing a row's lr apart from what it measures (docs/statistics.md, "Choosing the lr apart
// from what it measures"), for R_L(B): the rule of the sweep's analysis section
// (sweep_file/analysis_spec.h), and an interval that includes the choice.
//
// The data of one row for one target is a table: its cells (lrs, increasing) × the seeds of the
// pair it forms (RowTable). select_cell applies a rule over a multiset of seeds:
//   final_loss        (bad > 0, bad, mean final val loss over succeeded runs)
//   tokens_to_target  (bad > 0, bad, runs that never reached the target, mean log tokens to it
//                      over those that did, mean final val loss)
// smallest first; bad = diverged, failed or cancelled runs; ties go to the smaller lr; a cell
// without a finished run on those seeds is not a candidate (a diverged run is finished: it has a
// summary). held_out_seeds chooses by tokens_to_target over its selection seeds only.
//
// The interval: with final_loss or tokens_to_target, the same seeds choose and measure, so the
// chosen lr is the one whose seeds happened to do well (the winner's curse) and a t-interval at
// it ignores that. selection_bootstrap resamples the pair's seeds with replacement, re-runs the
// choice on both rows inside every resample, and takes the 2.5% and 97.5% quantiles of the
// geometric-mean ratio: the percentile bootstrap with the selection in the loop. With
// held_out_seeds the choice does not see the measuring seeds and the t-interval stands.
// Coverage of each, with the selection in the loop, is measured in analysis_test.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "server/results/paired_ratio.h"
#include "sweep_file/analysis_spec.h"

namespace server {

// One seed's run in one cell, as the choice and the ratio read it.
struct SeedRun {
  bool present = false;   // the cell has a run of this seed
  bool bad = false;       // it diverged, failed or was cancelled
  bool finished = false;  // it has a summary (succeeded, or diverged with one)
  double final_loss = 0;  // succeeded runs only (succeeded = finished && !bad)
  RunAmount amount;       // to the target: tokens (finished runs)
};

struct RowTable {
  std::vector<double> lrs;                  // the cells' lrs, increasing
  std::vector<std::vector<SeedRun>> cells;  // [cell][seed]; every cell has one entry per seed
};

constexpr size_t kNoCell = static_cast<size_t>(-1);

// The chosen cell over `seeds` (indices into the table's seeds; repeats count again), or kNoCell
// when no cell has a finished run on them. held_out_seeds is chosen as tokens_to_target: the
// caller passes the selection seeds.
size_t select_cell(const RowTable& row, sweep_file::SelectionRule rule,
                   const std::vector<size_t>& seeds);

// The geometric mean of num/den over the seeds both cells finished (a side that never reached
// the target stands in with its budget, as paired_ratio does); nullopt: no such seed.
std::optional<double> pooled_ratio(const RowTable& num, size_t num_cell, const RowTable& den,
                                   size_t den_cell, const std::vector<size_t>& seeds);

struct BootstrapInterval {
  bool has_interval = false;
  double low = 0, high = 0;
  int resamples = 0;  // resamples that gave a ratio
  int skipped = 0;    // resamples where a row had no candidate or no seed paired
};

// The percentile bootstrap above: `resamples` draws of the seeds (from a generator seeded with
// `rng_seed`, so the same data give the same interval), the choice re-run on both rows in each.
// No interval when more than 5% of the draws give no ratio.
BootstrapInterval selection_bootstrap(const RowTable& num, const RowTable& den,
                                      sweep_file::SelectionRule rule, int resamples,
                                      uint64_t rng_seed);

constexpr int kBootstrapResamples = 2000;

}  // namespace server
