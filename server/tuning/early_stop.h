// Early stopping of tuning runs (tune.early_stop, sweep_file/tune_spec.h): asynchronous
// successive halving within a row. A rung is a fraction of a run's token budget; a run's value at
// a rung is its val loss at its first evaluation at or past the rung's tokens (a diverged value
// counts as the worst). When a tuning run reports that evaluation, it is ranked against the
// row's other tuning runs that have one (finished, stopped or running); with at least min_runs
// ranked, a run among the worst floor(stop_fraction * n) is stopped. A run is judged once per
// rung, when it gets there, never again later. Confirmation runs are never judged.
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

// Why `run` should stop now that it reported the evaluations at `reported_steps`; nullopt: it
// goes on. `row` is the run's row.
std::optional<std::string> early_stop_reason(const sweep_file::EarlyStop& rule, const Row& row,
                                             const Run& run, const RowEvals& evals,
                                             const std::vector<int64_t>& reported_steps);

}  // namespace server
