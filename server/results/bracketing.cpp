#include "server/results/bracketing.h"

#include <algorithm>
#include <cmath>

namespace server {

bool BracketCheck::bracketed() const {
  if (!interior) return false;
  for (const NeighbourCheck& n : neighbours)
    if (!n.separated) return false;
  return true;
}

double pooled_seed_sd(const Row& row) {
  double sum = 0;
  int dof = 0;
  for (const Cell& c : row.cells)
    if (c.selecting_val_loss.n >= 2) {
      sum += (c.selecting_val_loss.n - 1) * c.selecting_val_loss.std * c.selecting_val_loss.std;
      dof += c.selecting_val_loss.n - 1;
    }
  return dof > 0 ? std::sqrt(sum / dof) : 0.0;
}

BracketCheck check_bracket(const Row& row, const std::optional<sweep_file::NoiseRule>& noise) {
  BracketCheck out;
  const size_t best = row.selected;
  const std::vector<AxisNeighbour> sides = axis_neighbours(row, best);
  out.interior = !sides.empty() && !has_open_side(row, best);
  if (noise) out.sd = std::max(noise->sd, pooled_seed_sd(row));
  const Cell& b = row.cells[best];
  for (const AxisNeighbour& side : sides) {
    if (!side.cell) continue;
    const size_t i = *side.cell;
    const Cell& c = row.cells[i];
    NeighbourCheck n;
    n.cell = i;
    if (c.selecting_val_loss.n == 0) {
      // No final loss: ranked after the best by rule (diverged, failed) unless it was stopped.
      n.stopped = c.selecting.stopped > 0 && runs_against_its_lr(c.selecting) == 0;
      n.separated = !n.stopped;
    } else {
      n.gap = c.selecting_val_loss.mean - b.selecting_val_loss.mean;
      if (noise)
        n.margin = sweep_file::NoiseRule::kZ * out.sd *
                   std::sqrt(1.0 / b.selecting_val_loss.n + 1.0 / c.selecting_val_loss.n);
      n.separated = runs_against_its_lr(c.selecting) > runs_against_its_lr(b.selecting) ||
                    (noise ? n.gap > n.margin : true);
    }
    out.neighbours.push_back(n);
  }
  return out;
}

std::optional<NoiseSeedStep> next_noise_seed(const Row& row, const BracketCheck& check,
                                             const sweep_file::NoiseRule& noise) {
  std::vector<size_t> needy;
  for (const NeighbourCheck& n : check.neighbours)
    if (!n.separated && !n.stopped) needy.push_back(n.cell);
  if (needy.empty()) return std::nullopt;
  needy.push_back(row.selected);
  auto has_seed = [&](size_t cell, int64_t seed) {
    for (const Run* r : row.cells[cell].runs)
      if (r->selects && r->job->seed == seed) return true;
    return false;
  };
  for (int64_t seed : noise.seeds) {
    NoiseSeedStep step{seed, {}};
    for (size_t cell : needy)
      if (!has_seed(cell, seed)) step.cells.push_back(cell);
    if (!step.cells.empty()) return step;
  }
  return std::nullopt;
}

}  // namespace server
