#include "server/results/lr_law.h"

#include <cmath>
#include <set>

#include "server/results/student_t.h"

namespace server {

std::optional<LrLawFit> fit_lr_law(const std::vector<LrLawPoint>& points, double confidence) {
  std::set<double> widths, batches;
  for (const LrLawPoint& p : points) {
    if (!(p.width >= 0 && p.batch_tokens > 0 && p.lr > 0)) return std::nullopt;
    widths.insert(p.width);
    batches.insert(p.batch_tokens);
  }
  if (widths.size() > 1 && *widths.begin() == 0) return std::nullopt;  // a width unknown
  // log of what is fitted; a fixed quantity (possibly unknown: 0) drops out.
  const auto log_width = [&](const LrLawPoint& p) {
    return widths.size() > 1 ? std::log(p.width) : 0.0;
  };
  LrLawFit fit;
  fit.fits_width = widths.size() > 1;
  fit.fits_batch = batches.size() > 1;
  const int parameters = 1 + int(fit.fits_width) + int(fit.fits_batch);
  const double n = double(points.size());
  if (parameters == 1 || int(points.size()) < parameters) return std::nullopt;
  // Centred regressors; a fixed one is a column of zeros and drops out of the 2x2 system.
  double mw = 0, mb = 0, my = 0;
  for (const LrLawPoint& p : points) {
    mw += log_width(p) / n;
    mb += std::log(p.batch_tokens) / n;
    my += std::log(p.lr) / n;
  }
  double sww = 0, sbb = 0, swb = 0, swy = 0, sby = 0;
  for (const LrLawPoint& p : points) {
    const double w = fit.fits_width ? log_width(p) - mw : 0;
    const double b = fit.fits_batch ? std::log(p.batch_tokens) - mb : 0;
    const double y = std::log(p.lr) - my;
    sww += w * w;
    sbb += b * b;
    swb += w * b;
    swy += w * y;
    sby += b * y;
  }
  // The normal equations' inverse (the covariance up to the residual variance).
  double iww = 0, ibb = 0;
  if (fit.fits_width && fit.fits_batch) {
    const double det = sww * sbb - swb * swb;
    if (!(det > 1e-12 * sww * sbb)) return std::nullopt;  // width and batch vary together
    iww = sbb / det;
    ibb = sww / det;
    fit.width_exponent = (sbb * swy - swb * sby) / det;
    fit.batch_exponent = (sww * sby - swb * swy) / det;
  } else if (fit.fits_width) {
    iww = 1 / sww;
    fit.width_exponent = swy / sww;
  } else {
    ibb = 1 / sbb;
    fit.batch_exponent = sby / sbb;
  }
  fit.degrees_of_freedom = n - parameters;
  if (fit.degrees_of_freedom < 1) return fit;
  double rss = 0;
  for (const LrLawPoint& p : points) {
    const double w = fit.fits_width ? log_width(p) - mw : 0;
    const double b = fit.fits_batch ? std::log(p.batch_tokens) - mb : 0;
    rss += std::pow(std::log(p.lr) - my - fit.width_exponent * w - fit.batch_exponent * b, 2);
  }
  // Every row on the law exactly (or rounded alike by the grid): no spread to make an interval of.
  if (!(rss > 1e-24)) return fit;
  const double s2 = rss / fit.degrees_of_freedom;
  const double t = student_t_quantile(fit.degrees_of_freedom, (1 + confidence) / 2);
  fit.has_interval = true;
  const auto around = [&](double value, double inverse) {
    const double half = t * std::sqrt(s2 * inverse);
    return Interval{value - half, value + half};
  };
  if (fit.fits_width) fit.width_interval = around(fit.width_exponent, iww);
  if (fit.fits_batch) fit.batch_interval = around(fit.batch_exponent, ibb);
  return fit;
}

}  // namespace server
