#include "server/results/analysis.h"

#include <cstdio>

#include "server/results/analysis_parts.h"

namespace server {

namespace {
// R_L(B) at the end of annealing for a sweep with budgets: each seed's T(L) from its ladder
// (analysis_parts.h), paired as the within-run ratios are, and put before them.
void add_annealed_ratios(const SweepRow& sweep, const std::vector<JobRow>& jobs,
                         const std::map<int64_t, std::string>& summaries, SweepResults& out) {
  Grouping g;
  group_into_rows(jobs, summaries, sweep.tune, g);
  LadderPoints points;
  const std::vector<Row> ladders =
      read_targets_from_ladders(*sweep.budgets, sweep.targets, g, &points);
  add_scaling(ladders, points, sweep.budgets->tokens, sweep.analysis.fit_from_tokens, out);
  if (sweep.analysis.fit_from_tokens != 0 && !out.scaling.empty())
    out.notes.push_back("Scaling fits and the compute multiplier use the budgets from " +
                        std::to_string(sweep.analysis.fit_from_tokens) +
                        " tokens up (analysis.fit_from_tokens); the ratios read every budget.");
  int ambiguous = 0;  // said already by the within-run ratios of the same rows
  std::vector<std::string> unpaired;
  std::vector<RatioPoint> annealed = ratio_points(sweep, ladders, ambiguous, unpaired);
  for (RatioPoint& p : annealed) {
    p.reading = TargetReading::kAnnealed;
    p.group = label_without(p.group, {"tokens="});
  }
  std::vector<RatioTrend> trends = ratio_trends(annealed, sweep.analysis.trend_margin);
  out.pareto = pareto_frontiers(ladders, sweep.targets, TargetReading::kAnnealed);
  for (RatioTrend& t : trends) t.reading = TargetReading::kAnnealed;
  out.ratios.insert(out.ratios.begin(), annealed.begin(), annealed.end());
  out.trends.insert(out.trends.begin(), trends.begin(), trends.end());
  std::string budgets;
  for (int64_t b : sweep.budgets->tokens)
    budgets += (budgets.empty() ? "" : ", ") + std::to_string(b);
  // What the ladder trains: a fork only its steps after the branch (its prefix is its trunk's).
  double trained = 0, separately = 0;
  for (const JobRow& j : jobs) {
    const int64_t from = j.fork ? j.fork->plan.branch_step : 0;
    trained += double(j.budget_tokens() - from * j.batch_tokens);
    separately += double(j.budget_tokens());
  }
  char compute[200];
  std::snprintf(compute, sizeof compute,
                " Compute: its runs train %.4g tokens (FLOPs in proportion: one model per row), "
                "%.2f of the %.4g that a separate run per budget would.",
                trained, separately > 0 ? trained / separately : 0.0, separately);
  out.notes.push_back(
      "R_L(B) at the end of annealing (T read: annealed): each seed's tokens to a target come from "
      "its budget ladder, the annealed final val loss of every budget (" +
      budgets + " tokens" +
      (sweep.budgets->via == sweep_file::LadderVia::kCooldown
           ? ", each a WSD cooldown forked off the largest"
           : ", each its own run") +
      "), linear in log(tokens) between the two budgets around the target; a bound where even the "
      "largest budget misses it (T above the ladder) or the smallest reaches it already (T at "
      "most that budget). The ratios read within each run (where its curve first crosses "
      "the target, early speed at its lr then) follow as T read: within-run." +
      std::string(compute));
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
  bool data_fallback = false;
  if (stored.analysis.targets == sweep_file::TargetRule::kFromData) {
    const DataTargets d = targets_from_data(g.rows, evals);
    sweep.targets = d.targets;
    targets_note = d.note;
    data_fallback = d.fallback;
    cross_targets_again(g, jobs, evals, d.targets);
  }
  SweepResults out;
  out.targets = sweep.targets;
  out.target_source = stored.analysis.targets != sweep_file::TargetRule::kFromData
                          ? TargetSource::kGiven
                      : data_fallback ? TargetSource::kFromDataFallback
                                      : TargetSource::kFromData;
  // Tables 2 and 3 (and the lr sensitivity) at one budget of a ladder, when the sweep says which.
  const int64_t at = sweep.analysis.tables_at_budget;
  const std::vector<Row> table_rows = at == 0 ? g.rows : rows_at_budget(g.rows, at);
  if (at != 0)
    out.notes.push_back("Table 2, Table 3 and the lr sensitivity read every row at its budget of " +
                        std::to_string(at) +
                        " tokens (analysis.tables_at_budget); R_L(B) reads every budget.");
  out.ablation = ablation_table(sweep, table_rows);
  int ambiguous = 0;
  std::vector<std::string> unpaired;
  out.ratios = ratio_points(sweep, g.rows, ambiguous, unpaired);
  out.trends = ratio_trends(out.ratios, sweep.analysis.trend_margin);
  // A ladder's rungs are rows of their own: its plane is read at the end of annealing only.
  if (!sweep.budgets)
    out.pareto = pareto_frontiers(g.rows, sweep.targets, TargetReading::kWithinRun);
  if (sweep.budgets) add_annealed_ratios(sweep, jobs, summaries, out);
  out.architecture = architecture_table(sweep, table_rows);
  out.lr_sensitivity = lr_sensitivity(table_rows);
  out.lr_laws = lr_laws(g.rows);
  if (sweep.tune) out.tuning = tuning_report(g);
  out.importance = setting_importance(jobs, g.runs);
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
