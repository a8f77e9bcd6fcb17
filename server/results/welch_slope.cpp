#include "server/results/welch_slope.h"

#include <cmath>
#include <limits>

#include "server/results/student_t.h"

namespace server {

std::optional<SlopeEstimate> welch_slope(const std::vector<SampleGroup>& groups,
                                         double confidence) {
  if (groups.size() < 2) return std::nullopt;
  double mean_x = 0;
  for (const SampleGroup& g : groups) {
    if (g.y.size() < 2) return std::nullopt;
    mean_x += g.x;
  }
  mean_x /= double(groups.size());
  double sxx = 0;
  for (const SampleGroup& g : groups) sxx += (g.x - mean_x) * (g.x - mean_x);
  if (!(sxx > 0)) return std::nullopt;
  SlopeEstimate e;
  double variance = 0, df_denominator = 0;
  for (const SampleGroup& g : groups) {
    const double n = double(g.y.size());
    double mean = 0, ss = 0;
    for (double y : g.y) mean += y;
    mean /= n;
    for (double y : g.y) ss += (y - mean) * (y - mean);
    const double c = (g.x - mean_x) / sxx;
    e.slope += c * mean;
    const double v = c * c * (ss / (n - 1)) / n;
    variance += v;
    df_denominator += v * v / (n - 1);
  }
  e.standard_error = std::sqrt(variance);
  if (!(df_denominator > 0)) {  // no noise in any group: the slope is exact
    e.degrees_of_freedom = std::numeric_limits<double>::infinity();
    e.low = e.high = e.slope;
    return e;
  }
  e.degrees_of_freedom = variance * variance / df_denominator;
  const double half =
      student_t_quantile(e.degrees_of_freedom, (1 + confidence) / 2) * e.standard_error;
  e.low = e.slope - half;
  e.high = e.slope + half;
  return e;
}

}  // namespace server
