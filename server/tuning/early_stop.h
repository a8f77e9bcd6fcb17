// Early stopping of tuning runs (tune.early_stop, sweep_file/tune_spec.h): successive halving
// within a row. A rung is a fraction of a run's token budget; a run's value at a rung is its val
// loss at its first evaluation at or past the rung's tokens (a diverged value counts as the
// worst). Judged runs: the row's tuning and extension runs of the tune.seeds (never confirmation,
// completion or tune.noise seeds, which exist to measure). A rung is judged only once every
// start-grid run of the row (its tuning runs of the tune.seeds) that is still going has reached
// it, so that the order in which runs arrive does not decide which are judged:
//   - the start-grid run whose report completes the rung judges, at once, every judged run of
//     the row that has reached the rung and is still going (those that arrived before waited);
//   - a run that reaches a rung after that (an extension) is judged when it gets there;
//   - each is ranked against every run of the row with a value at the rung (finished, stopped
//     or going); with at least min_runs ranked, a run among the worst floor(stop_fraction * n)
//     stops.
// A run is judged at most once per rung. A run that waited at a rung whose start grid completed
// without a report there (its last going start run stopped at an earlier rung or failed) is
// judged at its next rung instead.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/results/rows.h"
#include "server/storage/metric_store.h"

namespace server {

// The evaluations of every tuning run of a row, by job id.
using RowEvals = std::map<int64_t, std::vector<EvalRow>>;

struct StopDecision {
  int64_t job_id = 0;
  std::string reason;
};

// The runs of `row` to stop now that `reporter` reported the evaluations at `reported_steps`
// (empty: none).
std::vector<StopDecision> early_stop_decisions(const sweep_file::TuneSpec& tune, const Row& row,
                                               const Run& reporter, const RowEvals& evals,
                                               const std::vector<int64_t>& reported_steps);

}  // namespace server
