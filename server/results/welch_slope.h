// The slope of y on x from groups of repeated measurements at each x (R_L(B)'s trend: log R of
// each seed pair at log2 B), with an interval that holds when the groups' noise differs.
//
// Estimator: ordinary least squares on the group means, slope = sum_j c_j * mean_j with
// c_j = (x_j - mean x) / sum_k (x_k - mean x)^2, so every group counts alike whatever its noise
// (weights estimated from 2-3 samples would be noise themselves). Its variance is estimated from
// each group's own sample variance, sum_j c_j^2 s_j^2 / n_j, not from one pooled residual, and its
// degrees of freedom by Welch–Satterthwaite: (sum_j v_j)^2 / sum_j v_j^2 / (n_j - 1) with
// v_j = c_j^2 s_j^2 / n_j. The interval is slope ± t(df, (1 + confidence) / 2) · se. Coverage under
// unequal noise is measured by simulation in analysis_test.cpp (docs/statistics.md).
#pragma once

#include <optional>
#include <vector>

namespace server {

struct SampleGroup {
  double x = 0;
  std::vector<double> y;
};

struct SlopeEstimate {
  double slope = 0;
  double standard_error = 0;
  double degrees_of_freedom = 0;  // Welch–Satterthwaite; infinite when every group is noiseless
  double low = 0, high = 0;       // the two-sided interval at the confidence asked
};

// nullopt with fewer than 2 groups, groups at one x, or a group of fewer than 2 samples (its
// noise unknown).
std::optional<SlopeEstimate> welch_slope(const std::vector<SampleGroup>& groups,
                                         double confidence = 0.95);

}  // namespace server
