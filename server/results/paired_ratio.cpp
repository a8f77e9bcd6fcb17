#include "server/results/paired_ratio.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "server/results/student_t.h"

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
  const double half = student_t_quantile(n - 1, 0.975) * std::sqrt(ss / (n - 1) / n);
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
  int lower = 0, upper = 0, unknown = 0, at_most = 0;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // What a run's amount to target is known to lie in: [value, value] when reached, (0, value]
  // when reached at most at value, [budget, inf) when missed.
  auto low = [](const RunAmount& a) { return !a.reached ? a.budget : a.at_most ? 0.0 : a.value; };
  auto high = [&](const RunAmount& a) { return !a.reached ? kInf : a.value; };
  for (const auto& [num, den] : pairs) {
    const bool usable =
        (num.reached ? num.value : num.budget) > 0 && (den.reached ? den.value : den.budget) > 0;
    // The ratio lies in [low(num) / high(den), high(num) / low(den)].
    const double least = high(den) < kInf ? low(num) / high(den) : 0.0;
    const double most = low(den) > 0 && high(num) < kInf ? high(num) / low(den) : kInf;
    at_most += num.at_most || den.at_most ? 1 : 0;
    if (!usable) {
      ++unknown;
    } else if (least > 0 && least == most) {
      values.push_back(least);
    } else if (least > 0 && most == kInf) {
      values.push_back(least);
      ++lower;
    } else if (least == 0 && most < kInf) {
      values.push_back(most);
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
  // How a budget ladder's smallest budget stood in, said after whatever the note says.
  const std::string ladder =
      at_most == 0 ? ""
                   : "; in " + std::to_string(at_most) + " seed pair" + (at_most == 1 ? "" : "s") +
                         " a side reached the target at its ladder's smallest budget already "
                         "(that budget stands in as the most it took)";
  if (unknown > 0) {
    out.note =
        std::to_string(unknown) + " of " + std::to_string(pairs.size()) +
        (at_most == 0 ? " seed pairs: neither run reached the target, so the ratio is unknown"
                      : " seed pairs: both runs only bound the target the same way, so the "
                        "ratio is unknown") +
        ladder;
    return out;
  }
  if (lower > 0 && upper > 0) {
    out.note = at_most == 0
                   ? "seed pairs bound the ratio in both directions (" + numerator_name +
                         " missed the target in " + std::to_string(lower) + ", " +
                         denominator_name + " in " + std::to_string(upper) + ")"
                   : "seed pairs bound the ratio in both directions (" + std::to_string(lower) +
                         " from below, " + std::to_string(upper) + " from above)" + ladder;
    return out;
  }
  out.value = geometric_mean(values);
  const std::string of = " of " + std::to_string(pairs.size()) + " seed pairs";
  if (lower > 0) {
    out.kind = RatioKind::kLowerBound;
    out.note = at_most == 0
                   ? "at least: " + numerator_name + " never reached the target in " +
                         std::to_string(lower) + of + " (its whole budget stands in)"
                   : "at least: bounded from below in " + std::to_string(lower) + of + ladder;
    return out;
  }
  if (upper > 0) {
    out.kind = RatioKind::kUpperBound;
    out.note = at_most == 0
                   ? "at most: " + denominator_name + " never reached the target in " +
                         std::to_string(upper) + of + " (its whole budget stands in)"
                   : "at most: bounded from above in " + std::to_string(upper) + of + ladder;
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
