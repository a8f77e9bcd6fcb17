// Planned forks in a sweep file (docs/sweeps.md, "Forks"): a job that starts from another row's
// checkpoint at a token count and goes on with changed settings, one per seed of that row.
//
//   forks:
//     - {from: baseline, at_tokens: 16384, label: lr_half, set: {optimizer.lr: 1.5e-3}}
//     - {from: baseline, at_tokens: 16384, label: same}      # no change: continues bit-identically
//
// `from` names a row by its label (a fork's own label, `<from>/<label>`, may be forked again);
// `at_tokens` is a multiple of the row's batch and at most its budget; `set` takes dotted-path
// overrides as ablations do. What a fork may not change (the seed, the model, the data, the
// batch, the optimizer's name: trainer_core/train/fork.h, the trainer's own check at start) is
// refused with its path.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trainer_core/config/train_config.h"

namespace sweep_file {

struct ForkSpec {
  std::string from;
  int64_t at_tokens = 0;
  std::string label;  // the fork's label is <from>/<label>; default fork@<at_tokens>
  nlohmann::json set = nlohmann::json::object();
};

// doc["forks"] (absent: none); problems under "forks[i]".
std::vector<ForkSpec> read_fork_specs(const nlohmann::json& doc,
                                      std::vector<trainer_core::ConfigProblem>& problems);

}  // namespace sweep_file
