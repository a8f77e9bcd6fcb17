// The transfer section's rules (scripts/transfer_rules.mjs) on LrPoints as the API writes them:
// a grid point is an (lr, weight decay) pair, and the regret's verdict follows its interval.
import { test } from "node:test";
import assert from "node:assert/strict";
import { axisNeighbours, openSides, regret, transfers, jointVerdict, samePoint } from "../../scripts/transfer_rules.mjs";

const at = (lr, wd, mean, n = 1, selected = false) => ({ lr, weight_decay: wd, selected, final_val_loss: { mean, std: 0, n, of: n } });

test("a point is the same grid point only at the same lr and weight decay", () => {
  assert.ok(samePoint({ lr: 0.004, weight_decay: 0.1 }, { lr: 0.004 * (1 + 1e-9), weight_decay: 0.1 }));
  assert.ok(!samePoint({ lr: 0.004, weight_decay: 0.1 }, { lr: 0.004, weight_decay: 0.4 }));
  const points = [at(0.004, 0.1, 2.0, 1, true), at(0.004, 0.4, 2.3)];
  assert.equal(regret(points, { lr: 0.004, weight_decay: 0.1 }, 0.01).kind, "same");
  const other = regret(points, { lr: 0.004, weight_decay: 0.4 }, 0.01);
  assert.equal(other.kind, "measured", "the best lr at another weight decay is not the best point");
  assert.ok(Math.abs(other.value - 0.3) < 1e-12);
  assert.equal(regret(points, { lr: 0.008, weight_decay: 0.1 }, 0.01).kind, "none", "never run there");
});

test("the verdict follows the interval against the tolerance", () => {
  const best = at(0.004, 0.1, 2.0, 2, true);
  // 1.96 · 0.01 · sqrt(1/2 + 1/2) = 0.0196 either side.
  const near = regret([best, at(0.008, 0.1, 2.0001, 2)], { lr: 0.008, weight_decay: 0.1 }, 0.01);
  assert.equal(transfers(near, 0.02), "within tolerance");
  const far = regret([best, at(0.008, 0.1, 2.1, 2)], { lr: 0.008, weight_decay: 0.1 }, 0.01);
  assert.equal(transfers(far, 0.02), "does not transfer");
  const between = regret([best, at(0.008, 0.1, 2.02, 2)], { lr: 0.008, weight_decay: 0.1 }, 0.01);
  assert.equal(transfers(between, 0.02), "not decided");
  // With one seed a cell the interval alone (± 0.028) is wider than the tolerance: only the same
  // grid point can come out positive, and only on a bracketed reference.
  const oneSeed = regret([at(0.004, 0.1, 2.0, 1, true), at(0.008, 0.1, 2.0, 1)], { lr: 0.008, weight_decay: 0.1 }, 0.01);
  assert.equal(transfers(oneSeed, 0.02), "not decided");
  const same = regret([at(0.004, 0.1, 2.0, 1, true)], { lr: 0.004, weight_decay: 0.1 }, 0.01);
  assert.equal(transfers(same, 0.02), "same grid point");
  assert.equal(transfers(same, 0.02, false), "not decided");
  assert.equal(transfers({ kind: "lost" }, 0.02), "does not transfer");
  assert.equal(jointVerdict(["same grid point", "within tolerance"]), "within tolerance");
  assert.equal(jointVerdict(["same grid point", "does not transfer"]), "not decided");
  assert.equal(jointVerdict([]), "not decided");
});

test("axis neighbours are the nearest points along each axis through the point", () => {
  const best = at(0.004, 0.1, 2.0, 1, true);
  const points = [at(0.002, 0.1, 2.1), at(0.001, 0.1, 2.2), best, at(0.008, 0.1, 2.1), at(0.004, 0.025, 2.1),
                  at(0.004, 0.4, 2.1), at(0.008, 0.4, 2.0)];
  const got = axisNeighbours(points, best).map((p) => [p.lr, p.weight_decay]);
  assert.deepEqual(got, [[0.002, 0.1], [0.008, 0.1], [0.004, 0.025], [0.004, 0.4]]);
  assert.deepEqual(openSides(points, best), []);
  // At an extension point (0.004, 0.00625) only its weight-decay line above was tried.
  const edge = at(0.004, 0.00625, 1.9, 1, true);
  assert.deepEqual(openSides([...points, edge], edge), ["a lower lr", "a higher lr", "a lower weight decay"]);
});
