#include "trainer_core/train/eval_schedule.h"

#include <algorithm>
#include <cmath>

namespace trainer_core {

std::vector<int64_t> log_spaced_eval_steps(int64_t max_steps, int n) {
  std::vector<int64_t> steps;
  if (n <= 0 || max_steps <= 0) return steps;
  if (n == 1) return {max_steps};
  for (int i = 0; i < n; ++i) {
    const double at = std::pow(double(max_steps), double(i) / double(n - 1));
    const int64_t step = std::clamp<int64_t>(std::llround(at), 1, max_steps);
    if (steps.empty() || step != steps.back()) steps.push_back(step);
  }
  return steps;
}

EvalSchedule::EvalSchedule(const TrainingConfig& training)
    : every_(std::max(1, training.eval_every)),
      last_(training.max_steps),
      log_steps_(log_spaced_eval_steps(training.max_steps, training.log_evals)) {}

bool EvalSchedule::evaluates_at(int64_t step) const {
  return step % every_ == 0 || step == last_ ||
         std::binary_search(log_steps_.begin(), log_steps_.end(), step);
}

int64_t EvalSchedule::count() const {
  if (last_ <= 0) return 1;
  int64_t n = 1 + last_ / every_ + (last_ % every_ != 0 ? 1 : 0);  // step 0, multiples, the last
  for (int64_t step : log_steps_)
    if (step % every_ != 0 && step != last_) ++n;
  return n;
}

}  // namespace trainer_core
