#include "server/results/paired_ratio.h"

#include <cmath>
#include <cstdio>

namespace server {

const char* ratio_kind_name(RatioKind kind) {
  switch (kind) {
    case RatioKind::kEstimate:
      return "estimate";
    case RatioKind::kLowerBound:
      return "lower_bound";
    case RatioKind::kUpperBound:
      return "upper_bound";
    case RatioKind::kMissing:
      return "missing";
  }
  return "missing";
}

double student_t_975(int df) {
  // Exact table to 30 degrees of freedom; beyond, the Cornish-Fisher expansion around the normal
  // quantile (error < 1e-3 from df = 30 on).
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                 2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                 2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                 2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (df < 1) df = 1;
  if (df <= 30) return table[df - 1];
  const double z = 1.959963984540054, n = double(df);
  return z + (z * z * z + z) / (4 * n) +
         (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * n * n);
}

void log_t_interval(const std::vector<double>& values, double& geometric_mean, double& low,
                    double& high) {
  const double n = double(values.size());
  double mean = 0, ss = 0;
  for (double v : values) mean += std::log(v);
  mean /= n;
  for (double v : values) ss += (std::log(v) - mean) * (std::log(v) - mean);
  geometric_mean = std::exp(mean);
  low = high = geometric_mean;
  if (values.size() < 2) return;
  const double half = student_t_975(int(values.size()) - 1) * std::sqrt(ss / (n - 1) / n);
  low = std::exp(mean - half);
  high = std::exp(mean + half);
}

namespace {
double geometric_mean(const std::vector<double>& values) {
  double s = 0;
  for (double v : values) s += std::log(v);
  return std::exp(s / double(values.size()));
}
}  // namespace

PairedRatio paired_ratio(const std::vector<std::pair<RunAmount, RunAmount>>& pairs,
                         const std::string& numerator_name, const std::string& denominator_name) {
  PairedRatio out;
  std::vector<double> values;
  int lower = 0, upper = 0, unknown = 0;
  for (const auto& [num, den] : pairs) {
    if (num.reached && den.reached && num.value > 0 && den.value > 0) {
      values.push_back(num.value / den.value);
    } else if (!num.reached && den.reached && num.budget > 0 && den.value > 0) {
      values.push_back(num.budget / den.value);
      ++lower;
    } else if (num.reached && !den.reached && num.value > 0 && den.budget > 0) {
      values.push_back(num.value / den.budget);
      ++upper;
    } else {
      ++unknown;
    }
  }
  out.pairs = int(values.size());
  out.censored = lower + upper;
  if (pairs.empty()) {
    out.note = "no seed has finished runs on both sides";
    return out;
  }
  if (unknown > 0) {
    out.note = std::to_string(unknown) + " of " + std::to_string(pairs.size()) +
               " seed pairs: neither run reached the target, so the ratio is unknown";
    return out;
  }
  if (lower > 0 && upper > 0) {
    out.note = "seed pairs bound the ratio in both directions (" + numerator_name +
               " missed the target in " + std::to_string(lower) + ", " + denominator_name + " in " +
               std::to_string(upper) + ")";
    return out;
  }
  out.value = geometric_mean(values);
  const std::string of = " of " + std::to_string(pairs.size()) + " seed pairs";
  if (lower > 0) {
    out.kind = RatioKind::kLowerBound;
    out.note = "at least: " + numerator_name + " never reached the target in " +
               std::to_string(lower) + of + " (its whole budget stands in)";
    return out;
  }
  if (upper > 0) {
    out.kind = RatioKind::kUpperBound;
    out.note = "at most: " + denominator_name + " never reached the target in " +
               std::to_string(upper) + of + " (its whole budget stands in)";
    return out;
  }
  out.kind = RatioKind::kEstimate;
  out.seed_ratios = values;
  if (values.size() < size_t(kMinPairsForInterval)) {
    out.note = "no interval: " + std::to_string(values.size()) + " seed pair" +
               (values.size() == 1 ? "" : "s") + " (an interval needs " +
               std::to_string(kMinPairsForInterval) + ")";
    return out;
  }
  double gm;
  log_t_interval(values, gm, out.ci_low, out.ci_high);
  out.has_interval = true;
  char buf[96];
  std::snprintf(buf, sizeof buf, "geometric mean of %zu seed pairs, 95%% t-interval on log ratios",
                values.size());
  out.note = buf;
  return out;
}

}  // namespace server
