#include "server/results/analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "server/results/config_columns.h"
#include "server/results/selection.h"
#include "sweep_file/sweep_spec.h"
#include "trainer_core/train/run_records.h"

namespace server {

using nlohmann::json;

namespace {

// Default of a missing number. A double: json::value(key, NAN) would read the value as a float.
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// A run's amount to target `t` (tokens or FLOPs) and its whole budget in the same unit.
RunAmount amount(const Run& r, size_t t, bool flops) {
  RunAmount a;
  const trainer_core::RunSummary& s = *r.summary;
  a.budget = flops ? s.flops.training(double(s.tokens_seen), double(s.steps_completed))
                   : double(s.tokens_seen);
  if (t < s.targets.size() && s.targets[t].reached) {
    a.reached = true;
    a.value = flops ? s.targets[t].flops : s.targets[t].tokens;
  }
  return a;
}

// A run recorded before the optimizer's FLOPs were counted has no FLOPs figures (NaN).
bool known(const RunAmount& a) {
  return std::isfinite(a.budget) && (!a.reached || std::isfinite(a.value));
}

// The dataset a run trained on (its summary's dataset id; empty for runs that predate it).
std::string dataset_of(const Run& r) { return r.summary ? r.summary->dataset_id : std::string(); }

// Which runs of a cell a ratio pairs: its measuring runs (the tables' own), or every run (R at a
// tuned row's neighbouring lrs, where only the tuning seeds ran).
using CellRuns = std::vector<const Run*> Cell::*;

// Per seed, the run of a cell that stands for it (the lowest job id with a summary: several runs
// of one seed in one cell are the same experiment).
std::map<int64_t, const Run*> runs_by_seed(const Cell& cell, CellRuns which) {
  std::map<int64_t, const Run*> out;
  for (const Run* r : cell.*which)
    if (r->summary && !out.count(r->job->seed)) out[r->job->seed] = r;
  return out;
}

// Pairs the seeds two cells share; a seed whose run on either side has no result is left out,
// and the note says how many.
// `measured`: only these seeds pair (held-out selection); null: every seed.
PairedRatio ratio_of_cells(const Cell& num, const Cell& den, size_t target, bool flops,
                           const std::string& num_name, const std::string& den_name,
                           const std::set<int64_t>* measured = nullptr,
                           CellRuns which = &Cell::measuring) {
  const auto a = runs_by_seed(num, which), b = runs_by_seed(den, which);
  std::set<int64_t> seeds;
  for (const Run* r : num.*which)
    if (!measured || measured->count(r->job->seed)) seeds.insert(r->job->seed);
  std::set<int64_t> den_seeds;
  for (const Run* r : den.*which) den_seeds.insert(r->job->seed);
  std::vector<std::pair<RunAmount, RunAmount>> pairs;
  int left_out = 0, other_data = 0, unknown = 0;
  for (int64_t seed : seeds) {
    if (!den_seeds.count(seed)) continue;
    const auto ia = a.find(seed), ib = b.find(seed);
    if (ia == a.end() || ib == b.end()) {
      ++left_out;
      continue;
    }
    if (dataset_of(*ia->second) != dataset_of(*ib->second)) ++other_data;
    const RunAmount x = amount(*ia->second, target, flops), y = amount(*ib->second, target, flops);
    if (!known(x) || !known(y)) {
      ++unknown;
      continue;
    }
    pairs.push_back({x, y});
  }
  if (other_data > 0) {  // never compare runs that saw different data
    PairedRatio refused;
    refused.note = std::to_string(other_data) + " seed pair" +
                   (other_data == 1 ? " was" : "s were") +
                   " trained on different datasets: not compared";
    return refused;
  }
  PairedRatio p = paired_ratio(pairs, num_name, den_name);
  if (left_out > 0)
    p.note += "; " + std::to_string(left_out) + " seed pair" + (left_out == 1 ? "" : "s") +
              " left out (a run failed, was cancelled or has not finished)";
  if (unknown > 0)
    p.note += "; " + std::to_string(unknown) + " seed pair" + (unknown == 1 ? "" : "s") +
              " left out (FLOPs not recorded: a run from before the optimizer's FLOPs were "
              "counted)";
  return p;
}

// The per-run values the tables average over one cell's measuring runs: every one with a summary
// counts for spikes, memory and the first target; final PPL and inference speed come from succeeded
// runs.
struct CellValues {
  std::vector<double> ppl, loss, spikes, memory_mb, steps, tokens, seconds, flops, inference;
};

CellValues values_of(const Cell& cell) {
  CellValues v;
  for (const Run* r : cell.measuring) {
    if (!r->summary) continue;
    const trainer_core::RunSummary& s = *r->summary;
    if (r->job->state == JobState::kSucceeded) {
      if (std::isfinite(s.final_val_ppl)) v.ppl.push_back(s.final_val_ppl);
      if (std::isfinite(s.final_val_loss)) v.loss.push_back(s.final_val_loss);
      if (s.inference_tokens_per_second > 0) v.inference.push_back(s.inference_tokens_per_second);
    }
    v.spikes.push_back(double(s.loss_spikes.size()));
    v.memory_mb.push_back(double(s.peak_memory_bytes) / 1048576.0);
    if (!s.targets.empty() && s.targets[0].reached) {
      v.steps.push_back(s.targets[0].steps);
      v.tokens.push_back(s.targets[0].tokens);
      if (std::isfinite(s.targets[0].seconds)) v.seconds.push_back(s.targets[0].seconds);
      if (std::isfinite(s.targets[0].flops)) v.flops.push_back(s.targets[0].flops);
    }
  }
  return v;
}

// Table 2: one row per setting, on its best lr. The baseline marks rows (and deltas compare with
// it) only in a sweep that has ablations.
std::vector<AblationRow> ablation_table(const SweepRow& sweep, const std::vector<Row>& rows) {
  std::vector<AblationRow> out;
  bool has_ablations = false;
  for (const Row& row : rows) has_ablations = has_ablations || row.ablation != sweep.baseline;
  std::map<std::string, double> mean_ppl;
  for (const Row& row : rows) {
    const Cell& cell = row.best();
    AblationRow a;
    a.label = row.label;
    a.baseline = has_ablations && row.ablation == sweep.baseline;
    a.optimizer = row.optimizer;
    a.batch_tokens = row.batch_tokens;
    a.lr = row.choice;
    a.counts = cell.counts;
    a.runs = cell.counts.total;
    for (const Run* r : cell.measuring) {
      a.tuning_runs += r->selects && r->job->role != sweep_file::JobRole::kGrid ? 1 : 0;
      a.confirmation_runs += r->job->role == sweep_file::JobRole::kConfirmation ? 1 : 0;
    }
    const CellValues v = values_of(cell);
    a.val_ppl = stat_of(v.ppl, a.runs);
    a.final_val_loss = stat_of(v.loss, a.runs);
    a.steps_to_target = stat_of(v.steps, a.runs);
    a.spikes = stat_of(v.spikes, a.runs);
    a.peak_memory_mb = stat_of(v.memory_mb, a.runs);
    if (a.val_ppl.n > 0) mean_ppl[a.label] = a.val_ppl.mean;
    out.push_back(a);
  }
  // Delta vs the baseline row of the same grid cell: labels are "<ablation><grid suffix>".
  for (size_t i = 0; i < rows.size(); ++i) {
    AblationRow& a = out[i];
    if (!has_ablations || rows[i].ablation == sweep.baseline) continue;
    const std::string baseline_label =
        sweep.baseline + a.label.substr(std::min(a.label.size(), rows[i].ablation.size()));
    auto b = mean_ppl.find(baseline_label), r = mean_ppl.find(a.label);
    if (b != mean_ppl.end() && r != mean_ppl.end()) {
      a.has_delta = true;
      a.delta_val_ppl = r->second - b->second;
    }
  }
  return out;
}

// One row's runs for target `t` as selection.h reads them: a SeedRun per cell and seed of
// `seeds`; the run that stands for a seed is the one runs_by_seed picks (the lowest job id with a
// summary), else its latest run without one.
RowTable table_of(const Row& row, size_t t, const std::vector<int64_t>& seeds) {
  RowTable table;
  for (const Cell& cell : row.cells) {
    table.lrs.push_back(cell.lr);
    std::vector<SeedRun> runs(seeds.size());
    for (const Run* r : cell.runs) {
      const size_t s =
          size_t(std::lower_bound(seeds.begin(), seeds.end(), r->job->seed) - seeds.begin());
      SeedRun& x = runs[s];
      if (x.finished) continue;
      x.present = true;
      x.bad = counts_against_its_lr(r->job->state);
      if (r->summary) {
        x.finished = true;
        x.final_loss = r->summary->final_val_loss;
        x.amount = amount(*r, t, /*flops=*/false);
      }
    }
    table.cells.push_back(std::move(runs));
  }
  return table;
}

bool at_edge(const Row& row, size_t cell) {
  return row.cells.size() >= 2 && (cell == 0 || cell + 1 == row.cells.size());
}

// R_L(B): each Muon row against the AdamW row of the same setting, on the lrs the sweep's rule
// chooses for each target (selection.h; an adaptive sweep's planner chose already), ordered by
// group, target and batch size (as numbers). `ambiguous` counts Muon rows left without a ratio
// because several AdamW rows match; `unpaired` lists those no AdamW row matches.
std::vector<RatioPoint> ratio_points(const SweepRow& sweep, const std::vector<Row>& rows,
                                     int& ambiguous, std::vector<std::string>& unpaired) {
  using sweep_file::SelectionRule;
  const SelectionRule rule = sweep.analysis.selection;
  std::vector<RatioPoint> out;
  std::map<std::string, std::vector<const Row*>> adamw_rows;
  for (const Row& row : rows)
    if (row.optimizer == "adamw") adamw_rows[row.pair_key].push_back(&row);
  for (const Row& muon : rows) {
    if (muon.optimizer != "muon") continue;
    const auto it = adamw_rows.find(muon.pair_key);
    if (it == adamw_rows.end()) {
      unpaired.push_back(muon.label);
      continue;
    }
    if (it->second.size() > 1) {
      ++ambiguous;
      continue;
    }
    const Row& adamw = *it->second.front();
    std::set<int64_t> seed_set;
    for (const Row* row : {&adamw, &muon})
      for (const Cell& cell : row->cells)
        for (const Run* r : cell.runs) seed_set.insert(r->job->seed);
    const std::vector<int64_t> seeds(seed_set.begin(), seed_set.end());
    // The seeds that choose, and those that measure (every seed but under held_out_seeds).
    std::vector<size_t> choosing;
    std::set<int64_t> measuring;
    for (size_t i = 0; i < seeds.size(); ++i) {
      const auto& chosen_by = sweep.analysis.selection_seeds;
      const bool selects =
          rule != SelectionRule::kHeldOutSeeds ||
          std::find(chosen_by.begin(), chosen_by.end(), seeds[i]) != chosen_by.end();
      if (selects) choosing.push_back(i);
      if (rule != SelectionRule::kHeldOutSeeds || !selects) measuring.insert(seeds[i]);
    }
    for (size_t t = 0; t < sweep.targets.size(); ++t) {
      RatioPoint p;
      p.group = label_without(muon.label, {"optimizer=", "batch_tokens="});
      p.batch_tokens = muon.batch_tokens;
      p.target = sweep.targets[t];
      p.selection = rule;
      p.chosen_by_planner = sweep.tune.has_value();
      size_t a = adamw.selected, m = muon.selected;
      if (!p.chosen_by_planner && rule != SelectionRule::kFinalLoss) {
        const auto choose = [&](const Row& row, size_t fallback) {
          const size_t c =
              select_cell(table_of(row, t, seeds), SelectionRule::kTokensToTarget, choosing);
          return c == kNoCell ? fallback : c;
        };
        a = choose(adamw, a);
        m = choose(muon, m);
      }
      const std::set<int64_t>* measured =
          rule == SelectionRule::kHeldOutSeeds && !p.chosen_by_planner ? &measuring : nullptr;
      // A tuned row's neighbouring lrs ran on the tuning seeds only: R there pairs every run.
      const CellRuns at_neighbours = p.chosen_by_planner ? &Cell::runs : &Cell::measuring;
      const auto ratio_at = [&](size_t adamw_cell, size_t muon_cell,
                                CellRuns which = &Cell::measuring) {
        return ratio_of_cells(adamw.cells[adamw_cell], muon.cells[muon_cell], t, /*flops=*/false,
                              "AdamW", "Muon", measured, which);
      };
      p.ratio = ratio_at(a, m);
      p.adamw_lr = adamw.choice.decided ? adamw.cells[a].lr : 0;
      p.muon_lr = muon.choice.decided ? muon.cells[m].lr : 0;
      p.adamw_lr_at_edge = adamw.choice.decided && at_edge(adamw, a);
      p.muon_lr_at_edge = muon.choice.decided && at_edge(muon, m);
      // How R moves when one side's lr moves one step of its grid, the other kept.
      for (const int step : {-1, 1}) {
        if (adamw.choice.decided && a + step < adamw.cells.size())
          p.neighbours.push_back(
              {"adamw", adamw.cells[a + step].lr, ratio_at(a + step, m, at_neighbours)});
        if (muon.choice.decided && m + step < muon.cells.size())
          p.neighbours.push_back(
              {"muon", muon.cells[m + step].lr, ratio_at(a, m + step, at_neighbours)});
      }
      out.push_back(p);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const RatioPoint& a, const RatioPoint& b) {
    return std::tie(a.group, a.target, a.batch_tokens) <
           std::tie(b.group, b.target, b.batch_tokens);
  });
  return out;
}

// R_L(B)'s trend with the batch size per group and target (analysis.h, RatioTrend). `ratios` are
// ordered by group, target and batch size.
std::vector<RatioTrend> ratio_trends(const std::vector<RatioPoint>& ratios) {
  std::vector<RatioTrend> out;
  for (size_t begin = 0; begin < ratios.size();) {
    size_t end = begin;
    while (end < ratios.size() && ratios[end].group == ratios[begin].group &&
           ratios[end].target == ratios[begin].target)
      ++end;
    RatioTrend t;
    t.group = ratios[begin].group;
    t.target = ratios[begin].target;
    t.batch_sizes = int(end - begin);
    std::vector<std::pair<double, double>> xy;  // (log2 B, log R of one seed pair)
    for (size_t i = begin; i < end && t.withheld.empty(); ++i) {
      const RatioPoint& p = ratios[i];
      const std::string at = " at batch " + std::to_string(p.batch_tokens);
      if (p.ratio.kind != RatioKind::kEstimate)
        t.withheld = "R" + at + " is " +
                     (p.ratio.kind == RatioKind::kMissing ? "missing" : "a bound, not a value");
      else if (p.adamw_lr_at_edge || p.muon_lr_at_edge)
        t.withheld = std::string("the chosen ") + (p.adamw_lr_at_edge ? "AdamW" : "Muon") + " lr" +
                     at + " is at its grid's edge";
      for (double r : p.ratio.seed_ratios)
        xy.push_back({std::log2(double(p.batch_tokens)), std::log(r)});
    }
    t.points = int(xy.size());
    if (t.withheld.empty() && t.batch_sizes < 2) t.withheld = "one batch size";
    if (t.withheld.empty() && xy.size() < 3) t.withheld = "fewer than 3 seed pairs in all";
    if (t.withheld.empty()) {
      double mx = 0, my = 0;
      for (const auto& [x, y] : xy) {
        mx += x;
        my += y;
      }
      mx /= double(xy.size());
      my /= double(xy.size());
      double sxx = 0, sxy = 0;
      for (const auto& [x, y] : xy) {
        sxx += (x - mx) * (x - mx);
        sxy += (x - mx) * (y - my);
      }
      const double slope = sxy / sxx;
      double sse = 0;
      for (const auto& [x, y] : xy) sse += std::pow(y - my - slope * (x - mx), 2);
      const int df = int(xy.size()) - 2;
      const double half = student_t_975(df) * std::sqrt(sse / df / sxx);
      t.has_slope = true;
      t.per_doubling = std::exp(slope);
      t.low = std::exp(slope - half);
      t.high = std::exp(slope + half);
    }
    out.push_back(t);
    begin = end;
  }
  return out;
}

// Table 3, when more than one (attention, ffn) pair appears: every row, with FLOPs to target
// relative to the MHA + dense + AdamW row of the same setting.
std::vector<ArchitectureRow> architecture_table(const SweepRow& sweep,
                                                const std::vector<Row>& rows) {
  std::vector<ArchitectureRow> out;
  std::set<std::pair<std::string, std::string>> architectures;
  for (const Row& row : rows) architectures.insert({row.attention, row.ffn});
  if (architectures.size() < 2) return out;
  std::map<std::string, std::vector<const Row*>> references;
  for (const Row& row : rows)
    if (row.attention == "mha" && row.ffn == "dense" && row.optimizer == "adamw")
      references[row.reference_key].push_back(&row);
  for (const Row& row : rows) {
    const Cell& cell = row.best();
    ArchitectureRow a;
    a.label = row.label;
    a.attention = row.attention;
    a.ffn = row.ffn;
    a.optimizer = row.optimizer;
    a.lr = row.choice;
    a.counts = cell.counts;
    a.runs = cell.counts.total;
    const CellValues v = values_of(cell);
    a.seconds_to_target = stat_of(v.seconds, a.runs);
    a.inference_tokens_per_second = stat_of(v.inference, a.runs);
    a.peak_memory_mb = stat_of(v.memory_mb, a.runs);
    a.val_ppl = stat_of(v.ppl, a.runs);
    a.flops_to_target = stat_of(v.flops, a.runs);
    a.tokens_to_target = stat_of(v.tokens, a.runs);
    const auto ref = references.find(row.reference_key);
    if (ref != references.end() && ref->second.size() == 1 && !sweep.targets.empty()) {
      a.has_relative_flops = true;
      a.relative_flops = ratio_of_cells(cell, ref->second.front()->best(), 0, /*flops=*/true,
                                        "this row", "MHA + AdamW");
    }
    out.push_back(a);
  }
  return out;
}

// The lr-sensitivity table: every lr of every row that tried several, over the runs the choice
// compared (an adaptive sweep's confirmation seeds measure the chosen lr in the tables instead).
std::vector<LrPoint> lr_sensitivity(const std::vector<Row>& rows) {
  std::vector<LrPoint> out;
  for (const Row& row : rows) {
    if (row.cells.size() < 2) continue;
    for (size_t i = 0; i < row.cells.size(); ++i)
      out.push_back({row.label, row.optimizer, row.batch_tokens, row.cells[i].lr,
                     row.cells[i].selecting_val_loss, row.cells[i].selecting,
                     row.choice.decided && i == row.selected});
  }
  return out;
}

// Which data the runs trained on: one line naming the dataset, or the datasets when they differ.
std::string dataset_note(const std::vector<Run>& runs) {
  // id -> runs, one summary of that dataset
  std::map<std::string, std::pair<int, const trainer_core::RunSummary*>> datasets;
  for (const Run& r : runs)
    if (r.summary) {
      auto& [n, example] = datasets[dataset_of(r)];
      ++n;
      example = r.summary;
    }
  if (datasets.empty() || (datasets.size() == 1 && datasets.begin()->first.empty())) return "";
  auto describe = [](const std::string& id, int n, const trainer_core::RunSummary* d) {
    std::string text = (id.empty() ? std::string("unrecorded") : id.substr(0, 12)) + " (" +
                       std::to_string(n) + " run" + (n == 1 ? "" : "s");
    if (d && !id.empty())
      text += "; " + d->dataset_source + ", " + std::to_string(d->dataset_train_tokens) +
              " train / " + std::to_string(d->dataset_val_tokens) + " val tokens";
    return text + ")";
  };
  if (datasets.size() == 1) {
    const auto& [id, v] = *datasets.begin();
    return "Data: every run trained on dataset " + describe(id, v.first, v.second) + ".";
  }
  std::string text = "Runs trained on " + std::to_string(datasets.size()) + " different datasets: ";
  bool first = true;
  for (const auto& [id, v] : datasets) {
    text += (first ? "" : "; ") + describe(id, v.first, v.second);
    first = false;
  }
  return text + ". R_L(B) and Table 3 never pair runs of different datasets.";
}

// How an adaptive sweep chose and measured its lrs, and which rows its search left at an edge.
std::string tuning_note(const sweep_file::TuneSpec& tune, const std::vector<Row>& rows) {
  auto list = [](const std::vector<int64_t>& seeds) {
    std::string out;
    for (int64_t s : seeds) out += (out.empty() ? "" : ", ") + std::to_string(s);
    return "[" + out + "]";
  };
  std::string exhausted;
  int n_exhausted = 0;
  for (const Row& row : rows)
    if (row.choice.extensions_exhausted) {
      exhausted += (n_exhausted++ ? ", " : "") + row.label;
    }
  std::string note =
      "Adaptive sweep: each row's lr was chosen over its tuning runs (seeds " + list(tune.seeds) +
      ") only; a best lr at the edge of what had run was extended by a factor of " +
      json(tune.factor).dump() + " (at most " + std::to_string(tune.max_extensions) +
      " extensions per row), then the confirmation seeds " + list(tune.confirm_seeds) +
      " ran at the chosen lr. The tables and R_L(B) average the confirmation seeds' runs at the "
      "chosen lr; the lr-sensitivity table shows the tuning runs, which the choice compared.";
  if (n_exhausted > 0)
    note += " Not bracketed (still at an edge after " + std::to_string(tune.max_extensions) +
            " extensions): " + exhausted + ".";
  return note;
}

// How R_L(B) chose its lrs, in the words of docs/statistics.md, with the measured coverage.
std::string selection_note(const SweepRow& sweep) {
  using sweep_file::SelectionRule;
  if (sweep.tune) {
    const auto& confirm = sweep.tune->confirm_seeds;
    std::string shared;  // tuning seeds that measure too
    for (int64_t s : sweep.tune->seeds)
      if (std::find(confirm.begin(), confirm.end(), s) != confirm.end())
        shared += (shared.empty() ? "" : ", ") + std::to_string(s);
    return "R_L(B) lr choice (tuned): the planner's, by final val loss over the tuning seeds; R "
           "is measured on the confirmation seeds' runs at the chosen lrs" +
           (shared.empty() ? std::string(", which took no part in the choice.")
                           : ", tuning seed(s) " + shared +
                                 " included: they chose the lr too (confirm_seeds apart from "
                                 "tune.seeds keep choice and measurement apart).") +
           " R at the neighbouring lrs pairs the tuning seeds' runs, the only ones there.";
  }
  switch (sweep.analysis.selection) {
    case SelectionRule::kTokensToTarget:
      return "R_L(B) lr choice (tokens_to_target): for each target, each row takes the lr whose "
             "seeds reach it with the fewest tokens (geometric mean; an lr with a diverged, "
             "failed or cancelled seed, then one with a seed that never reached the target, ranks "
             "after the others). The same seeds choose and measure; the interval's coverage with "
             "this choice in the loop was measured at 0.96-0.97 (docs/statistics.md).";
    case SelectionRule::kFinalLoss:
      return "R_L(B) lr choice (final_loss): each row's lr with the lowest mean final val loss, "
             "for every target. Final loss and tokens to a target need not share an optimum, and "
             "the interval's coverage with this choice in the loop was measured as low as 0.82 "
             "(docs/statistics.md): prefer tokens_to_target or held_out_seeds.";
    case SelectionRule::kHeldOutSeeds: {
      std::string seeds;
      for (int64_t s : sweep.analysis.selection_seeds)
        seeds += (seeds.empty() ? "" : ", ") + std::to_string(s);
      return "R_L(B) lr choice (held_out_seeds): for each target, the lr with the fewest tokens "
             "to it over seeds [" +
             seeds + "] only; R is measured on the other seeds, which the choice never saw.";
    }
  }
  return "";
}

// Targets from the data (docs/statistics.md): the losses that every run of the rows' chosen cells
// reaches, and reaches only in the last third of its budget, L in [lo, hi) with lo = the highest
// of the runs' lowest val losses and hi = the lowest of their lowest val losses up to 2/3 of
// their steps (the curve read piecewise linearly). Two targets at a third and two thirds of the
// way down, rounded to 0.001 inside it; if the range is empty, one target: lo rounded up (every
// run reaches it, some before their last third), said in the note. The runs are the succeeded
// runs of the rows R_L(B) pairs when the sweep has such rows, else of every row.
struct DataTargets {
  std::vector<double> targets;
  std::string note;
};

DataTargets targets_from_data(const std::vector<Row>& rows,
                              const std::map<int64_t, std::vector<EvalRow>>& evals) {
  std::map<std::string, std::set<std::string>> optimizers_by_pair;
  for (const Row& row : rows) optimizers_by_pair[row.pair_key].insert(row.optimizer);
  const auto paired = [&](const Row& row) {
    const auto& o = optimizers_by_pair[row.pair_key];
    return o.count("adamw") && o.count("muon");
  };
  bool any_paired = false;
  for (const Row& row : rows) any_paired = any_paired || paired(row);
  double lo = -kInfinity, hi = kInfinity;
  int runs = 0;
  for (const Row& row : rows) {
    if ((any_paired && !paired(row)) || !row.choice.decided) continue;
    for (const Run* r : row.best().measuring) {
      const auto curve = evals.find(r->job->id);
      if (r->job->state != JobState::kSucceeded || curve == evals.end() || curve->second.empty())
        continue;
      const double cut = 2.0 / 3.0 * double(r->job->max_steps);
      double lowest = kInfinity, early = kInfinity;
      const std::vector<EvalRow>& e = curve->second;
      for (size_t i = 0; i < e.size(); ++i) {
        lowest = std::min(lowest, e[i].val_loss);
        if (double(e[i].step) <= cut) early = std::min(early, e[i].val_loss);
        if (i > 0 && double(e[i - 1].step) < cut && double(e[i].step) > cut) {
          const double f = (cut - double(e[i - 1].step)) / double(e[i].step - e[i - 1].step);
          early = std::min(early, e[i - 1].val_loss + f * (e[i].val_loss - e[i - 1].val_loss));
        }
      }
      lo = std::max(lo, lowest);
      hi = std::min(hi, early);
      ++runs;
    }
  }
  DataTargets d;
  if (runs == 0) {
    d.note = "Targets from the data: no finished run with stored evaluations yet, so no target.";
    return d;
  }
  char range[160];
  std::snprintf(range, sizeof range,
                "lowest losses of %d runs of the chosen lrs: every run reaches %.4f; none before "
                "the last third of its budget reaches below %.4f",
                runs, lo, hi);
  if (lo < hi) {
    for (double fraction : {1.0 / 3, 2.0 / 3}) {
      const double t = std::clamp(std::round((hi - fraction * (hi - lo)) * 1000) / 1000, lo, hi);
      if (t < hi && (d.targets.empty() || t != d.targets.back())) d.targets.push_back(t);
    }
  }
  if (d.targets.empty()) {
    d.targets.push_back(std::ceil(lo * 1000) / 1000);
    d.note = std::string("Targets from the data (") + range +
             "): no loss is reached by every run only in its last third, so the one target is "
             "the lowest loss every run reaches, which some runs reach earlier.";
  } else {
    d.note = std::string("Targets from the data (") + range +
             "): targets a third and two thirds of the way down that range; tokens, FLOPs and "
             "train time to them are read off each run's stored evaluations.";
  }
  return d;
}

// Every summary's crossings again, at `targets`, from the run's stored evaluations (as the
// trainer finds them: linear between the evaluations around the target). A run without stored
// evaluations keeps no crossing.
void cross_targets_again(Grouping& g, const std::vector<JobRow>& jobs,
                         const std::map<int64_t, std::vector<EvalRow>>& evals,
                         const std::vector<double>& targets) {
  for (const JobRow& job : jobs) {
    const auto s = g.summaries.find(job.id);
    if (s == g.summaries.end()) continue;
    std::vector<trainer_core::EvalPoint> points;
    if (const auto e = evals.find(job.id); e != evals.end())
      for (const EvalRow& row : e->second) points.push_back({row.step, row.val_loss, row.train_s});
    s->second.targets = trainer_core::find_target_crossings(
        points, targets, double(job.batch_tokens), s->second.flops);
  }
}

// What early stopping did: runs stopped and the compute they did not spend.
std::string early_stop_note(const TuningReport& t) {
  const double would_have = t.tuning_flops + t.stopped_flops_saved;
  char share[32];
  std::snprintf(share, sizeof share, "%.1f%%",
                would_have > 0 ? 100.0 * t.stopped_flops_saved / would_have : 0.0);
  char flops[32];
  std::snprintf(flops, sizeof flops, "%.3g", t.stopped_flops_saved);
  return "Early stopping (tuning runs only): " + std::to_string(t.stopped_runs) +
         " run(s) stopped at a rung, saving " + flops + " training FLOPs, " + share +
         " of what the tuning runs would have spent run to their end. Stopped runs rank after "
         "every finished one and never enter the tables or R_L(B).";
}

}  // namespace

SweepResults analyze_sweep(const SweepRow& stored, const std::vector<JobRow>& jobs,
                           const std::map<int64_t, std::string>& summaries,
                           const std::map<int64_t, std::vector<EvalRow>>& evals) {
  Grouping g;
  group_into_rows(jobs, summaries, stored.tune, g);
  // The sweep as the tables read it: its own targets, or those the data give.
  SweepRow sweep = stored;
  std::string targets_note;
  if (stored.analysis.targets == sweep_file::TargetRule::kFromData) {
    const DataTargets d = targets_from_data(g.rows, evals);
    sweep.targets = d.targets;
    targets_note = d.note;
    cross_targets_again(g, jobs, evals, d.targets);
  }
  SweepResults out;
  out.targets = sweep.targets;
  out.ablation = ablation_table(sweep, g.rows);
  int ambiguous = 0;
  std::vector<std::string> unpaired;
  out.ratios = ratio_points(sweep, g.rows, ambiguous, unpaired);
  out.trends = ratio_trends(out.ratios);
  out.architecture = architecture_table(sweep, g.rows);
  out.lr_sensitivity = lr_sensitivity(g.rows);
  if (!targets_note.empty()) out.notes.push_back(targets_note);

  // How the numbers were made.
  bool tuned = false, provisional = false;
  for (const Row& row : g.rows) {
    tuned = tuned || row.cells.size() > 1;
    provisional = provisional || row.choice.provisional;
  }
  if (tuned)
    out.notes.push_back(
        "Table 2 and Table 3 use each row's best learning rate: the lowest mean final val loss "
        "over seeds; an lr with a diverged, failed or cancelled seed ranks after every lr whose "
        "seeds all succeeded; ties go to the smaller lr.");
  if (sweep.tune) {
    out.tuning = tuning_report(g);
    out.notes.push_back(tuning_note(*sweep.tune, g.rows));
    if (sweep.tune->early_stop) out.notes.push_back(early_stop_note(*out.tuning));
  }
  if (provisional)
    out.notes.push_back(
        "Some runs have not finished: the tables and the lr choices are provisional.");
  if (!out.ratios.empty()) {
    out.notes.push_back(
        "R_L(B) = T_AdamW / T_Muon (tokens to the target val loss), geometric mean over seeds run "
        "by both; 95% Student-t interval on the log ratios from 3 seed pairs; a side that never "
        "reached the target within its budget turns the value into a bound (> or <).");
    if (tuned) out.notes.push_back(selection_note(sweep));
  }
  if (ambiguous > 0)
    out.notes.push_back(std::to_string(ambiguous) +
                        " Muon row(s) match several AdamW rows and get no R_L(B) rather "
                        "than an arbitrary pick.");
  if (!unpaired.empty() && !out.ratios.empty()) {
    std::string labels;
    for (size_t i = 0; i < unpaired.size() && i < 5; ++i) labels += (i ? ", " : "") + unpaired[i];
    if (unpaired.size() > 5) labels += " and " + std::to_string(unpaired.size() - 5) + " more";
    out.notes.push_back(
        std::to_string(unpaired.size()) +
        " Muon row(s) have no AdamW row of the same setting, so no R_L(B): " + labels + ".");
  }
  out.notes.push_back(dataset_note(g.runs));
  if (out.notes.back().empty()) out.notes.pop_back();
  if (g.unreadable > 0)
    out.notes.push_back(std::to_string(g.unreadable) +
                        " job(s) with an unreadable config left out.");
  if (g.unparsable_summaries > 0)
    out.notes.push_back(std::to_string(g.unparsable_summaries) +
                        " run summary(ies) that do not follow the run-record contract, counted as "
                        "runs without a result.");
  return out;
}

SweepResults analyze_stored_sweep(SweepStore& sweeps, MetricStore& metrics, const SweepRow& sweep) {
  const std::vector<JobRow> jobs = sweeps.jobs(sweep.id);
  const std::map<int64_t, std::string> summaries = metrics.summaries(sweep.id);
  std::map<int64_t, std::vector<EvalRow>> evals;
  if (sweep.analysis.targets == sweep_file::TargetRule::kFromData)
    evals = metrics.sweep_eval_points(sweep.id);
  return analyze_sweep(sweep, jobs, summaries, evals);
}

}  // namespace server
