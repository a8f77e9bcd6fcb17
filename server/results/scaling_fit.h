// Scaling fits and the compute multiplier (docs/statistics.md, "Scaling fits and the compute
// multiplier"): a row's annealed final losses against its token budgets (a budget ladder) fitted
// by L(D) = E + A·D^(−α), and how many times the tokens one optimizer needs to reach the loss the
// other reaches at D, with intervals by a bootstrap over seeds.
//
// The fit: least squares over every seed's points. For a fixed α the law is linear in (E, A),
// solved exactly; α is then found by minimizing that profiled residual sum of squares with Brent's
// method (Boost.Math) around the best of a log-spaced scan of [kMinAlpha, kMaxAlpha] (variable
// projection). Budgets are scaled by their geometric mean for the conditioning. A fit whose A is
// not positive (loss not falling with budget) is no fit.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace server {

struct LossPoint {
  double tokens = 0;
  double loss = 0;
};

struct PowerLaw {
  double E = 0, A = 0, alpha = 0;
  double loss_at(double tokens) const;
  // The budget at which the law's loss is `loss`; +infinity when loss <= E (never reached).
  double tokens_to(double loss) const;
};

constexpr double kMinAlpha = 0.02, kMaxAlpha = 3.0;

// Whether a fitted α sits at the end of the range searched: the data ask for a steeper or
// flatter law than the fit may give, and its E and A are then not a power law's.
bool alpha_at_bound(const PowerLaw& law);

// nullopt with fewer than 4 points or 3 distinct budgets, or when no α in range gives A > 0.
std::optional<PowerLaw> fit_power_law(const std::vector<LossPoint>& points);

// How many times the tokens of `slower` reach the loss `faster` reaches at `tokens`:
// slower.tokens_to(faster.loss_at(tokens)) / tokens (+infinity: never).
double compute_multiplier(const PowerLaw& slower, const PowerLaw& faster, double tokens);

struct Interval {
  double low = 0, high = 0;
};

// One seed's ladder: its annealed losses at its budgets.
struct SeedLadder {
  int64_t seed = 0;
  std::vector<LossPoint> points;
};

struct FittedRow {
  PowerLaw fit;                   // on every seed's points
  Interval E, A, alpha;           // 2.5th and 97.5th percentiles of the bootstrap refits
  int seeds = 0, points = 0;      // what the fit used
  int resamples = 0, failed = 0;  // bootstrap refits tried, and those that gave no fit
};

// The fit of one row and its bootstrap: seeds drawn with replacement `resamples` times (from
// `rng_seed`, so the interval is reproducible), each draw refitted. nullopt: no fit on all seeds.
std::optional<FittedRow> fit_row(const std::vector<SeedLadder>& seeds, int resamples,
                                 uint64_t rng_seed);

struct MultiplierAt {
  double tokens = 0;
  double value = 0;   // +infinity: the slower side's law never reaches that loss
  Interval interval;  // of the paired bootstrap; high +infinity where some draws never reach
  bool extrapolated = false;  // the slower side's tokens lie outside its measured budgets
};

// The multiplier of `slower` against `faster` at each of `budgets`, from fits on every seed, with
// a paired bootstrap over the seeds both rows have (a seed's two ladders are drawn together: they
// share data order and initialization). Empty when either row has no fit.
std::vector<MultiplierAt> multipliers(const std::vector<SeedLadder>& slower,
                                      const std::vector<SeedLadder>& faster,
                                      const std::vector<double>& budgets, int resamples,
                                      uint64_t rng_seed);

}  // namespace server
