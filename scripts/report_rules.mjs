// The verdict rules of the reproduction reports (docs/statistics.md), shared by
// reproduction_report.mjs (the fixed-grid twins) and reproduction_tuning_report.mjs (the twins whose
// lrs the coordinator brackets), so that one rule decides a claim wherever it is printed.

export const f = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
export const pm = (s, d = 2) => (s.n === 0 ? "–" : s.n === 1 ? f(s.mean, d) : `${f(s.mean, d)} ± ${f(s.std, d)}`) + (s.n < s.of ? ` (${s.n}/${s.of})` : "");
export const ratioWords = (r) => {
  const core = { RATIO_ESTIMATE: f(r.value), RATIO_LOWER_BOUND: ">" + f(r.value), RATIO_UPPER_BOUND: "<" + f(r.value) }[r.kind] || "missing";
  return r.has_interval ? `${core} [${f(r.ci_low)}, ${f(r.ci_high)}]` : `${core} (${r.pairs} pair${r.pairs === 1 ? "" : "s"}, no interval)`;
};
// Two means over seeds differ "clearly" when the gap exceeds the sum of their standard errors x 2.
export const clearlyBelow = (a, b) => a.n > 1 && b.n > 1 && b.mean - a.mean > 2 * (a.std / Math.sqrt(a.n) + b.std / Math.sqrt(b.n));

// No verdict on a fallback target (docs/statistics.md, "Targets from the data"): when no loss is
// reached by every run only late in its budget, the one target is the lowest loss every run
// reaches, which some reach early: R there compares one side's early speed with the other's
// annealed end. `results` is the sweep's GetResults answer; null when a verdict may be given.
export function fallbackTargetWithheld(results) {
  return results.target_source === "TARGETS_FROM_DATA_FALLBACK"
    ? "withheld: the target is the fallback of targets from the data (the lowest loss every run reaches, which some runs reach early in their budget), so R there compares one side's early speed with the other's annealed end"
    : null;
}

// No verdict where a crossing lies outside the annealed end of its schedule (docs/statistics.md,
// "Where each side reaches the target"): within a run, every seed R pairs must first reach the
// target in the last third of its budget (the rule of targets from the data), since earlier it
// measures speed at a high lr; on a budget ladder, T is read at the end of annealing and every
// seed of both sides must reach the target at some budget. `p` is a RatioPoint; null when a
// verdict may rest on it, else the reason.
export const ANNEALED_SHARE = 2 / 3;
export function crossingWithheld(p) {
  const reasons = [];
  for (const [name, c] of [["AdamW", p.adamw_crossing], ["Muon", p.muon_crossing]]) {
    if (!c) reasons.push(`where ${name} reaches the target is not known`);
    else if (p.reading === "READ_ANNEALED") {
      if (c.missed > 0) reasons.push(`${c.missed} ${name} seed${c.missed === 1 ? " does" : "s do"} not reach it at the end of annealing at any budget`);
    } else if (c.reached > 0 && c.earliest_share < ANNEALED_SHARE) {
      reasons.push(`${name}'s earliest seed reaches it at ${f(100 * c.earliest_share, 0)}% of its budget, before the annealed last third`);
    }
  }
  return reasons.length ? `batch ${Number(p.batch_tokens)}: ${reasons.join("; ")}` : null;
}

// The reasons crossingWithheld gives for the ratios of one target and group: a trend or a plane
// over such a ratio would carry its early speed too.
function withheldCrossings(results, target, group) {
  return (results.ratios || []).filter((p) => p.target === target && (p.group || "") === (group || ""))
    .map(crossingWithheld).filter(Boolean);
}

// One side's T / budget as the tables show it: "34%", "34% (1 missed)", or "–" when no seed
// reached the target.
export const shareText = (c) => (!c ? "–" : `${c.reached ? f(100 * c.mean_share, 0) + "%" : "–"}${c.missed ? ` (${c.missed} missed)` : ""}`);

