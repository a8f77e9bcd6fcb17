// R_L(B) (analysis_parts.h): ratios of paired cells, the lrs each target's ratio is taken at, and
// the trend of R with the batch size.
#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "server/results/analysis_parts.h"
#include "server/results/selection.h"
#include "server/results/welch_slope.h"

namespace server {

namespace {

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
  a.at_most = r.at_most_targets.count(t) > 0;
  return a;
}

// A run recorded before the optimizer's FLOPs were counted has no FLOPs figures (NaN).
bool known(const RunAmount& a) {
  return std::isfinite(a.budget) && (!a.reached || std::isfinite(a.value));
}

// Per seed, the run of a cell that stands for it (the lowest job id with a summary: several runs
// of one seed in one cell are the same experiment).
std::map<int64_t, const Run*> runs_by_seed(const Cell& cell, CellRuns which) {
  std::map<int64_t, const Run*> out;
  for (const Run* r : cell.*which)
    if (r->summary && !out.count(r->job->seed)) out[r->job->seed] = r;
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

// Where `cell`'s measuring runs (only seeds in `measured`, when given) reach target `t`.
CrossingShare crossing_share(const Cell& cell, size_t t, const std::set<int64_t>* measured) {
  CrossingShare c;
  double sum = 0;
  for (const auto& [seed, run] : runs_by_seed(cell, &Cell::measuring)) {
    if (measured && !measured->count(seed)) continue;
    const RunAmount a = amount(*run, t, /*flops=*/false);
    if (!a.reached || !(a.budget > 0)) {
      ++c.missed;
      continue;
    }
    const double share = a.value / a.budget;
    c.earliest_share = c.reached == 0 ? share : std::min(c.earliest_share, share);
    sum += share;
    ++c.reached;
  }
  c.mean_share = c.reached > 0 ? sum / c.reached : 0;
  return c;
}

}  // namespace

std::string dataset_of(const Run& r) { return r.summary ? r.summary->dataset_id : std::string(); }

PairedRatio ratio_of_cells(const Cell& num, const Cell& den, size_t target, bool flops,
                           const std::string& num_name, const std::string& den_name,
                           const std::set<int64_t>* measured, CellRuns which) {
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
  // With no pair left, the reasons below are the whole story.
  if (pairs.empty() && left_out + unknown > 0) p.note.clear();
  if (left_out > 0)
    p.note += "; " + std::to_string(left_out) + " seed pair" + (left_out == 1 ? "" : "s") +
              " left out (a run failed, was cancelled or has not finished)";
  if (unknown > 0)
    p.note += "; " + std::to_string(unknown) + " seed pair" + (unknown == 1 ? "" : "s") +
              " left out (FLOPs not recorded: a run from before the optimizer's FLOPs were "
              "counted)";
  if (p.note.starts_with("; ")) p.note.erase(0, 2);
  return p;
}

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
      p.adamw_crossing = crossing_share(adamw.cells[a], t, measured);
      p.muon_crossing = crossing_share(muon.cells[m], t, measured);
      p.adamw_lr_at_edge = adamw.choice.decided && has_open_side(adamw, a);
      p.muon_lr_at_edge = muon.choice.decided && has_open_side(muon, m);
      // How R moves when one side's lr moves one step of its grid (at its weight decay), the
      // other kept.
      const auto lr_neighbour = [](const Row& row, size_t cell, bool up) {
        std::optional<size_t> out;
        if (row.choice.decided)
          for (const AxisNeighbour& n : axis_neighbours(row, cell))
            if (n.axis == sweep_file::TuneAxis::kLr && n.up == up) out = n.cell;
        return out;
      };
      for (const bool up : {false, true}) {
        if (const auto c = lr_neighbour(adamw, a, up))
          p.neighbours.push_back({"adamw", adamw.cells[*c].lr, ratio_at(*c, m, at_neighbours)});
        if (const auto c = lr_neighbour(muon, m, up))
          p.neighbours.push_back({"muon", muon.cells[*c].lr, ratio_at(a, *c, at_neighbours)});
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

std::vector<RatioTrend> ratio_trends(const std::vector<RatioPoint>& ratios, double margin) {
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
    t.margin = margin;
    std::vector<SampleGroup> groups;  // per batch size: log2 B, log R of each seed pair
    for (size_t i = begin; i < end && t.withheld.empty(); ++i) {
      const RatioPoint& p = ratios[i];
      const std::string at = " at batch " + std::to_string(p.batch_tokens);
      if (p.ratio.kind != RatioKind::kEstimate)
        t.withheld = "R" + at + " is " +
                     (p.ratio.kind == RatioKind::kMissing ? "missing" : "a bound, not a value");
      else if (p.adamw_lr_at_edge || p.muon_lr_at_edge)
        t.withheld = std::string("the chosen ") + (p.adamw_lr_at_edge ? "AdamW" : "Muon") + " lr" +
                     at + " is at its grid's edge";
      else if (p.ratio.seed_ratios.size() < 2)
        t.withheld = "one seed pair" + at + ": its noise is unknown";
      SampleGroup g{std::log2(double(p.batch_tokens)), {}};
      for (double r : p.ratio.seed_ratios) g.y.push_back(std::log(r));
      t.points += int(g.y.size());
      groups.push_back(std::move(g));
    }
    if (t.withheld.empty() && t.batch_sizes < 2) t.withheld = "one batch size";
    if (t.withheld.empty())
      if (const std::optional<SlopeEstimate> e = welch_slope(groups)) {
        t.has_slope = true;
        t.per_doubling = std::exp(e->slope);
        t.low = std::exp(e->low);
        t.high = std::exp(e->high);
        t.degrees_of_freedom = e->degrees_of_freedom;
        t.does_not_fall = t.low > margin;
      }
    out.push_back(t);
    begin = end;
  }
  return out;
}

}  // namespace server
