#include "server/results/scaling_fit.h"

#include <algorithm>
#include <boost/math/tools/minima.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "trainer_core/util/rng.h"

namespace server {

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// For a fixed α, the least-squares (E, A') of loss = E + A'·x with x = (D / scale)^(−α), and its
// residual sum of squares.
struct LinearPart {
  double E = 0, A_scaled = 0, rss = kInfinity;
};
LinearPart linear_part(const std::vector<LossPoint>& points, double scale, double alpha) {
  const double n = double(points.size());
  double mx = 0, my = 0;
  std::vector<double> x;
  for (const LossPoint& p : points) {
    x.push_back(std::pow(p.tokens / scale, -alpha));
    mx += x.back() / n;
    my += p.loss / n;
  }
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    sxy += (x[i] - mx) * (points[i].loss - my);
  }
  LinearPart out;
  if (!(sxx > 0)) return out;
  out.A_scaled = sxy / sxx;
  out.E = my - out.A_scaled * mx;
  out.rss = 0;
  for (size_t i = 0; i < points.size(); ++i)
    out.rss += std::pow(points[i].loss - out.E - out.A_scaled * x[i], 2);
  return out;
}

double percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double at = q * double(values.size() - 1);
  const size_t lo = size_t(std::floor(at)), hi = size_t(std::ceil(at));
  if (std::isinf(values[lo]) || std::isinf(values[hi])) return values[hi];
  return values[lo] + (at - double(lo)) * (values[hi] - values[lo]);
}

Interval interval_of(const std::vector<double>& values) {
  if (values.empty()) return {std::nan(""), std::nan("")};
  return {percentile(values, 0.025), percentile(values, 0.975)};
}

std::vector<LossPoint> pooled(const std::vector<const SeedLadder*>& seeds) {
  std::vector<LossPoint> out;
  for (const SeedLadder* s : seeds) out.insert(out.end(), s->points.begin(), s->points.end());
  return out;
}

std::vector<const SeedLadder*> all_of(const std::vector<SeedLadder>& seeds) {
  std::vector<const SeedLadder*> out;
  for (const SeedLadder& s : seeds) out.push_back(&s);
  return out;
}

}  // namespace

double PowerLaw::loss_at(double tokens) const { return E + A * std::pow(tokens, -alpha); }

double PowerLaw::tokens_to(double loss) const {
  if (!(loss > E)) return kInfinity;
  return std::pow(A / (loss - E), 1 / alpha);
}

std::optional<PowerLaw> fit_power_law(const std::vector<LossPoint>& points) {
  std::set<double> budgets;
  double log_sum = 0;
  for (const LossPoint& p : points) {
    if (!(p.tokens > 0) || !std::isfinite(p.loss)) return std::nullopt;
    budgets.insert(p.tokens);
    log_sum += std::log(p.tokens);
  }
  if (points.size() < 4 || budgets.size() < 3) return std::nullopt;
  const double scale = std::exp(log_sum / double(points.size()));
  const auto rss = [&](double alpha) {
    const LinearPart l = linear_part(points, scale, alpha);
    return l.A_scaled > 0 ? l.rss : kInfinity;
  };
  // A scan first (the profile can be flat or have a second dip), then Brent in the best bracket.
  constexpr int kScan = 40;
  const double step = std::log(kMaxAlpha / kMinAlpha) / (kScan - 1);
  int best = -1;
  double best_rss = kInfinity;
  for (int i = 0; i < kScan; ++i)
    if (const double r = rss(kMinAlpha * std::exp(step * i)); r < best_rss) {
      best_rss = r;
      best = i;
    }
  if (best < 0) return std::nullopt;
  const double lo = kMinAlpha * std::exp(step * std::max(0, best - 1));
  const double hi = kMinAlpha * std::exp(step * std::min(kScan - 1, best + 1));
  const auto [alpha, minimum] = boost::math::tools::brent_find_minima(rss, lo, hi, 40);
  if (!std::isfinite(minimum)) return std::nullopt;
  const LinearPart l = linear_part(points, scale, alpha);
  return PowerLaw{l.E, l.A_scaled * std::pow(scale, alpha), alpha};
}

