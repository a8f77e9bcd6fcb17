// Table 2, Table 3 and the lr-sensitivity table (analysis_parts.h), on each row's chosen cell.
#include <algorithm>
#include <cmath>
#include <set>

#include "server/results/analysis_parts.h"

namespace server {

namespace {

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

}  // namespace

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

std::vector<LrPoint> lr_sensitivity(const std::vector<Row>& rows) {
  std::vector<LrPoint> out;
  for (const Row& row : rows) {
    if (row.cells.size() < 2) continue;
    for (size_t i = 0; i < row.cells.size(); ++i)
      out.push_back({row.label, row.optimizer, row.batch_tokens, row.cells[i].lr,
                     row.cells[i].selecting_val_loss, row.cells[i].selecting,
                     row.choice.decided && i == row.selected, row.cells[i].wd});
  }
  return out;
}

}  // namespace server
