// Scaling fits and the compute multiplier of budget ladders (analysis_parts.h, scaling_fit.h).
#include <cmath>
#include <functional>

#include "server/results/analysis_parts.h"

namespace server {

namespace {

// Bootstrap draws per fit: enough that the percentiles move by less than the seeds' noise. The
// results are computed per request: a row's draws cost about 45 ms, so rows with too few seeds
// for an interval to be shown draw none.
constexpr int kResamples = 1000;
int resamples_for(int seeds) { return seeds >= kMinSeedsForScalingInterval ? kResamples : 0; }

// A row's ladders (its one lr's runs): each seed's succeeded rungs from `from_tokens` up, as loss
// points.
std::vector<SeedLadder> seed_ladders(const Row& row, const LadderPoints& points,
                                     int64_t from_tokens) {
  std::vector<SeedLadder> out;
  for (const Run* r : row.cells[0].runs) {
    const auto it = points.find({label_without(r->job->label, {"tokens="}), r->job->seed});
    if (it == points.end()) continue;
    SeedLadder l{r->job->seed, {}};
    for (const LadderPoint& p : it->second)
      if (std::isfinite(p.final_val_loss) && p.tokens >= double(from_tokens))
        l.points.push_back({p.tokens, p.final_val_loss});
    if (!l.points.empty()) out.push_back(std::move(l));
  }
  return out;
}

// The bootstrap's seed: fixed per row, so that the same runs give the same interval.
uint64_t draw_seed(const std::string& group) { return std::hash<std::string>{}(group) | 1; }

}  // namespace

void add_scaling(const std::vector<Row>& rows, const LadderPoints& points,
                 const std::vector<int64_t>& budgets, int64_t fit_from_tokens, SweepResults& out) {
  // pair key -> its fitted AdamW rows, Muon rows, each with the index of its fit in out.scaling
  // (whose `observed` the multiplier reads: each row's ladders are read once)
  using Fitted = std::vector<std::pair<const Row*, size_t>>;
  std::map<std::string, std::pair<Fitted, Fitted>> pairs;
  for (const Row& row : rows) {
    if (row.cells.size() != 1) continue;  // several lrs: which one to fit is the lr rule's
    std::vector<SeedLadder> seeds = seed_ladders(row, points, fit_from_tokens);
    const std::string group = label_without(row.label, {"tokens="});
    const std::optional<FittedRow> fitted =
        fit_row(seeds, resamples_for(int(seeds.size())), draw_seed(group));
    if (!fitted) continue;
    ScalingRow s;
    s.group = group;
    s.optimizer = row.optimizer;
    s.batch_tokens = row.batch_tokens;
    s.lr = row.cells[0].lr;
    s.fit = fitted->fit;
    s.alpha_at_bound = alpha_at_bound(fitted->fit);
    s.draws = fitted->resamples;
    s.failed_draws = fitted->failed;
    s.seeds = fitted->seeds;
    s.points = fitted->points;
    s.has_interval = fitted->seeds >= kMinSeedsForScalingInterval;
    s.observed = std::move(seeds);
    if (s.has_interval) {
      s.E = fitted->E;
      s.A = fitted->A;
      s.alpha = fitted->alpha;
    }
    out.scaling.push_back(std::move(s));
    if (row.optimizer == "adamw" || row.optimizer == "muon")
      (row.optimizer == "adamw" ? pairs[row.pair_key].first : pairs[row.pair_key].second)
          .push_back({&row, out.scaling.size() - 1});
  }
  std::vector<double> at;
  for (int64_t b : budgets)
    if (b >= fit_from_tokens) at.push_back(double(b));
  for (const auto& [key, pair] : pairs) {
    // One row of each, as R_L(B) pairs them (several AdamW rows for one Muon row: no pick).
    if (pair.first.size() != 1 || pair.second.size() != 1) continue;
    const Row* muon = pair.second[0].first;
    const std::vector<SeedLadder>& a = out.scaling[pair.first[0].second].observed;
    const std::vector<SeedLadder>& m = out.scaling[pair.second[0].second].observed;
    MultiplierRow row;
    row.group = label_without(muon->label, {"tokens=", "optimizer=", "batch_tokens="});
    row.batch_tokens = muon->batch_tokens;
    for (const SeedLadder& l : a)
      for (const SeedLadder& k : m) row.seeds += l.seed == k.seed;
    row.at = multipliers(a, m, at, resamples_for(row.seeds), draw_seed(row.group + "/multiplier"));
    if (row.at.empty()) continue;
    row.has_interval = row.seeds >= kMinSeedsForScalingInterval;
    out.multipliers.push_back(row);
  }
  if (out.scaling.empty()) return;
  out.notes.push_back(
      "Scaling fits: each ladder row's annealed final val losses against its budgets fitted by "
      "L(D) = E + A·D^(−α) (least squares over every seed's rungs; a row with several lrs is not "
      "fitted). The compute multiplier is how many times D AdamW's fitted law needs to reach the "
      "loss Muon's reaches at D; marked extrapolated where AdamW's tokens lie outside its measured "
      "budgets, never where its law does not reach that loss at all. Intervals: a percentile "
      "bootstrap over seeds (" +
      std::to_string(kResamples) + " draws, seeds paired across optimizers), shown from " +
      std::to_string(kMinSeedsForScalingInterval) +
      " seeds on: with 3 seeds such intervals cover about 70% of the time, not 95% "
      "(docs/statistics.md).");
}

}  // namespace server
