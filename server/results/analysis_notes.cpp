// The prose notes of the results (analysis_parts.h): how the numbers were made, in the words of
// docs/statistics.md, and what was left out.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "server/results/analysis_parts.h"

namespace server {

using nlohmann::json;

namespace {

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

// Which runs were not trained again but took a finished run's results (reuse: true), and from
// where: every one is listed, so a reader can trace each number to the run that made it.
std::string reuse_note(const std::vector<Run>& runs) {
  std::string list;
  int reused = 0;
  for (const Run& r : runs)
    if (r.job->reused) {
      list += std::string(reused++ ? ", " : "") + "job " + std::to_string(r.job->id) +
              " from job " + std::to_string(r.job->reused->job_id) + " (sweep " +
              std::to_string(r.job->reused->sweep_id) + ")";
    }
  if (reused == 0) return "";
  return "Reused: " + std::to_string(reused) + " of " + std::to_string(runs.size()) +
         " runs were not trained again; each took the results of a finished run with the same "
         "config, lineage, dataset and trainer binary (reuse: true), its timings those of the "
         "machine that trained it: " +
         list + ".";
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
  // Confirmation seeds that are tuning seeds too add no run: their run at the chosen lr is the
  // tuning run that chose it.
  std::vector<int64_t> extra;
  // The last stage's tuning seeds: a telescope's final seeds (tune_spec.h, seeds_at).
  const std::vector<int64_t>& last = tune.seeds_at(tune.stages() - 1);
  for (int64_t s : tune.confirm_seeds)
    if (std::find(last.begin(), last.end(), s) == last.end()) extra.push_back(s);
  std::string note =
      "Adaptive sweep: each row's lr was chosen over its tuning runs (seeds " + list(tune.seeds) +
      ") only" +
      (tune.weight_decay ? " (lr and weight decay together: each row's cells are points, extended "
                           "and bracketed along each axis)"
                         : "") +
      "; a best lr at the edge of what had run was extended by a factor of " +
      json(tune.factor).dump() +
      (tune.weight_decay ? " (a weight decay by " + json(tune.weight_decay->factor).dump() + ")"
                         : "") +
      " (at most " + std::to_string(tune.max_extensions) + " extensions per row), then " +
      (extra.empty() ? "no confirmation runs: the confirmation seeds " + list(tune.confirm_seeds) +
                           " are tuning seeds, so the tables and R_L(B) use the tuning runs at "
                           "the chosen lr, which also chose it."
                     : "the confirmation seeds " + list(extra) +
                           " ran at the chosen lr. The tables and R_L(B) average the "
                           "confirmation seeds' runs (" +
                           list(tune.confirm_seeds) + ") at the chosen lr.") +
      " The lr-sensitivity table shows the tuning runs, which the choice compared.";
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

// The Muon rows without an AdamW row of the same setting, the first five by label.
std::string unpaired_note(const std::vector<std::string>& unpaired) {
  std::string labels;
  for (size_t i = 0; i < unpaired.size() && i < 5; ++i) labels += (i ? ", " : "") + unpaired[i];
  if (unpaired.size() > 5) labels += " and " + std::to_string(unpaired.size() - 5) + " more";
  return std::to_string(unpaired.size()) +
         " Muon row(s) have no AdamW row of the same setting, so no R_L(B): " + labels + ".";
}

}  // namespace

void add_notes(const SweepRow& sweep, const Grouping& g, int ambiguous,
               const std::vector<std::string>& unpaired, SweepResults& out) {
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
    out.notes.push_back(tuning_note(*sweep.tune, g.rows));
    if (sweep.tune->early_stop) out.notes.push_back(early_stop_note(*out.tuning));
  }
  if (provisional)
    out.notes.push_back(
        "Some runs have not finished: the tables and the lr choices are provisional.");
  if (!out.ratios.empty()) {
    out.notes.push_back(
        "R_L(B) = T_AdamW / T_Muon (tokens to the target val loss), geometric mean over seeds run "
        "by both; 95% Student-t interval on the log ratios, shown from 3 seed pairs on (each "
        "ratio gives its pairs); a side that never "
        "reached the target within its budget turns the value into a bound (> or <).");
    if (tuned) out.notes.push_back(selection_note(sweep));
  }
  // What was left out.
  if (ambiguous > 0)
    out.notes.push_back(std::to_string(ambiguous) +
                        " Muon row(s) match several AdamW rows and get no R_L(B) rather "
                        "than an arbitrary pick.");
  if (!unpaired.empty() && !out.ratios.empty()) out.notes.push_back(unpaired_note(unpaired));
  for (std::string note : {dataset_note(g.runs), reuse_note(g.runs)})
    if (!note.empty()) out.notes.push_back(std::move(note));
  if (g.unreadable > 0)
    out.notes.push_back(std::to_string(g.unreadable) +
                        " job(s) with an unreadable config left out.");
  if (g.rewinds > 0)
    out.notes.push_back(std::to_string(g.rewinds) +
                        " rewound run(s) (a health rule's fork at a lower lr) left out: their lr "
                        "changed mid-run, so no cell's lr describes them; each run they rewound "
                        "counts as stopped.");
  if (g.unparsable_summaries > 0)
    out.notes.push_back(std::to_string(g.unparsable_summaries) +
                        " run summary(ies) that do not follow the run-record contract, counted as "
                        "runs without a result.");
}

}  // namespace server
