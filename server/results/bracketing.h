// Whether a row's best lr is bracketed (docs/statistics.md, "Bracketing"): the best has a tried
// neighbour on each side of each tuned axis (rows.h, axis_neighbours: the lr, and the weight
// decay when tune.weight_decay is set), and each of those neighbours is worse by a margin that the
// seed noise does not explain. A neighbour whose selecting runs early stopping ended (STOPPED) has
// no final loss and never brackets: the planner runs it again to its end (a completion run). With
// tune.noise, a neighbour within 2 · σ · sqrt(1/n_best + 1/n_neighbour) of the best does not
// bracket either: the planner adds tune.noise.seeds one at a time at the best and at such
// neighbours; σ is the larger of tune.noise.sd and the row's pooled seed SD. Without
// tune.noise any worse neighbour brackets (the rule of sweeps written before it).
#pragma once

#include <optional>
#include <vector>

#include "server/results/rows.h"

namespace server {

struct NeighbourCheck {
  size_t cell = 0;         // index into row.cells
  bool stopped = false;    // every finished selecting run of it was stopped early
  bool separated = false;  // worse than the best beyond the margin, or ranked after it by rule
  double gap = 0;          // mean final val loss minus the best's (when both have one)
  double margin = 0;       // what the gap must exceed (0 without tune.noise)
};

struct BracketCheck {
  bool interior = false;  // the best has a tried neighbour on each side of each tuned axis
  std::vector<NeighbourCheck> neighbours;
  double sd = 0;  // σ of the margin (0 without tune.noise)
  bool bracketed() const;
};

// `row`'s choice must be decided.
BracketCheck check_bracket(const Row& row, const std::optional<sweep_file::NoiseRule>& noise);

// The first of tune.noise.seeds missing from a cell the rule says needs more seeds (the best, and
// each neighbour within the margin), with those cells; nullopt when none needs one or the seeds
// are spent.
struct NoiseSeedStep {
  int64_t seed = 0;
  std::vector<size_t> cells;
};
std::optional<NoiseSeedStep> next_noise_seed(const Row& row, const BracketCheck& check,
                                             const sweep_file::NoiseRule& noise);

// The row's pooled sample SD of final val loss over its cells with at least two succeeded
// selecting runs; 0 when none has.
double pooled_seed_sd(const Row& row);

}  // namespace server
