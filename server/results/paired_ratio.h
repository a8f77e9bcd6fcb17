// Ratios of paired runs (R_L(B) = T_AdamW / T_Muon per seed; Table 3's FLOPs relative to
// MHA + AdamW per seed), with what a missing target does to them. docs/statistics.md explains
// the method for users.
//
// Each pair is two runs of one seed. A run either reached the target (its amount to target is
// known) or did not (it trained its whole budget without reaching it, or diverged first: the
// amount to target is then larger than the budget, possibly infinite). So a pair gives:
//   both reached                       -> the ratio itself
//   numerator did not, denominator did -> ratio >= budget_num / value_den   (a lower bound)
//   numerator did, denominator did not -> ratio <= value_num / budget_den   (an upper bound)
//   neither reached                    -> nothing: the ratio is unknown
// A run that reached the target at most at `value` (at_most) has T in (0, value]: with the other
// side exact or missed, the ratio is bounded (numerator at_most: ratio <= value_num / the
// denominator's lower bound; denominator at_most: ratio >= the numerator's lower bound /
// value_den); both at_most, or at_most against the same-direction miss, leave it unknown.
// The summary over pairs is the geometric mean (ratios are compared on a log scale: 2x and 0.5x
// are equally far from 1). It is an estimate when every pair is exact, a bound when every
// inexact pair bounds it the same way (the geometric mean of bounds bounds the geometric mean),
// and missing otherwise. Never a number computed from the subset of pairs that happened to reach.
//
// Interval: with at least kMinPairsForInterval exact pairs, a 95% Student-t interval on the
// mean log ratio, exponentiated (coverage measured by simulation in analysis_test.cpp). With
// fewer pairs no interval is shown: two values give no defensible spread.
#pragma once

#include <string>
#include <vector>

namespace server {

enum class RatioKind { kEstimate, kLowerBound, kUpperBound, kMissing };
const char* ratio_kind_name(RatioKind kind);  // estimate | lower_bound | upper_bound | missing

struct RunAmount {
  bool reached = false;
  double value = 0;   // amount to target (tokens, FLOPs, ...) when reached
  double budget = 0;  // the whole run's amount: a lower bound on the value when not reached
  // Reached, at `value` or sooner: value bounds the amount from above (a budget ladder whose
  // smallest budget reaches the target already, analysis_parts.h). In a pair it bounds the ratio
  // as a miss does, the other way: left-censored, never dropped.
  bool at_most = false;
};

struct PairedRatio {
  RatioKind kind = RatioKind::kMissing;
  double value = 0;  // geometric mean, or the bound
  bool has_interval = false;
  double ci_low = 0, ci_high = 0;
  int pairs = 0;                    // pairs used
  int censored = 0;                 // of them, pairs where one run never reached the target
  std::string note;                 // how to read it: why no interval, why a bound, why missing
  std::vector<double> seed_ratios;  // estimates only: each seed pair's ratio (for trends)
};

constexpr int kMinPairsForInterval = 3;

// pairs[i] = {numerator run, denominator run} of one seed.
PairedRatio paired_ratio(const std::vector<std::pair<RunAmount, RunAmount>>& pairs,
                         const std::string& numerator_name, const std::string& denominator_name);

// The 95% Student-t interval of exp(mean(log x)) for positive x (n >= 2), as ratio_ci uses it.
void log_t_interval(const std::vector<double>& values, double& geometric_mean, double& low,
                    double& high);

}  // namespace server
