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
  if (rungs.empty()) return out;
  // A diverged rung has no finite loss: it did not reach anything.
  auto loss = [](const LadderPoint& p) {
    return std::isfinite(p.final_val_loss) ? p.final_val_loss
                                           : std::numeric_limits<double>::infinity();
  };
  if (loss(rungs.front()) <= target) {
    out.below_ladder = true;  // T <= the smallest budget: the ladder cannot place it
    return out;
  }
  for (size_t i = 0; i + 1 < rungs.size(); ++i) {
    const double hi = loss(rungs[i]), lo = loss(rungs[i + 1]);
    if (lo > target) continue;
    // Linear in log(tokens) between the two rungs: the first budget whose annealed loss is L.
    const double fraction = std::isfinite(hi) ? (hi - target) / (hi - lo) : 1.0;
    out.reached = true;
    out.tokens = std::exp(std::log(rungs[i].tokens) +
                          fraction * (std::log(rungs[i + 1].tokens) - std::log(rungs[i].tokens)));
    return out;
  }
  return out;  // even the largest budget misses L: T > it
}

std::vector<Row> read_targets_from_ladders(const sweep_file::BudgetLadder& ladder,
                                           const std::vector<double>& targets, Grouping& g) {
  // One ladder per row (its label without the budget) and seed: its rungs' runs.
  std::map<std::pair<std::string, int64_t>, std::vector<Run*>> ladders;
  for (Run& r : g.runs)
    ladders[{label_without(r.job->label, {"tokens="}), r.job->seed}].push_back(&r);
  const double largest = double(ladder.tokens.back());
  std::set<int64_t> trunks;
  for (auto& [key, runs] : ladders) {
    std::vector<LadderPoint> points;
    Run* trunk = nullptr;
    for (Run* r : runs) {
      const double budget = double(r->job->max_steps) * double(r->job->batch_tokens);
      if (budget == largest) trunk = r;
      if (r->summary) points.push_back({budget, r->summary->final_val_loss});
    }
    if (!trunk) continue;
    trunks.insert(trunk->job->id);
    if (!trunk->summary) continue;
    if (points.size() != ladder.tokens.size()) {
      trunk->summary = nullptr;  // a rung without a result: the seed is left out, with the others
      continue;
    }
    trainer_core::RunSummary& s = g.summaries.at(trunk->job->id);
    s.targets.assign(targets.size(), trainer_core::TargetCrossing{});
    s.tokens_seen = int64_t(largest);
    for (size_t t = 0; t < targets.size(); ++t) {
      const AnnealedCrossing c = annealed_tokens_to_target(points, targets[t]);
      s.targets[t].target = targets[t];
      s.targets[t].reached = c.reached;
      s.targets[t].tokens = c.tokens;
      s.targets[t].steps = c.tokens / double(trunk->job->batch_tokens);
      s.targets[t].seconds = s.targets[t].flops = std::nan("");  // not what a ladder measures
      if (c.below_ladder) trunk->below_ladder.insert(t);
    }
  }
  std::vector<Row> rows;
  for (const Row& row : g.rows)
    if (!row.cells.empty() && !row.cells[0].runs.empty() &&
        trunks.count(row.cells[0].runs[0]->job->id))
      rows.push_back(row);
  return rows;
}

}  // namespace server
