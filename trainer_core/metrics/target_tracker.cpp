#include "trainer_core/metrics/target_tracker.h"

namespace trainer_core {

std::vector<TargetCrossing> find_target_crossings(const std::vector<EvalPoint>& evals,
                                                  const std::vector<double>& targets,
                                                  double tokens_per_step,
                                                  const FlopsBreakdown& flops) {
  std::vector<TargetCrossing> out;
  for (double target : targets) {
    TargetCrossing c;
    c.target = target;
    for (size_t i = 0; i < evals.size(); ++i) {
      if (evals[i].val_loss > target) continue;
      double step = double(evals[i].step), seconds = evals[i].train_seconds;
      if (i > 0) {  // interpolate between the eval above the target and this one
        const EvalPoint& a = evals[i - 1];
        const EvalPoint& b = evals[i];
        const double f = (a.val_loss - target) / (a.val_loss - b.val_loss);
        step = double(a.step) + f * double(b.step - a.step);
        seconds = a.train_seconds + f * (b.train_seconds - a.train_seconds);
      }
      c.reached = true;
      c.steps = step;
      c.tokens = step * tokens_per_step;
      c.seconds = seconds;
      c.flops = flops.training(c.tokens, c.steps);
      break;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace trainer_core
