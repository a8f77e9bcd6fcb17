// The transfer section's rules (docs/reproduction.md, "Hyperparameter transfer across widths"):
// grid points (lr, weight decay), their axis neighbours, transfer regret with its interval and the
// verdict it gives. Read by reproduction_transfer_report.mjs; tested in tests/report/.
import { f } from "./report_rules.mjs";

const g = (v) => (v === null || v === undefined || Number.isNaN(v) ? "–" : String(Number(Number(v).toPrecision(4))));
const same = (a, b) => Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b));
// A grid point: the same lr and the same weight decay (sweep_file::same_point).
export const samePoint = (p, q) => same(p.lr, q.lr) && same(p.weight_decay, q.weight_decay);
export const pointText = (p) => `(${g(p.lr)}, ${g(p.weight_decay)})`;
export const Z = 1.96;  // two-sided 95% under a normal model

// The pooled sample SD over points with two seeds or more, and its degrees of freedom.
export function pooledSd(points) {
  let sum = 0, dof = 0;
  for (const p of points) if (p.final_val_loss.n >= 2) { sum += (p.final_val_loss.n - 1) * p.final_val_loss.std ** 2; dof += p.final_val_loss.n - 1; }
  return { sd: dof > 0 ? Math.sqrt(sum / dof) : 0, dof };
}

// Along each axis the nearest tried point below and above `at` (the coordinator's
// axis_neighbours, server/results/rows.h): the lr at its weight decay, the weight decay at its lr.
// Each side is the point, or undefined where nothing was tried.
function axisSides(points, at) {
  const sides = {};
  for (const [along, across] of [["lr", "weight_decay"], ["weight_decay", "lr"]]) {
    const line = points.filter((p) => p !== at && same(p[across], at[across]));
    sides[along] = [line.filter((p) => p[along] < at[along]).sort((a, b) => b[along] - a[along])[0],
                    line.filter((p) => p[along] > at[along]).sort((a, b) => a[along] - b[along])[0]];
  }
  return sides;
}

export function axisNeighbours(points, at) {
  const { lr, weight_decay } = axisSides(points, at);
  return [...lr, ...weight_decay].filter(Boolean);
}

// The sides of `at` where nothing was tried along its axes ("a lower lr", ...): an edge.
export function openSides(points, at) {
  const { lr, weight_decay } = axisSides(points, at);
  return [[lr[0], "a lower lr"], [lr[1], "a higher lr"], [weight_decay[0], "a lower weight decay"],
          [weight_decay[1], "a higher weight decay"]].filter(([p]) => !p).map(([, side]) => side);
}

// The regret at `points` (one row's cells at one width, LrPoints of the API) of using `point`
// instead of the row's selected best there: the difference of mean final val losses, with the
// 95% interval ± Z·sd·sqrt(1/n_a + 1/n_b).
export function regret(points, point, sd) {
  const best = points.find((p) => p.selected);
  const at = points.find((p) => samePoint(p, point));
  if (!best) return { text: "no choice there", kind: "none" };
  if (!at) return { text: `${pointText(point)} not tried there`, kind: "none" };
  if (at === best) return { value: 0, kind: "same", text: `0 at ${pointText(point)} (the same grid point)` };
  if (at.final_val_loss.n === 0) return { text: `${pointText(point)} has no final loss there (diverged or failed)`, kind: "lost" };
  const value = at.final_val_loss.mean - best.final_val_loss.mean;
  const half = Z * sd * Math.sqrt(1 / at.final_val_loss.n + 1 / best.final_val_loss.n);
  const seeds = at.final_val_loss.n === 1 && best.final_val_loss.n === 1 ? "one seed each" : `${at.final_val_loss.n} and ${best.final_val_loss.n} seeds`;
  return { value, lo: value - half, hi: value + half, kind: "measured",
           text: `${f(value, 4)} [${f(value - half, 4)}, ${f(value + half, 4)}] at ${pointText(point)} (${seeds})` };
}

// The rule. A regret whose upper bound is within `tolerance` transfers; one whose lower bound
// exceeds it does not; else not decided. The same grid point is the only other positive outcome,
// and only where the reference's best is bracketed (`referenceBracketed`): a best at an edge or
// within the noise of a neighbour is no optimum to land on.
export function transfers(r, tolerance, referenceBracketed = true) {
  if (r.kind === "same") return referenceBracketed ? "same grid point" : "not decided";
  if (r.kind === "lost") return "does not transfer";
  if (r.kind !== "measured") return "not decided";
  return r.hi <= tolerance ? "within tolerance" : r.lo > tolerance ? "does not transfer" : "not decided";
}
export const positive = (v) => v === "same grid point" || v === "within tolerance";

// One verdict over every point the base width could not tell apart: they must agree.
export function jointVerdict(verdicts) {
  const distinct = [...new Set(verdicts)];
  return distinct.length === 0 ? "not decided" : distinct.length === 1 ? distinct[0]
    : distinct.every(positive) ? "within tolerance" : "not decided";
}
