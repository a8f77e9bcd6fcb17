// The reproduction reports' verdict rules (scripts/report_rules.mjs) on GetResults answers as
// the API writes them: each rule decides, and withholds, as docs/statistics.md says.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tokenClaim, monotoneClaim, crossingWithheld, targetPosition, paperRatioVerdict } from "../../scripts/report_rules.mjs";

const estimate = (value, low, high) => ({ kind: "RATIO_ESTIMATE", value, has_interval: true, ci_low: low, ci_high: high, pairs: 3 });
// Where each side reaches the target (RatioPoint's CrossingShare); by default read on a ladder,
// every seed reaching it at the end of annealing.
const crossing = (earliest = 0.5, missed = 0) => ({ reached: 3 - missed, missed, mean_share: earliest + 0.1, earliest_share: earliest });
const point = (batch, ratio, edge = false, fields = {}) => ({ target: 3.5, batch_tokens: batch, ratio, adamw_lr: 0.002, muon_lr: 0.01, adamw_lr_at_edge: edge, muon_lr_at_edge: false,
  reading: "READ_ANNEALED", adamw_crossing: crossing(), muon_crossing: crossing(), ...fields });
const trend = (low, high, doesNotFall) => ({ has_slope: true, target: 3.5, per_doubling: Math.sqrt(low * high), low, high, degrees_of_freedom: 3.4, margin: 0.9, does_not_fall: doesNotFall, batch_sizes: 3, points: 9 });
const results = (fields) => ({ target_source: "TARGETS_GIVEN", ratios: [], trends: [], ...fields });

test("claim 1 reproduces only where every point's interval lies above 1", () => {
  const above = results({ ratios: [point(1024, estimate(1.8, 1.3, 2.4)), point(2048, estimate(2.1, 1.5, 2.9))] });
  assert.match(tokenClaim(above).verdict, /^reproduces: R_L\(B\) > 1 at all 2 \(target, batch\) points at the fixed lrs/);
  const mixed = results({ ratios: [point(1024, estimate(1.8, 1.3, 2.4)), point(2048, estimate(1.2, 0.8, 1.7))] });
  assert.match(tokenClaim(mixed).verdict, /^not decided: 1 of 2 points are above 1 by a 95% interval/);
  const edged = results({ ratios: [point(1024, estimate(1.8, 1.3, 2.4)), point(2048, estimate(1.2, 0.8, 1.7), true)] });
  assert.match(tokenClaim(edged).verdict, /^not decided: 1 of 2 points withheld \(1 with a chosen lr at its grid's edge/);
  // An upper bound at or below 1 counts against Muon; a lower bound without an interval decides nothing.
  const upper = results({ ratios: [point(1024, { kind: "RATIO_UPPER_BOUND", value: 0.9, has_interval: false, pairs: 3 })] });
  assert.match(tokenClaim(upper).verdict, /^disagrees at 1 of 1 points/);
  const lower = results({ ratios: [point(1024, { kind: "RATIO_LOWER_BOUND", value: 1.2, has_interval: false, pairs: 3 })] });
  assert.match(tokenClaim(lower).verdict, /^not decided: 0 of 1 points are above 1/);
});

test("claim 2 is non-inferiority against the margin, and a fall is a disagreement", () => {
  assert.match(monotoneClaim(results({ trends: [trend(0.95, 1.6, true)] })).verdict, /^reproduces: R_L\(B\) does not fall by more than the margin ×0.90 per doubling of B at every target/);
  assert.match(monotoneClaim(results({ trends: [trend(1.05, 1.6, true)] })).verdict, /^reproduces: R_L\(B\) rises with B at every target/);
  const partial = monotoneClaim(results({ trends: [trend(0.95, 1.6, true), { has_slope: false, target: 3.0, withheld: "a bound" }] }));
  assert.match(partial.verdict, /^not decided: 1 of 2 targets withheld/);
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

test("no verdict where a crossing lies outside the annealed end of its schedule", () => {
  // Within a run, a crossing before the last third of the budget is early speed at a high lr.
  const early = point(1024, estimate(1.8, 1.3, 2.4), false, { reading: "READ_WITHIN_RUN", adamw_crossing: crossing(0.8), muon_crossing: crossing(0.15) });
  assert.match(crossingWithheld(early), /Muon's earliest seed reaches it at 15% of its budget, before the annealed last third/);
  assert.equal(crossingWithheld({ ...early, muon_crossing: crossing(0.7) }), null);
  // On a ladder every seed of both sides must reach it at the end of annealing of some budget.
  const missed = point(2048, estimate(1.8, 1.3, 2.4), false, { adamw_crossing: crossing(0.6, 1) });
  assert.match(crossingWithheld(missed), /1 AdamW seed does not reach it at the end of annealing at any budget/);
  assert.match(crossingWithheld(point(1024, estimate(1.8, 1.3, 2.4), false, { adamw_crossing: undefined })), /where AdamW reaches the target is not known/);
  const ok = point(1024, estimate(1.8, 1.3, 2.4));
  const r = results({ ratios: [ok, early, missed], trends: [trend(0.95, 1.6, true)] });
  assert.match(tokenClaim(r).verdict, /^not decided: 2 of 3 points withheld \(2 with a crossing outside the annealed end of its schedule/);
  // A trend over a withheld point is withheld too: its slope would carry the early speed.
  const m = monotoneClaim(r);
  assert.equal(m.verdict, "withheld for every target (reasons below)");
  assert.match(m.lines, /no verdict: batch 1024: .*before the annealed last third/);
  // Positions are those of the runs R uses, per target and batch.
  assert.match(targetPosition(results({ ratios: [early] })), /L = 3.5, batch 1024: AdamW 90%, Muon 25%/);
});

test("a ratio against the paper's figure: reproduced only below 1 with the paper's figure inside", () => {
  assert.match(paperRatioVerdict(estimate(0.517, 0.332, 0.806), 0.52), /^Reproduced: below 1/);
  assert.match(paperRatioVerdict(estimate(0.2, 0.1, 0.3), 0.48), /^Below 1 by its 95% interval, but the paper's 0.48 lies outside it/);
  // Table 3's MoE-MLA + Muon of 2026-12-07: 0.767 [0.510, 1.154] against the paper's 0.48.
  assert.match(paperRatioVerdict(estimate(0.767, 0.510, 1.154), 0.48), /^Not reproduced: the 95% interval holds 1 and excludes the paper's 0.48/);
  assert.match(paperRatioVerdict(estimate(0.7, 0.4, 1.2), 0.48), /^Not decided: the 95% interval holds both 1/);
  assert.match(paperRatioVerdict(estimate(1.5, 1.2, 1.9), 0.48), /^Not reproduced: above 1/);
  assert.match(paperRatioVerdict({ kind: "RATIO_LOWER_BOUND", value: 0.9, has_interval: false, pairs: 3 }, 0.48), /^Not decided: no interval \(a bound\)/);
});