// Verdict rule for claim 1 (docs/statistics.md): "reproduces" only when every (target, batch)
// point is decided and each has a 95% interval above 1 (an intersection–union rule: no
// multiplicity correction is needed for it). A point whose chosen lr sits at its grid's edge, whose
// crossing lies outside the annealed end of its schedule, or whose ratio is missing is withheld,
// and any withheld point leaves the claim not decided; a bound without an interval decides
// nothing either way, except an upper bound at or below 1, which counts against Muon. Any point
// below 1 is a disagreement (an uncorrected one-sided 2.5% test per point: read it so).
export function tokenClaim(ratio) {
  const withheld = fallbackTargetWithheld(ratio);
  if (withheld) return { verdict: withheld, table: tokenTable(ratio) };
  const atEdge = (p) => p.adamw_lr_at_edge || p.muon_lr_at_edge;
  const all = ratio.ratios;
  const missing = all.filter((p) => p.ratio.kind === "RATIO_MISSING");
  const known = all.filter((p) => p.ratio.kind !== "RATIO_MISSING");
  const edged = known.filter(atEdge);
  const early = known.filter((p) => !atEdge(p) && crossingWithheld(p));
  const points = known.filter((p) => !atEdge(p) && !crossingWithheld(p));
  const above = points.filter((p) => p.ratio.has_interval && p.ratio.ci_low > 1);
  const below = points.filter((p) => (p.ratio.has_interval ? p.ratio.ci_high < 1 : p.ratio.kind === "RATIO_UPPER_BOUND" && p.ratio.value <= 1));
  // Rows with one lr each (no neighbouring lrs, no edges): the sweep fixed its lrs beforehand.
  const fixedLrs = all.length > 0 && all.every((p) => (p.neighbours || []).length === 0 && !atEdge(p));
  const where = fixedLrs ? "at the fixed lrs (one per row, not tuned in this sweep)" : "with both lrs inside their grids";
  const reasons = [edged.length && `${edged.length} with a chosen lr at its grid's edge (marked "edge")`,
                   early.length && `${early.length} with a crossing outside the annealed end of its schedule (below the table)`,
                   missing.length && `${missing.length} missing (see the table's notes)`].filter(Boolean).join("; ");
  const left = all.length - points.length;
  const verdict = all.length === 0 ? "withheld: no (target, batch) point"
    : below.length > 0 ? `disagrees at ${below.length} of ${all.length} points (Muon needed more tokens)`
    : left > 0 ? `not decided: ${left} of ${all.length} points withheld (${reasons})${above.length ? `; ${above.length} of the others are above 1 by a 95% interval` : ""}`
    : above.length === all.length ? `reproduces: R_L(B) > 1 at all ${all.length} (target, batch) points ${where}, each by a 95% interval above 1`
    : `not decided: ${above.length} of ${all.length} points are above 1 by a 95% interval; the others (bounds without an interval, or intervals reaching 1) decide nothing`;
  const why = early.map((p) => `- L = ${p.target}, ${crossingWithheld(p)}.`).join("\n");
  return { verdict, table: tokenTable(ratio) + (why ? "\n\nWithheld from the verdict:\n\n" + why : "") };
}

function tokenTable(ratio) {
  const lrText = (lr, edge) => `${lr}${edge ? " (edge)" : ""}`;
  const rows = ratio.ratios.map((p) => `| ${p.target} | ${Number(p.batch_tokens)} | ${ratioWords(p.ratio)} | ${lrText(p.adamw_lr, p.adamw_lr_at_edge)} / ${lrText(p.muon_lr, p.muon_lr_at_edge)} | ${shareText(p.adamw_crossing)} / ${shareText(p.muon_crossing)} |`);
  return ["| target loss | batch tokens | R_L(B) [95% CI] | lr AdamW / Muon | T / budget AdamW / Muon |", "|---:|---:|---|---|---|", ...rows].join("\n");
}

