// How the best learning rate scales (docs/statistics.md, "How the best lr scales"): rows that
// differ only in width and batch size, each with its bracketed best lr, fitted by
// lr* = C · width^a · B^b (least squares on log lr*; only the quantities that vary are fitted),
// with t-intervals on a and b from the residuals (Boost.Math's quantile at n − p degrees of
// freedom). The residuals include the lr grid's rounding: a best lr is one of the values tried.
#pragma once

#include <optional>
#include <vector>

#include "server/results/scaling_fit.h"

namespace server {

struct LrLawPoint {
  double width = 0, batch_tokens = 0, lr = 0;
};

struct LrLawFit {
  bool fits_width = false, fits_batch = false;  // which exponents vary in the data
  double width_exponent = 0, batch_exponent = 0;
  bool has_interval = false;  // n > parameters and residuals that are not all 0
  Interval width_interval, batch_interval;
  double degrees_of_freedom = 0;  // n − parameters
};

// nullopt when neither width nor batch varies, or there are fewer points than parameters; as many
// points as parameters fit exactly, without an interval.
std::optional<LrLawFit> fit_lr_law(const std::vector<LrLawPoint>& points, double confidence = 0.95);

}  // namespace server
