// Targets from the data (analysis_parts.h, docs/statistics.md), and every run's crossings of them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "server/results/analysis_parts.h"
#include "trainer_core/train/run_records.h"

namespace server {

namespace {

// Default of a missing number. A double: json::value(key, NAN) would read the value as a float.
constexpr double kInfinity = std::numeric_limits<double>::infinity();

}  // namespace

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
    d.fallback = true;
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

}  // namespace server
