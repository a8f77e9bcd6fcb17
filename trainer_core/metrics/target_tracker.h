// Target-loss crossings (docs/science.md): the first point where the val loss reaches L, linearly
// interpolated between the two evals around it. Step, tokens, training time (evaluations
// excluded) and FLOPs are all interpolated at the same fraction.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "trainer_core/metrics/flops.h"

namespace trainer_core {

struct EvalPoint {
  int64_t step = 0;
  double val_loss = 0;
  double train_seconds = 0;  // training time up to this eval, evaluations excluded
};

struct TargetCrossing {
  double target = 0;
  bool reached = false;
  double steps = 0;
  double tokens = 0;
  double seconds = 0;
  double flops = 0;
};

// Evals in step order; tokens_per_step and flops (FlopsBreakdown::training) convert steps.
std::vector<TargetCrossing> find_target_crossings(const std::vector<EvalPoint>& evals,
                                                  const std::vector<double>& targets,
                                                  double tokens_per_step,
                                                  const FlopsBreakdown& flops);

}  // namespace trainer_core
