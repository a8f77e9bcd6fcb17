#include "server/results/analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "server/results/config_columns.h"
#include "sweep_file/sweep_spec.h"
#include "trainer_core/train/run_records.h"

namespace server {

using nlohmann::json;

namespace {

// Default of a missing number. A double: json::value(key, NAN) would read the value as a float.
constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

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

// Per seed, the run of a cell that stands for it (the lowest job id with a summary: several runs
// of one seed in one cell are the same experiment).
std::map<int64_t, const Run*> runs_by_seed(const Cell& cell) {
  std::map<int64_t, const Run*> out;
  for (const Run* r : cell.runs)
    if (r->summary && !out.count(r->job->seed)) out[r->job->seed] = r;
  return out;
}

// Pairs the seeds two cells share; a seed whose run on either side has no result is left out,
// and the note says how many.
PairedRatio ratio_of_cells(const Cell& num, const Cell& den, size_t target, bool flops,
                           const std::string& num_name, const std::string& den_name) {
  const auto a = runs_by_seed(num), b = runs_by_seed(den);
  std::set<int64_t> seeds;
  for (const Run* r : num.runs) seeds.insert(r->job->seed);
  std::set<int64_t> den_seeds;
  for (const Run* r : den.runs) den_seeds.insert(r->job->seed);
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

// The per-run values the tables average over one cell: every run with a summary counts for
// spikes, memory and the first target; final PPL and inference speed come from succeeded runs.
struct CellValues {
  std::vector<double> ppl, spikes, memory_mb, steps, seconds, flops, inference;
};

CellValues values_of(const Cell& cell) {
  CellValues v;
  for (const Run* r : cell.runs) {
    if (!r->summary) continue;
    const trainer_core::RunSummary& s = *r->summary;
    if (r->job->state == JobState::kSucceeded) {
      if (std::isfinite(s.final_val_ppl)) v.ppl.push_back(s.final_val_ppl);
      if (s.inference_tokens_per_second > 0) v.inference.push_back(s.inference_tokens_per_second);
    }
    v.spikes.push_back(double(s.loss_spikes.size()));
    v.memory_mb.push_back(double(s.peak_memory_bytes) / 1048576.0);
    if (!s.targets.empty() && s.targets[0].reached) {
      v.steps.push_back(s.targets[0].steps);
      v.seconds.push_back(s.targets[0].seconds);
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
    for (const Run* r : cell.runs) {
      a.tuning_runs += r->selects && r->job->role != sweep_file::JobRole::kGrid ? 1 : 0;
      a.confirmation_runs += r->job->role == sweep_file::JobRole::kConfirmation ? 1 : 0;
    }
    const CellValues v = values_of(cell);
    a.val_ppl = stat_of(v.ppl, a.runs);
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

// R_L(B): each Muon row against the AdamW row of the same setting, on their best lrs, ordered by
// group, target and batch size (as numbers). `ambiguous` counts Muon rows left without a ratio.
std::vector<RatioPoint> ratio_points(const SweepRow& sweep, const std::vector<Row>& rows,
                                     int& ambiguous) {
  std::vector<RatioPoint> out;
  std::map<std::string, std::vector<const Row*>> adamw_rows;
  for (const Row& row : rows)
    if (row.optimizer == "adamw") adamw_rows[row.pair_key].push_back(&row);
  for (const Row& muon : rows) {
    if (muon.optimizer != "muon") continue;
    const auto it = adamw_rows.find(muon.pair_key);
    if (it == adamw_rows.end()) continue;
    if (it->second.size() > 1) {
      ++ambiguous;
      continue;
    }
    const Row& adamw = *it->second.front();
    for (size_t t = 0; t < sweep.targets.size(); ++t) {
      RatioPoint p;
      p.group = label_without(muon.label, {"optimizer=", "batch_tokens="});
      p.batch_tokens = muon.batch_tokens;
      p.target = sweep.targets[t];
      p.ratio = ratio_of_cells(adamw.best(), muon.best(), t, /*flops=*/false, "AdamW", "Muon");
      p.adamw_lr = adamw.choice.lr;
      p.muon_lr = muon.choice.lr;
      out.push_back(p);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const RatioPoint& a, const RatioPoint& b) {
    return std::tie(a.group, a.target, a.batch_tokens) <
           std::tie(b.group, b.target, b.batch_tokens);
  });
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
      " ran at the chosen lr. The tables and R_L(B) average every run at the chosen lr; the "
      "lr-sensitivity table shows the tuning runs, which the choice compared.";
  if (n_exhausted > 0)
    note += " Not bracketed (still at an edge after " + std::to_string(tune.max_extensions) +
            " extensions): " + exhausted + ".";
  return note;
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

SweepResults analyze_sweep(const SweepRow& sweep, const std::vector<JobRow>& jobs,
                           const std::map<int64_t, std::string>& summaries) {
  Grouping g;
  group_into_rows(jobs, summaries, sweep.tune, g);
  SweepResults out;
  out.targets = sweep.targets;
  out.ablation = ablation_table(sweep, g.rows);
  int ambiguous = 0;
  out.ratios = ratio_points(sweep, g.rows, ambiguous);
  out.architecture = architecture_table(sweep, g.rows);
  out.lr_sensitivity = lr_sensitivity(g.rows);

  // How the numbers were made.
  bool tuned = false, provisional = false;
  for (const Row& row : g.rows) {
    tuned = tuned || row.cells.size() > 1;
    provisional = provisional || row.choice.provisional;
  }
  if (tuned)
    out.notes.push_back(
        "Each row uses its best learning rate: the lowest mean final val loss over seeds; an lr "
        "with a "
        "diverged or failed seed ranks after every lr whose seeds all succeeded; ties go to the "
        "smaller lr.");
  if (sweep.tune) {
    out.tuning = tuning_report(g);
    out.notes.push_back(tuning_note(*sweep.tune, g.rows));
    if (sweep.tune->early_stop) out.notes.push_back(early_stop_note(*out.tuning));
  }
  if (provisional)
    out.notes.push_back(
        "Some runs have not finished: the tables and the lr choices are provisional.");
  if (!out.ratios.empty())
    out.notes.push_back(
        "R_L(B) = T_AdamW / T_Muon (tokens to the target val loss), geometric mean over seeds run "
        "by both; 95% Student-t interval on the log ratios from 3 seed pairs; a side that never "
        "reached "
        "the target within its budget turns the value into a bound (> or <).");
  if (ambiguous > 0)
    out.notes.push_back(std::to_string(ambiguous) +
                        " Muon row(s) match several AdamW rows and get no R_L(B) rather "
                        "than an arbitrary pick.");
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

}  // namespace server