// Verdict rule for claim 2 (docs/statistics.md, "How R moves with B"): the slope of the mean
// log R on log2 B over every batch size, with its 95% Welch–Satterthwaite interval (each batch
// size's own noise). "Does not fall" is non-inferiority: the interval's lower end of R's factor
// per doubling lies above the sweep's margin (analysis.trend_margin); "falls" when the whole
// interval lies below the margin (a fall larger than the margin, so the two never both hold);
// otherwise not decided. Withheld where a ratio is a bound or missing, a
// chosen lr sits at its grid's edge or a batch size has one seed pair.
export function monotoneClaim(ratio) {
  const trends = ratio.trends || [];
  const df = (t) => (t.degrees_of_freedom === null ? "no noise" : `df ${f(t.degrees_of_freedom, 1)}`);
  const falls = (t) => t.high < t.margin;
  const reading = (t) => (falls(t) ? `falls (upper end ${f(t.high, 3)} < margin ${f(t.margin, 2)})`
    : t.does_not_fall ? `does not fall (lower end ${f(t.low, 3)} > margin ${f(t.margin, 2)})`
    : `not shown not to fall (lower end ${f(t.low, 3)} ≤ margin ${f(t.margin, 2)})`);
  const early = (t) => withheldCrossings(ratio, t.target, t.group);
  const decidable = (t) => t.has_slope && early(t).length === 0;
  const lines = trends.map((t) => t.has_slope && !decidable(t)
    ? `- L = ${t.target}${t.group ? ` (${t.group})` : ""}: no verdict: ${early(t).join("; ")} (the slope would be ×${f(t.per_doubling, 3)} per doubling, [${f(t.low, 3)}, ${f(t.high, 3)}]).`
    : t.has_slope
    ? `- L = ${t.target}${t.group ? ` (${t.group})` : ""}: R changes by ×${f(t.per_doubling, 3)} per doubling of B, 95% interval [${f(t.low, 3)}, ${f(t.high, 3)}] (Welch, ${df(t)}; ${t.batch_sizes} batch sizes, ${t.points} seed pairs): ${reading(t)}.`
    : `- L = ${t.target}${t.group ? ` (${t.group})` : ""}: no verdict: ${t.withheld}.`);
  const withheld = fallbackTargetWithheld(ratio);
  if (withheld) return { verdict: withheld, lines: lines.join("\n") };
  const decided = trends.filter(decidable);
  const fallen = decided.filter(falls);
  const margin = decided.length ? f(decided[0].margin, 2) : "";
  const verdict = decided.length === 0 ? "withheld for every target (reasons below)"
    : fallen.length > 0 ? `disagrees for L = ${fallen.map((t) => t.target).join(", ")}: R_L(B) falls as B grows, by more than the margin`
    : decided.length < trends.length ? `not decided: ${trends.length - decided.length} of ${trends.length} targets withheld (reasons below)${decided.every((t) => t.does_not_fall) ? `; at the other ${decided.length}, R does not fall by more than the margin` : ""}`
    : decided.every((t) => t.low > 1) ? `reproduces: R_L(B) rises with B at every target (each interval's lower end above 1), so it does not fall by more than the margin ×${margin} per doubling either`
    : decided.every((t) => t.does_not_fall) ? `reproduces: R_L(B) does not fall by more than the margin ×${margin} per doubling of B at every target (non-inferiority; it may still fall by less)`
    : `not decided: no slope falls beyond the margin, but ${decided.filter((t) => !t.does_not_fall).length} of ${decided.length} intervals reach below the margin ×${margin} per doubling`;
  return { verdict, lines: lines.join("\n") };
}


