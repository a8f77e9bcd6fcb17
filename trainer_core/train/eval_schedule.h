// When a run evaluates (docs/training.md, "Evaluations"): at step 0, every training.eval_every
// steps, at its last step, and, with training.log_evals = N, at N steps spread evenly in
// log(step) from step 1 to the last, so that an early crossing of a target loss is read between
// close evaluations rather than interpolated across a long stretch of training.
#pragma once

#include <cstdint>
#include <vector>

#include "trainer_core/config/train_config.h"

namespace trainer_core {

// The log-spaced steps of training.log_evals, ascending and without repeats (rounding can merge
// the first few): round(max_steps^(i / (N - 1))) for i = 0..N-1; N = 1 gives the last step.
std::vector<int64_t> log_spaced_eval_steps(int64_t max_steps, int n);

class EvalSchedule {
 public:
  explicit EvalSchedule(const TrainingConfig& training);
  // Whether the run evaluates after `step` steps (1..max_steps; step 0 is always evaluated).
  bool evaluates_at(int64_t step) const;
  // Evaluations a run makes from step 0 to its last, in time independent of max_steps (health
  // rules that need N evaluations are refused for runs that make fewer: sweep_file/health_spec.h).
  int64_t count() const;

 private:
  int64_t every_, last_;
  std::vector<int64_t> log_steps_;
};

}  // namespace trainer_core
