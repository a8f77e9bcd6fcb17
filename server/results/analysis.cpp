#include "server/results/analysis.h"

#include "server/results/analysis_parts.h"

namespace server {

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
  if (sweep.tune) out.tuning = tuning_report(g);
  if (!targets_note.empty()) out.notes.push_back(targets_note);
  add_notes(sweep, g, ambiguous, unpaired, out);
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
