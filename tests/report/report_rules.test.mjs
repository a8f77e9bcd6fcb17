// The reproduction reports' verdict rules (scripts/report_rules.mjs) on GetResults answers as
// the API writes them: each rule decides, and withholds, as docs/statistics.md says.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tokenClaim, monotoneClaim } from "../../scripts/report_rules.mjs";

const estimate = (value, low, high) => ({ kind: "RATIO_ESTIMATE", value, has_interval: true, ci_low: low, ci_high: high, pairs: 3 });
const point = (batch, ratio, edge = false) => ({ target: 3.5, batch_tokens: batch, ratio, adamw_lr: 0.002, muon_lr: 0.01, adamw_lr_at_edge: edge, muon_lr_at_edge: false });
const trend = (low, high, doesNotFall) => ({ has_slope: true, target: 3.5, per_doubling: Math.sqrt(low * high), low, high, degrees_of_freedom: 3.4, margin: 0.9, does_not_fall: doesNotFall, batch_sizes: 3, points: 9 });
const results = (fields) => ({ target_source: "TARGETS_GIVEN", ratios: [], trends: [], ...fields });

test("claim 1 reproduces only where every point's interval lies above 1", () => {
  const above = results({ ratios: [point(1024, estimate(1.8, 1.3, 2.4)), point(2048, estimate(2.1, 1.5, 2.9))] });
  assert.match(tokenClaim(above).verdict, /^reproduces: R_L\(B\) > 1 at every point/);
  const mixed = results({ ratios: [point(1024, estimate(1.8, 1.3, 2.4)), point(2048, estimate(1.2, 0.8, 1.7))] });
  assert.match(tokenClaim(mixed).verdict, /^partly: 1 of 2 points are above 1/);
  const edged = results({ ratios: [point(1024, estimate(1.8, 1.3, 2.4)), point(2048, estimate(1.2, 0.8, 1.7), true)] });
  assert.match(tokenClaim(edged).verdict, /^reproduces: .*\(1 point\(s\) left out of the verdict: a chosen lr sits at its grid's edge/);
});

test("claim 2 is non-inferiority against the margin, and a fall is a disagreement", () => {
  assert.match(monotoneClaim(results({ trends: [trend(0.95, 1.6, true)] })).verdict, /^reproduces: R_L\(B\) does not fall with B \(non-inferiority at margin ×0.90/);
  const open = monotoneClaim(results({ trends: [trend(0.85, 1.6, false)] }));
  assert.match(open.verdict, /^not decided: no slope falls beyond the margin, but 1 of 1 intervals reach below the margin/);
  // Below 1 but within the margin: the fall the sweep tolerates, not a disagreement.
  assert.match(monotoneClaim(results({ trends: [trend(0.92, 0.98, true)] })).verdict, /^reproduces/);
  assert.match(open.lines, /not shown not to fall \(lower end 0.850 ≤ margin 0.90\)/);
  assert.match(monotoneClaim(results({ trends: [trend(0.5, 0.8, false)] })).verdict, /^disagrees for L = 3.5: R_L\(B\) falls as B grows/);
  const withheld = monotoneClaim(results({ trends: [{ has_slope: false, target: 3.5, withheld: "one seed pair at batch 1024: its noise is unknown" }] }));
  assert.equal(withheld.verdict, "withheld for every target (reasons below)");
});

test("no verdict on the fallback of targets from the data, whatever the numbers say", () => {
  const fallback = results({ target_source: "TARGETS_FROM_DATA_FALLBACK", ratios: [point(1024, estimate(1.8, 1.3, 2.4))], trends: [trend(0.95, 1.6, true)] });
  assert.match(tokenClaim(fallback).verdict, /^withheld: the target is the fallback of targets from the data/);
  assert.match(tokenClaim(fallback).table, /\| 3.5 \| 1024 \| 1.800 \[1.300, 2.400\]/, "the numbers are still shown");
  assert.match(monotoneClaim(fallback).verdict, /^withheld: the target is the fallback/);
  const chosen = results({ target_source: "TARGETS_FROM_DATA", ratios: [point(1024, estimate(1.8, 1.3, 2.4))] });
  assert.match(tokenClaim(chosen).verdict, /^reproduces/, "targets the rule chose without its fallback are decided on");
});

test("section 3.2 reproduces only when every plane says Muon dominates", async () => {
  const { paretoClaim } = await import("../../scripts/report_rules.mjs");
  const plane = (verdict, why = "…") => ({ target: 3.5, group: "baseline", verdict, why, points: [] });
  assert.match(paretoClaim(results({ pareto: [plane("PARETO_MUON_DOMINATES")] })).verdict, /^reproduces/);
  assert.match(paretoClaim(results({ pareto: [plane("PARETO_MUON_DOMINATES"), plane("PARETO_UNDECIDED", "fewer than 3 seeds")] })).verdict, /^not decided: 1 of 2 planes/);
  assert.match(paretoClaim(results({ pareto: [plane("PARETO_NOT_DOMINATED")] })).verdict, /^disagrees for L = 3.5/);
  assert.match(paretoClaim(results({ pareto: [] })).verdict, /^withheld: no setting/);
  assert.match(paretoClaim(results({ target_source: "TARGETS_FROM_DATA_FALLBACK", pareto: [plane("PARETO_MUON_DOMINATES")] })).verdict, /^withheld: the target is the fallback/);
});