// Verdict rule for section 3.2 (docs/statistics.md, "The compute–time Pareto frontier"): each
// setting and target's plane carries the results' own verdict (Muon dominates when every AdamW
// frontier point is beaten, intervals apart, on no more devices); the claim reproduces when every
// plane says so, disagrees where one says Muon does not dominate, and is undecided otherwise.
export function paretoClaim(results) {
  const planes = results.pareto || [];
  const word = { PARETO_MUON_DOMINATES: "Muon dominates", PARETO_NOT_DOMINATED: "Muon does not dominate" };
  const lines = planes.map((p) => `- L = ${p.target}${p.group ? ` (${p.group})` : ""}: ${word[p.verdict] || "undecided"}: ${p.why}.`).join("\n");
  const withheld = fallbackTargetWithheld(results);
  if (withheld) return { verdict: withheld, lines };
  const early = (plane) => withheldCrossings(results, plane.target, plane.group).length > 0;
  if (planes.some(early))
    return { verdict: `withheld: at L = ${[...new Set(planes.filter(early).map((p) => p.target))].join(", ")} a crossing lies outside the annealed end of its schedule (claim 1's table says where)`, lines };
  const against = planes.filter((p) => p.verdict === "PARETO_NOT_DOMINATED");
  const verdict = planes.length === 0 ? "withheld: no setting has AdamW and Muon rows at several batch sizes"
    : against.length > 0 ? `disagrees for L = ${against.map((p) => p.target).join(", ")}: an AdamW point is faster than every Muon point on as few devices`
    : planes.every((p) => p.verdict === "PARETO_MUON_DOMINATES") ? "reproduces: Muon's frontier dominates AdamW's on every plane, intervals apart"
    : `not decided: ${planes.filter((p) => p.verdict !== "PARETO_MUON_DOMINATES").length} of ${planes.length} planes are undecided (reasons below)`;
  return { verdict, lines };
}

// Where each side reaches each target, on the runs R uses (the lrs it chose per target, the seeds
// it pairs): the mean of T / budget over the seeds that reach it. Within a run, a target crossed
// early measures speed at peak lr, one crossed at the very end the whole run; on a ladder, T is
// read annealed and the share is against the largest budget.
export function targetPosition(results) {
  const points = (results.ratios || []).filter((p) => p.adamw_crossing && p.muon_crossing);
  if (!points.length) return "";
  const share = (c) => (c.reached ? `${f(100 * c.mean_share, 0)}%` : "never") + (c.missed && c.reached ? ` (${c.missed} seed(s) never)` : "");
  const annealed = points[0].reading === "READ_ANNEALED";
  return `Where each side reaches the target (mean of T / ${annealed ? "the ladder's largest budget" : "the run's budget"} over the seeds R pairs, at the lrs R uses): ` +
    points.map((p) => `L = ${p.target}, batch ${Number(p.batch_tokens)}: AdamW ${share(p.adamw_crossing)}, Muon ${share(p.muon_crossing)}`).join("; ") + "." +
    (annealed ? "" : " Where these shares differ widely, R compares one side's early training with the other's late training, and its trend with B carries that too.");
}

// A ratio of ours (a PairedRatio as the API writes it) against the paper's figure for it, where
// the paper's claim is "below 1, at about `paper`": reproduced only when our 95% interval lies
// below 1 and holds the paper's figure; not reproduced when it holds 1 but not the paper's
// figure, or lies above 1; otherwise it says what the interval does and does not hold.
export function paperRatioVerdict(r, paper) {
  if (!r.has_interval) return "Not decided: no interval (" + (r.kind === "RATIO_ESTIMATE" ? `${r.pairs} pair${r.pairs === 1 ? "" : "s"}` : "a bound") + ").";
  const holdsPaper = r.ci_low <= paper && paper <= r.ci_high;
  if (r.ci_high < 1) return holdsPaper ? `Reproduced: below 1 by its 95% interval, which holds the paper's ${paper}.`
    : `Below 1 by its 95% interval, but the paper's ${paper} lies outside it.`;
  if (r.ci_low > 1) return "Not reproduced: above 1 by its 95% interval.";
  return holdsPaper ? `Not decided: the 95% interval holds both 1 and the paper's ${paper}.`
    : `Not reproduced: the 95% interval holds 1 and excludes the paper's ${paper}.`;
}
