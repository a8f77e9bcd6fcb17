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

}  // namespace

std::optional<std::string> early_stop_reason(const sweep_file::EarlyStop& rule, const Row& row,
                                             const Run& run, const RowEvals& evals,
                                             const std::vector<int64_t>& reported_steps) {
  if (!run.selects) return std::nullopt;
  const auto own = evals.find(run.job->id);
  if (own == evals.end()) return std::nullopt;
  const double budget = double(run.job->max_steps) * double(run.job->batch_tokens);
  for (size_t k = rule.rungs.size(); k-- > 0;) {  // the highest rung this report reached
    const EvalRow* mine = at_rung(own->second, rule.rungs[k] * budget);
    if (!mine) continue;
    if (std::find(reported_steps.begin(), reported_steps.end(), mine->step) == reported_steps.end())
      return std::nullopt;  // judged at this rung before (or the rung was reached earlier)
    std::vector<double> values = {rank_value(*mine)};
    for (const Cell& cell : row.cells)
      for (const Run* other : cell.runs) {
        if (other == &run || !other->selects) continue;
        const auto it = evals.find(other->job->id);
        if (it == evals.end()) continue;
        const double other_budget =
            double(other->job->max_steps) * double(other->job->batch_tokens);
        if (const EvalRow* e = at_rung(it->second, rule.rungs[k] * other_budget))
          values.push_back(rank_value(*e));
      }
    const int n = int(values.size());
    const int stop = int(std::floor(rule.stop_fraction * n));
    if (n < rule.min_runs || stop < 1) return std::nullopt;
    int better = 0;  // runs strictly better than this one
    for (int i = 1; i < n; ++i) better += values[size_t(i)] < values[0] ? 1 : 0;
    if (better < n - stop) return std::nullopt;
    char loss[32];
    std::snprintf(loss, sizeof loss, "%.4f", mine->val_loss);
    return "early stopping: val loss " + std::string(loss) + " at " + percent(rule.rungs[k]) +
           " of its budget (step " + std::to_string(mine->step) + ") ranked " +
           std::to_string(better + 1) + " of " + std::to_string(n) + " in row " + row.base_label +
           "; the worst " + std::to_string(stop) + " stop";
  }
  return std::nullopt;
}

}  // namespace server
