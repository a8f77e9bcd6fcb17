#include "server/tuning/early_stop.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace server {

namespace {

// A run's evaluation at a rung: the first at or past `tokens`; nullptr before it gets there.
const EvalRow* at_rung(const std::vector<EvalRow>& evals, double tokens) {
  for (const EvalRow& e : evals)
    if (e.tokens >= tokens) return &e;
  return nullptr;
}

double rank_value(const EvalRow& e) {  // a diverged evaluation ranks last
  return std::isfinite(e.val_loss) ? e.val_loss : std::numeric_limits<double>::infinity();
}

std::string percent(double fraction) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%g%%", fraction * 100);
  return buf;
}

bool going(const Run& r) { return !is_terminal(r.job->state); }

bool tuning_seed(const sweep_file::TuneSpec& tune, const Run& r) {
  const std::vector<int64_t>& seeds = tune.seeds_at(r.job->stage);
  return std::find(seeds.begin(), seeds.end(), r.job->seed) != seeds.end();
}
bool in_start_grid(const sweep_file::TuneSpec& tune, const Run& r) {
  return r.selects && r.job->role == sweep_file::JobRole::kTuning && tuning_seed(tune, r);
}
bool judged(const sweep_file::TuneSpec& tune, const Run& r) {
  return in_start_grid(tune, r) ||
         (r.selects && r.job->role == sweep_file::JobRole::kExtension && tuning_seed(tune, r));
}

// Every run of the row with its value at rung `fraction` of its own budget.
struct AtRung {
  const Run* run;
  const EvalRow* eval;
};
std::vector<AtRung> values_at(const Row& row, const RowEvals& evals, double fraction) {
  std::vector<AtRung> out;
  for (const Cell& cell : row.cells)
    for (const Run* r : cell.runs) {
      if (!r->selects) continue;
      const auto it = evals.find(r->job->id);
      if (it == evals.end()) continue;
      const double budget = double(r->job->max_steps) * double(r->job->batch_tokens);
      if (const EvalRow* e = at_rung(it->second, fraction * budget)) out.push_back({r, e});
    }
  return out;
}

}  // namespace

std::vector<StopDecision> early_stop_decisions(const sweep_file::TuneSpec& tune, const Row& row,
                                               const Run& reporter, const RowEvals& evals,
                                               const std::vector<int64_t>& reported_steps) {
  const sweep_file::EarlyStop& rule = *tune.early_stop;
  if (!judged(tune, reporter)) return {};
  const auto own = evals.find(reporter.job->id);
  if (own == evals.end()) return {};
  const double budget = double(reporter.job->max_steps) * double(reporter.job->batch_tokens);
  for (size_t k = rule.rungs.size(); k-- > 0;) {  // the highest rung this report reached
    const EvalRow* mine = at_rung(own->second, rule.rungs[k] * budget);
    if (!mine) continue;
    if (std::find(reported_steps.begin(), reported_steps.end(), mine->step) == reported_steps.end())
      return {};  // judged at this rung before (or the rung was reached earlier)
    const std::vector<AtRung> values = values_at(row, evals, rule.rungs[k]);
    // The rung waits for every start-grid run still going.
    for (const Cell& cell : row.cells)
      for (const Run* r : cell.runs)
        if (in_start_grid(tune, *r) && going(*r) &&
            std::none_of(values.begin(), values.end(), [&](const AtRung& v) { return v.run == r; }))
          return {};
    // The start grid's last arrival judges everyone who waited; a later arrival, itself.
    std::vector<const AtRung*> to_judge;
    for (const AtRung& v : values)
      if (v.run == &reporter ||
          (in_start_grid(tune, reporter) && judged(tune, *v.run) && going(*v.run)))
        to_judge.push_back(&v);
    const int n = int(values.size());
    const int stop = int(std::floor(rule.stop_fraction * n));
    if (n < rule.min_runs || stop < 1) return {};
    std::vector<StopDecision> out;
    for (const AtRung* candidate : to_judge) {
      int better = 0;  // runs strictly better than this one
      for (const AtRung& v : values)
        better += rank_value(*v.eval) < rank_value(*candidate->eval) ? 1 : 0;
      if (better < n - stop) continue;
      char loss[32];
      std::snprintf(loss, sizeof loss, "%.4f", candidate->eval->val_loss);
      out.push_back({candidate->run->job->id,
                     "early stopping: val loss " + std::string(loss) + " at " +
                         percent(rule.rungs[k]) + " of its budget (step " +
                         std::to_string(candidate->eval->step) + ") ranked " +
                         std::to_string(better + 1) + " of " + std::to_string(n) + " in row " +
                         row.base_label + "; the worst " + std::to_string(stop) + " stop"});
    }
    return out;
  }
  return {};
}

}  // namespace server
