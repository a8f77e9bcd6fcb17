// Tokens to target at the end of annealing (analysis_parts.h: budget ladders).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "server/results/analysis_parts.h"

namespace server {

AnnealedCrossing annealed_tokens_to_target(std::vector<LadderPoint> rungs, double target) {
  std::sort(rungs.begin(), rungs.end(),
            [](const LadderPoint& a, const LadderPoint& b) { return a.tokens < b.tokens; });
  AnnealedCrossing out;
  // A rung without an annealed loss reaches nothing.
  auto reaches = [&](const LadderPoint& p) {
    return std::isfinite(p.final_val_loss) && p.final_val_loss <= target;
  };
  for (size_t i = 0; i < rungs.size(); ++i) {
    if (!reaches(rungs[i])) continue;
    out.reached = true;
    out.tokens = rungs[i].tokens;
    if (i == 0 || !std::isfinite(rungs[i - 1].final_val_loss)) {
      out.at_most = true;  // nothing below to interpolate from: T <= this budget
      return out;
    }
    // Linear in log(tokens) between the two rungs: the budget whose annealed loss is L.
    const double hi = rungs[i - 1].final_val_loss, lo = rungs[i].final_val_loss;
    const double fraction = (hi - target) / (hi - lo);
    out.tokens = std::exp(std::log(rungs[i - 1].tokens) +
                          fraction * (std::log(rungs[i].tokens) - std::log(rungs[i - 1].tokens)));
    return out;
  }
  return out;  // even the largest budget misses L: T > it
}

std::vector<Row> rows_at_budget(const std::vector<Row>& rows, int64_t tokens) {
  std::vector<Row> out;
  for (const Row& row : rows)
    if (!row.cells.empty() && !row.cells[0].runs.empty() &&
        row.cells[0].runs[0]->job->budget_tokens() == tokens)
      out.push_back(row);
  return out;
}

std::vector<Row> read_targets_from_ladders(const sweep_file::BudgetLadder& ladder,
                                           const std::vector<double>& targets, Grouping& g,
                                           LadderPoints* ladder_points) {
  // One ladder per row (its label without the budget) and seed: its rungs' runs.
  std::map<std::pair<std::string, int64_t>, std::vector<Run*>> ladders;
  for (Run& r : g.runs)
    ladders[{label_without(r.job->label, {"tokens="}), r.job->seed}].push_back(&r);
  const int64_t largest = ladder.tokens.back();
  for (auto& [key, runs] : ladders) {
    std::vector<LadderPoint> points;
    Run* trunk = nullptr;
    for (Run* r : runs) {
      const int64_t budget = r->job->budget_tokens();
      if (budget == largest) trunk = r;
      // Only a succeeded rung was annealed; a diverged one's summary holds its last loss, and a
      // cooldown rung whose trunk diverged before its branch step diverged with it (no summary of
      // its own: fork_rows.h): both reach nothing.
      if (r->job->state == JobState::kSucceeded && r->summary)
        points.push_back({double(budget), r->summary->final_val_loss});
      else if (r->job->state == JobState::kDiverged)
        points.push_back({double(budget), std::numeric_limits<double>::quiet_NaN()});
    }
    if (ladder_points) (*ladder_points)[key] = points;
    if (!trunk || !trunk->summary) continue;
    if (points.size() != ladder.tokens.size()) {
      trunk->summary = nullptr;  // a rung without a result: the seed is left out, with the others
      continue;
    }
    trainer_core::RunSummary& s = g.summaries.at(trunk->job->id);
    s.targets.assign(targets.size(), trainer_core::TargetCrossing{});
    s.tokens_seen = largest;
    for (size_t t = 0; t < targets.size(); ++t) {
      const AnnealedCrossing c = annealed_tokens_to_target(points, targets[t]);
      s.targets[t].target = targets[t];
      s.targets[t].reached = c.reached;
      s.targets[t].tokens = c.tokens;
      s.targets[t].steps = c.tokens / double(trunk->job->batch_tokens);
      s.targets[t].seconds = s.targets[t].flops = std::nan("");  // not what a ladder measures
      if (c.at_most) trunk->at_most_targets.insert(t);
    }
  }
  return rows_at_budget(g.rows, largest);
}

}  // namespace server
