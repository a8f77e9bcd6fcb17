#include "server/results/selection.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>

namespace server {

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// A cell's rank under a rule over some seeds: smaller is better (selection.h).
struct Rank {
  bool candidate = false;
  std::tuple<bool, int, int, double, double> key;
};

Rank rank_of(const std::vector<SeedRun>& cell, sweep_file::SelectionRule rule,
             const std::vector<size_t>& seeds) {
  int bad = 0, finished = 0, succeeded = 0, missed = 0, reached = 0;
  double loss = 0, log_tokens = 0;
  for (size_t s : seeds) {
    const SeedRun& r = cell[s];
    if (!r.present) continue;
    bad += r.bad ? 1 : 0;
    if (!r.finished) continue;
    ++finished;
    if (!r.bad) {
      ++succeeded;
      loss += r.final_loss;
    }
    if (r.amount.reached && r.amount.value > 0) {
      ++reached;
      log_tokens += std::log(r.amount.value);
    } else {
      ++missed;
    }
  }
  Rank rank;
  const double mean_loss = succeeded > 0 ? loss / succeeded : kInfinity;
  if (rule == sweep_file::SelectionRule::kFinalLoss) {
    rank.candidate = succeeded > 0;
    rank.key = {bad > 0, bad, 0, mean_loss, 0.0};
  } else {
    rank.candidate = finished > 0;
    rank.key = {bad > 0, bad, missed, reached > 0 ? log_tokens / reached : kInfinity, mean_loss};
  }
  return rank;
}

}  // namespace

size_t select_cell(const RowTable& row, sweep_file::SelectionRule rule,
                   const std::vector<size_t>& seeds) {
  size_t best = kNoCell;
  Rank best_rank;
  for (size_t c = 0; c < row.cells.size(); ++c) {
    const Rank r = rank_of(row.cells[c], rule, seeds);
    if (!r.candidate) continue;
    if (best == kNoCell || r.key < best_rank.key) {  // increasing lr: a tie keeps the smaller
      best = c;
      best_rank = r;
    }
  }
  return best;
}

std::optional<double> pooled_ratio(const RowTable& num, size_t num_cell, const RowTable& den,
                                   size_t den_cell, const std::vector<size_t>& seeds) {
  double log_sum = 0;
  int n = 0;
  for (size_t s : seeds) {
    const SeedRun& a = num.cells[num_cell][s];
    const SeedRun& b = den.cells[den_cell][s];
    if (!a.finished || !b.finished) continue;
    const double x = a.amount.reached ? a.amount.value : a.amount.budget;
    const double y = b.amount.reached ? b.amount.value : b.amount.budget;
    if (!(x > 0) || !(y > 0) || (!a.amount.reached && !b.amount.reached)) continue;
    log_sum += std::log(x / y);
    ++n;
  }
  if (n == 0) return std::nullopt;
  return std::exp(log_sum / n);
}

BootstrapInterval selection_bootstrap(const RowTable& num, const RowTable& den,
                                      sweep_file::SelectionRule rule, int resamples,
                                      uint64_t rng_seed) {
  BootstrapInterval out;
  const size_t n = num.cells.empty() ? 0 : num.cells.front().size();
  if (n == 0 || resamples <= 0) return out;
  std::mt19937_64 rng(rng_seed);
  std::vector<double> logs;
  logs.reserve(size_t(resamples));
  std::vector<size_t> draw(n);
  for (int b = 0; b < resamples; ++b) {
    // Drawn by hand rather than with uniform_int_distribution, whose algorithm the standard
    // leaves to the library: the same data give the same interval everywhere.
    for (size_t& s : draw) s = size_t(rng() % n);
    const size_t a = select_cell(num, rule, draw), m = select_cell(den, rule, draw);
    const std::optional<double> r =
        a == kNoCell || m == kNoCell ? std::nullopt : pooled_ratio(num, a, den, m, draw);
    if (!r) {
      ++out.skipped;
      continue;
    }
    logs.push_back(std::log(*r));
  }
  out.resamples = int(logs.size());
  if (logs.empty() || out.skipped * 20 > resamples) return out;
  std::sort(logs.begin(), logs.end());
  // Quantiles by the nearest rank, on the log scale (exponentiated: the same on any monotone
  // scale).
  const auto quantile = [&](double p) {
    const size_t k =
        size_t(std::clamp(std::ceil(p * double(logs.size())) - 1.0, 0.0, double(logs.size() - 1)));
    return std::exp(logs[k]);
  };
  out.has_interval = true;
  out.low = quantile(0.025);
  out.high = quantile(0.975);
  return out;
}

}  // namespace server