bool alpha_at_bound(const PowerLaw& law) {
  return law.alpha <= kMinAlpha * 1.001 || law.alpha >= kMaxAlpha / 1.001;
}

double compute_multiplier(const PowerLaw& slower, const PowerLaw& faster, double tokens) {
  return slower.tokens_to(faster.loss_at(tokens)) / tokens;
}

std::optional<FittedRow> fit_row(const std::vector<SeedLadder>& seeds, int resamples,
                                 uint64_t rng_seed) {
  const std::vector<LossPoint> points = pooled(all_of(seeds));
  const std::optional<PowerLaw> fit = fit_power_law(points);
  if (!fit) return std::nullopt;
  FittedRow row;
  row.fit = *fit;
  row.seeds = int(seeds.size());
  row.points = int(points.size());
  row.resamples = resamples;
  trainer_core::UniformRng rng(rng_seed);
  std::vector<double> E, A, alpha;
  for (int r = 0; r < resamples; ++r) {
    std::vector<const SeedLadder*> draw;
    for (size_t i = 0; i < seeds.size(); ++i) draw.push_back(&seeds[rng.below(seeds.size())]);
    if (const std::optional<PowerLaw> f = fit_power_law(pooled(draw))) {
      E.push_back(f->E);
      A.push_back(f->A);
      alpha.push_back(f->alpha);
    } else {
      ++row.failed;
    }
  }
  row.E = interval_of(E);
  row.A = interval_of(A);
  row.alpha = interval_of(alpha);
  return row;
}

std::vector<MultiplierAt> multipliers(const std::vector<SeedLadder>& slower,
                                      const std::vector<SeedLadder>& faster,
                                      const std::vector<double>& budgets, int resamples,
                                      uint64_t rng_seed) {
  const std::optional<PowerLaw> s = fit_power_law(pooled(all_of(slower)));
  const std::optional<PowerLaw> f = fit_power_law(pooled(all_of(faster)));
  if (!s || !f) return {};
  std::map<int64_t, std::pair<const SeedLadder*, const SeedLadder*>> paired;
  for (const SeedLadder& l : slower) paired[l.seed].first = &l;
  for (const SeedLadder& l : faster) paired[l.seed].second = &l;
  std::erase_if(paired, [](const auto& p) { return !p.second.first || !p.second.second; });
  std::vector<std::vector<double>> draws(budgets.size());
  trainer_core::UniformRng rng(rng_seed);
  std::vector<const std::pair<const SeedLadder*, const SeedLadder*>*> seeds;
  for (const auto& [seed, both] : paired) seeds.push_back(&both);
  for (int r = 0; r < resamples && !seeds.empty(); ++r) {
    std::vector<const SeedLadder*> a, b;
    for (size_t i = 0; i < seeds.size(); ++i) {
      const auto* both = seeds[rng.below(seeds.size())];
      a.push_back(both->first);
      b.push_back(both->second);
    }
    const std::optional<PowerLaw> fs = fit_power_law(pooled(a)), ff = fit_power_law(pooled(b));
    if (!fs || !ff) continue;  // a draw without a fit says nothing (fit_row counts its own)
    for (size_t i = 0; i < budgets.size(); ++i)
      draws[i].push_back(compute_multiplier(*fs, *ff, budgets[i]));
  }
  double measured_lo = kInfinity, measured_hi = 0;
  for (const LossPoint& p : pooled(all_of(slower))) {
    measured_lo = std::min(measured_lo, p.tokens);
    measured_hi = std::max(measured_hi, p.tokens);
  }
  std::vector<MultiplierAt> out;
  for (size_t i = 0; i < budgets.size(); ++i) {
    MultiplierAt m;
    m.tokens = budgets[i];
    m.value = compute_multiplier(*s, *f, budgets[i]);
    m.interval = interval_of(draws[i]);
    const double needed = m.value * budgets[i];
    m.extrapolated = !(needed >= measured_lo && needed <= measured_hi);
    out.push_back(m);
  }
  return out;
}

}  // namespace server
