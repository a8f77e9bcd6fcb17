// Writes the ladder section of docs/reproduction.md from a finished `scripts/reproduce.sh --ladder`
// run: claims 1, 2 and 2b decided on budget ladders (examples/batch_size_ratio_ladder_cpu.yaml),
// T read at the end of annealing, with pre-registered lrs and targets; the scaling fits and the
// compute multiplier; and the findings that contradict the paper. The section sits between the
// markers below, under "The paper's claims"; the rest of the file is left as it is (and
// scripts/reproduction_report.mjs keeps this section when it rewrites the rest).
//   node scripts/reproduction_ladder_report.mjs --base URL --sweep N --results-dir DIR \
//        --run-info FILE --out docs/reproduction.md --plots docs/reproduction
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { cpus } from "node:os";
import { f, ratioWords, shareText, tokenClaim, monotoneClaim, paretoClaim, crossingWithheld } from "./report_rules.mjs";
import { renderPlots } from "./report_plots.mjs";
import { writeSection } from "./report_io.mjs";

export const BEGIN = "<!-- ladder:begin (scripts/reproduce.sh --ladder writes this section) -->";
export const END = "<!-- ladder:end -->";

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []));
const id = Number(args.sweep);
const getJson = async (path) => (await fetch(args.base + path)).json();
const detail = await getJson(`/api/sweeps/${id}`), all = await getJson(`/api/sweeps/${id}/results`);
// The verdicts rest on T read at the end of annealing. The results also give each rung's own
// within-run ratios (each budget as a sweep of its own); they are in the full results below.
const annealed = (items) => (items || []).filter((x) => x.reading === "READ_ANNEALED");
const results = { ...all, ratios: annealed(all.ratios), trends: annealed(all.trends), pareto: annealed(all.pareto) };
const plots = await renderPlots(args, [["ladder", id, ["ratio", "pareto", "scaling", "scaling-residuals"]]]);
const runInfo = Object.fromEntries((existsSync(args["run-info"]) ? readFileSync(args["run-info"], "utf8") : "")
  .split(/\s+/).filter((w) => w.includes("=")).map((w) => w.split("=")));
const states = Object.entries(detail.sweep.jobs_by_state).map(([k, v]) => `${v} ${k}`).join(", ");
const budgets = [...new Set(detail.jobs.map((j) => Number(j.max_steps) * Number(j.batch_tokens)))].sort((a, b) => a - b);
const seeds = [...new Set(detail.jobs.map((j) => Number(j.seed)))];
const g = (v) => (v === null || v === undefined ? "–" : String(Number(Number(v).toPrecision(4))));
const interval = (lo, hi, has) => (has ? ` [${g(lo)}, ${g(hi)}]` : "");

// Where the targets came from. Given in the sweep file is all the results can know; when the file
// was written relative to the runs is the commit history's to say, and the text says which commit
// the file and the binaries are of.
const provenance = results.target_source === "TARGETS_GIVEN"
  ? `given in the sweep file (${results.targets.join(" and ")}), not chosen from this sweep's runs`
  : `**chosen from this sweep's runs** (${results.target_source}): the verdicts below are not a test fixed in advance`;
const withinRun = all.ratios.length - results.ratios.length;
const largest = budgets[budgets.length - 1];
// The budgets the fits use: the smallest budget among the points they fitted
// (analysis.fit_from_tokens leaves the smaller ones out).
const fittedTokens = (all.scaling_fits || []).flatMap((s) => (s.observations || []).map((o) => Number(o.tokens)));
const fitFrom = fittedTokens.length ? Math.min(...fittedTokens) : budgets[0];
const fitted = budgets.filter((b) => b >= fitFrom);
// A fit over rungs of very few optimizer steps bends to reach them (they lie before the power-law
// regime): the fits and the multiplier are then shown but not read as an answer.
const MIN_FIT_STEPS = 16;
const largestBatch = Math.max(...detail.jobs.map((j) => Number(j.batch_tokens)));
const fewest = fitFrom / largestBatch;
const fitSource = fitFrom > budgets[0] ? "`analysis.fit_from_tokens`" : "every budget: the sweep sets no `analysis.fit_from_tokens`";
const shortRungs = [...new Set(detail.jobs.map((j) => Number(j.batch_tokens)))].sort((a, b) => a - b)
  .flatMap((b) => fitted.filter((d) => d / b < MIN_FIT_STEPS).map((d) => `${d / b} at ${d} tokens, batch ${b}`));
const fitCaveat = fewest < MIN_FIT_STEPS
  ? `**Not read as an answer:** the fits include rungs of fewer than ${MIN_FIT_STEPS} optimizer steps (${shortRungs.join("; ")}), where loss still falls faster than any E + A·D^(−α) through the larger budgets; a fit that includes them bends α and E to reach them (the residuals below show it), and the multiplier inherits the bend. \`analysis.fit_from_tokens\` in the sweep file leaves them out; the numbers below are shown for what they are.`
  : "";

// Optimizer steps of each budget at each batch size (the smallest rungs are a few steps).
function stepsTable() {
  const batches = [...new Set(detail.jobs.map((j) => Number(j.batch_tokens)))].sort((a, b) => a - b);
  return [`| batch tokens | ${budgets.join(" | ")} |`, `|---:|${budgets.map(() => "---:").join("|")}|`,
          ...batches.map((b) => `| ${b} | ${budgets.map((d) => d / b).join(" | ")} |`)].join("\n");
}

// Training FLOPs per token of each row (the model's, plus the optimizer's per step over the
// batch), from one trunk's summary: constant within a row, so R in FLOPs is R in tokens times
// AdamW's over Muon's, interval and all.
async function flopsPerToken() {
  const out = new Map();
  for (const j of detail.jobs.filter((j) => !j.fork && j.state === "SUCCEEDED")) {
    const key = `${j.optimizer}/${Number(j.batch_tokens)}`;
    if (out.has(key)) continue;
    const s = (await getJson(`/api/runs/${j.job_id}`)).summary;
    out.set(key, s.flops_per_token.train + s.optimizer_flops_per_step / Number(j.batch_tokens));
  }
  return out;
}
const fpt = await flopsPerToken();

// R in training FLOPs of a point, when its FLOPs per token are known: [value, low, high] or null.
function inFlops(p) {
  const b = Number(p.batch_tokens), k = (fpt.get(`adamw/${b}`) ?? NaN) / (fpt.get(`muon/${b}`) ?? NaN);
  const r = p.ratio;
  return Number.isFinite(k) && r.kind === "RATIO_ESTIMATE" && r.has_interval ? [r.value * k, r.ci_low * k, r.ci_high * k] : null;
}

// Claim 1 in FLOPs, by the same rule: the points whose interval lies above 1.
function flopsLine() {
  const known = results.ratios.map((p) => [p, inFlops(p)]).filter(([, x]) => x);
  const not = known.filter(([, x]) => !(x[1] > 1));
  return `In training FLOPs, R is above 1 by its 95% interval at ${known.length - not.length} of ${results.ratios.length} points` +
    (not.length ? `; not at ${not.map(([p, x]) => `L = ${p.target}, batch ${Number(p.batch_tokens)} (${f(x[0])} [${f(x[1])}, ${f(x[2])}])`).join("; ")}: there the interval reaches 1 once Muon's Newton–Schulz FLOPs are counted.` : ".");
}

// Each (target, batch) point: R in tokens and in FLOPs, its seed pairs, where each side reaches
// the target, and the note of its pairs (bounds, pairs left out).
function pointsTable() {
  const rows = results.ratios.map((p) => {
    const b = Number(p.batch_tokens), r = p.ratio, x = inFlops(p);
    const flops = x ? `${f(x[0])} [${f(x[1])}, ${f(x[2])}]` : "–";
    return `| ${p.target} | ${b} | ${ratioWords(r)} | ${flops} | ${r.pairs} | ${p.adamw_lr} / ${p.muon_lr} | ${shareText(p.adamw_crossing)} / ${shareText(p.muon_crossing)} | ${r.note || ""} |`;
  });
  return ["| target loss | batch tokens | R_L(B) in tokens [95% CI] | in training FLOPs | seed pairs | lr AdamW / Muon | T / largest budget AdamW / Muon | pairs' note |",
          "|---:|---:|---|---|---:|---|---|---|", ...rows].join("\n");
}

// Each row's scaling fit L(D) = E + A·D^(−α) over its ladder's annealed final losses.
function fitsTable() {
  const rows = (results.scaling_fits || []).map((s) => `| ${s.optimizer === "muon" ? "Muon" : "AdamW"} | ${Number(s.batch_tokens)} | ${g(s.lr)} | ${f(s.e, 3)}${interval(s.e_low, s.e_high, s.has_interval)} | ${g(s.a)}${interval(s.a_low, s.a_high, s.has_interval)} | ${f(s.alpha, 3)}${interval(s.alpha_low, s.alpha_high, s.has_interval)}${s.alpha_at_bound ? " (at the end of the range searched: not a power law's fit)" : ""}${s.e < 0 || (s.has_interval && s.e_low < 0) ? " (E below 0: not identified, see below)" : ""} | ${s.seeds} | ${s.points} | ${s.has_interval ? `${s.bootstrap_draws}${s.failed_draws ? `, ${s.failed_draws} without a fit` : ""}` : "–"} |`);
  const unidentified = (results.scaling_fits || []).filter((s) => s.e < 0 || (s.has_interval && s.e_low < 0));
  const note = unidentified.length
    ? `\n\nE below 0 (${unidentified.map((s) => `${s.optimizer === "muon" ? "Muon" : "AdamW"} ${Number(s.batch_tokens)}`).join(", ")}): over these budgets the losses fall about linearly in log D, so no offset E is identified and α runs towards 0; such a row's law is only a curve through its points, and the multiplier is read only inside its measured budgets.`
    : "";
  return ["| optimizer | batch tokens | lr | E | A | α | seeds | points | bootstrap draws |", "|---|---:|---:|---|---|---|---:|---:|---|", ...rows].join("\n") + note;
}

// How many times the tokens AdamW's fitted law needs to reach the loss Muon's reaches at D, with
// the interval's upper end flagged where AdamW's tokens there lie beyond its largest budget.
function multiplierTable() {
  const rows = [];
  const sorted = [...(results.multipliers || [])].sort((a, b) => Number(a.batch_tokens) - Number(b.batch_tokens));
  for (const m of sorted)
    for (const p of m.points) {
      const D = Number(p.tokens), beyond = (x) => x === null || x * D > largest;
      const range = p.extrapolated ? "extrapolated: AdamW's tokens lie outside its budgets"
        : p.has_interval && beyond(p.high) ? "inside; the interval's upper end is extrapolated" : "inside the measured budgets";
      rows.push(`| ${Number(m.batch_tokens)} | ${D} | ${p.value === null ? "never (AdamW's law does not reach it)" : f(p.value, 2)}${p.has_interval ? ` [${f(p.low, 2)}, ${p.high === null ? "∞" : f(p.high, 2)}]` : ""} | ${range} | ${m.seeds} |`);
    }
  return rows.length ? ["| batch tokens | Muon's budget D | AdamW tokens / D [bootstrap, nominal 95%] | range | seed pairs |", "|---:|---:|---|---|---:|", ...rows].join("\n") : "No multiplier: the fits are missing (see the notes in the full results).";
}

// Findings that contradict the paper, each with its rule, over the points the verdicts use.
function contradictions() {
  const lines = [];
  const byBatch = new Map();
  for (const p of results.ratios) byBatch.set(Number(p.batch_tokens), p.muon_lr / p.adamw_lr);
  const factors = [...byBatch.entries()].sort((a, b) => a[0] - b[0]);
  if (factors.length) {
    // The paper applies Moonlight's RMS factor "to match AdamW's update magnitude, enabling direct
    // hyperparameter transfer": Muon would then do best at AdamW's lr.
    const all = factors.every(([, x]) => x >= 4);
    lines.push(`- **${all ? "Contradicts the paper in this setting, on one tuning seed" : "Not shown"}: Muon's best lr against AdamW's, with RMS matching.** The paper applies Moonlight's factor 0.2·√max(A, B) "to match AdamW's update magnitude, enabling direct hyperparameter transfer", that is, Muon at AdamW's lr. The lrs this sweep fixed (the coordinator's bracketing in "R_L(B) with learning rates the coordinator brackets" below: final loss of cosine runs on one seed, a factor-2 grid) put Muon's at ${factors.map(([b, x]) => `${f(x, 0)}× AdamW's at batch ${b}`).join(", ")}. Rule: a factor of 4 or more (two grid steps) at every batch size. The bracketing did not run Muon at AdamW's lr (its grid starts at 2× AdamW's), one seed chose each lr, and neighbouring lrs can be close (see its tables); other sweeps in the tuning section, at other budgets and widths, find other factors. Only the hidden matrices use Muon's lr (embeddings, head and norms keep AdamW's).`);
  }
  const decided = (p) => !p.adamw_lr_at_edge && !p.muon_lr_at_edge && !crossingWithheld(p);
  for (const t of results.trends.filter((t) => t.has_slope && t.high < t.margin))
    lines.push(`- **Contradicts the paper**: at L = ${t.target}, R falls with B beyond the margin (×${f(t.per_doubling, 3)} per doubling, [${f(t.low, 3)}, ${f(t.high, 3)}]).`);
  for (const p of results.ratios.filter((p) => decided(p) && p.ratio.has_interval && p.ratio.ci_high < 1))
    lines.push(`- **Contradicts the paper**: at L = ${p.target}, batch ${Number(p.batch_tokens)}, Muon needs more tokens (R ${f(p.ratio.value)} [${f(p.ratio.ci_low)}, ${f(p.ratio.ci_high)}]).`);
  return lines.join("\n");
}

const tokens = tokenClaim(results), trend = monotoneClaim(results), pareto = paretoClaim(results);
const minutes = Math.round(Number(runInfo.seconds ?? 0) / 60);
const md = readFileSync(join(args["results-dir"], `results-${id}.md`), "utf8").replace(/^### /gm, "#### ");
const batches = [...new Set(results.ratios.map((p) => Number(p.batch_tokens)))].sort((a, b) => a - b);
const lrsOf = (side) => [...new Set(results.ratios.map((p) => p[side]))];
// The measured seconds per step the plane uses (each optimizer at the smallest batch).
// Whether the measured step times order the optimizers as their FLOPs per token do.
const plane0 = results.pareto[0];
const flopsRatio = plane0 ? (fpt.get(`muon/${Number(plane0.device_batch_tokens)}`) ?? NaN) / (fpt.get(`adamw/${Number(plane0.device_batch_tokens)}`) ?? NaN) : NaN;
const stepsAgainstFlops = plane0 && flopsRatio > 1 && plane0.muon_step_seconds < plane0.adamw_step_seconds
  ? ` **These step times contradict the FLOPs count:** Muon's step measured faster than AdamW's although it does ${f(flopsRatio, 2)}× AdamW's FLOPs per token at B = ${Number(plane0.device_batch_tokens)}, most likely the contention of two runs sharing two cores. With step times in proportion to FLOPs the plane becomes R in FLOPs, which is not above 1 at every point (claim 1 above): read 2b as holding on these measured step times only.`
  : "";
const stepTimes = results.pareto.length
  ? `AdamW ${f(results.pareto[0].adamw_step_seconds, 4)} s and Muon ${f(results.pareto[0].muon_step_seconds, 4)} s per step at B = ${Number(results.pareto[0].device_batch_tokens)}`
  : "no step times";
const section = `${BEGIN}
### Claims 1, 2 and 2b, decided on budget ladders

Made by \`scripts/reproduce.sh --ladder\` (started ${runInfo.started ?? "?"}; its sweep took ${minutes} min
on ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores; one worker with 2 slots, so two runs shared the cores
at a time; binaries and sweep file of commit \`${runInfo.commit ?? "?"}\`):
\`examples/batch_size_ratio_ladder_cpu.yaml\`, ${detail.jobs.length} jobs (${states}).

**What the verdicts rest on.** Each row (optimizer × batch size) and seed is a budget ladder:
one warmup-stable-decay run to ${largest} tokens and a cooldown forked off it at each smaller
budget's decay start, so every budget (${budgets.join(", ")} tokens) ends with its lr decayed to 0
over its last 20% of steps. The smallest rungs are annealed in name more than in effect; their
optimizer steps:

${stepsTable()}

T, the tokens to a target loss, is read where the annealed final losses cross it, between
budgets ([statistics.md](statistics.md#tokens-to-target-from-a-budget-ladder-t-read-annealed)),
not where a run's curve first crosses it: R compares both optimizers at the end of annealing,
never one side's early speed with the other's annealed end. Seeds ${seeds.join(", ")}. Targets
${provenance}. They, and one lr per row, were set from earlier runs of this same setting: the
targets above the worst AdamW B = 4096 seed's final loss in the cosine twin (2.32), the lrs by
an earlier run of the coordinator's bracketing of \`batch_size_ratio_tuned_cpu.yaml\` (cosine runs of
491,520 tokens, final loss on seed 1, which is also a seed here; the tuning section below is a
later rerun of it). On a CPU, a rerun of this sweep reproduces its runs bit for bit: it is the same
experiment, not an independent replication. Only the ${results.ratios.length} ratios read
annealed count; the ${withinRun} within-run ratios of single rungs in the full results are read
between evaluations ${Number(detail.jobs[0]?.settings?.["training.eval_every"]) * Number(detail.jobs[0]?.batch_tokens)} tokens apart and are not interpretable
at this resolution.

#### 1. Muon reaches a target loss with fewer tokens: R_L(B) > 1

**${tokens.verdict}.**

${pointsTable()}

R in training FLOPs is R in tokens times AdamW's FLOPs per token over Muon's at that batch
(Muon's Newton–Schulz counted per step, so it weighs most at the smallest batch); the claim is
the paper's token consumption ratio, but its headline elsewhere is in FLOPs. ${flopsLine()} The ${results.ratios.length} points share their runs (${results.targets.length} targets ×
${batches.length} batch sizes over the same ladders): "reproduces" requires every one of them, which needs
no multiplicity correction, while a single "disagrees" would be one uncorrected one-sided 2.5%
test among ${results.ratios.length + results.trends.length}. The intervals are over seeds only: the error of interpolating
T between rungs a factor 2 apart is not in them (statistics.md).

![R_L(B) on budget ladders against batch size](${plots["ladder-ratio"]})

#### 2. R_L(B) does not fall as the batch grows

**${trend.verdict}.** Rule: R's factor per doubling of B by least squares of the seeds' log R on
log2 B, with a 95% Welch–Satterthwaite interval (each batch size its own noise); "does not fall"
is non-inferiority, the interval's lower end above the margin (\`analysis.trend_margin\`, 0.9 unless
the sweep sets it; a fall
of up to that factor per doubling still passes; over the paper's six doublings ×0.9 compounds to
×0.53, so "rises", both ends above 1, is the stronger reading where it holds;
[statistics.md](statistics.md#how-r-moves-with-b)).

${trend.lines}

Over B = ${batches[0]}–${batches[batches.length - 1]} tokens only (${Math.log2(batches[batches.length - 1] / batches[0])} doublings), not the paper's 128K–8M.
The slope is conditional on the fixed lrs: AdamW's is ${lrsOf("adamw_lr").join(", ")} at every batch size while
Muon's is ${[...new Set(results.ratios.map((p) => `${p.muon_lr} at ${Number(p.batch_tokens)}`))].join(", ")}. An AdamW lr
that falls further below its optimum as B grows would also make R rise with B; this sweep runs no
neighbouring lr, so how much of the rise that explains is not measured here.

#### 2b. Muon's frontier dominates on the compute–time plane (section 3.2)

**${pareto.verdict}${stepsAgainstFlops ? ", on measured step times that contradict the FLOPs count (below)" : ""}.** Devices = B / the smallest B; time to target = T(L, B) / B steps at the end
of annealing × each optimizer's measured seconds per step at the smallest B on this sweep's own
worker (${stepTimes}; two runs shared the two cores, so these times carry that contention): ideal
data parallelism, no communication cost
([statistics.md](statistics.md#the-computetime-pareto-frontier-the-papers-section-32)). Under
these assumptions the plane is claim 1's R times the ratio of the two step times: it restates
claim 1 in time, it is not separate evidence. The step times' own noise is not in its intervals.${stepsAgainstFlops}

${pareto.lines}

![The compute–time plane](${plots["ladder-pareto"]})

#### The answer in tokens: scaling fits and the token multiplier

Per row, L(D) = E + A·D^(−α) fitted to the annealed final losses of its ladder's budgets from
${fitFrom} tokens up (${fitted.length} of ${budgets.length}: ${fitted.join(", ")}; every seed's rungs, so ${fitted.length} × the seeds points for 3
parameters; ${fitSource}). Intervals are bootstrap percentiles over seeds,
nominal 95%: their measured coverage for α is 0.70 at 3 seeds and 0.89 at 8 (not measured at 5;
[statistics.md](statistics.md#scaling-fits-and-the-compute-multiplier)). With ${fitted.length} budgets, E and α trade off
against each other: read E as a fitted constant, not an irreducible loss, and do not compare α
across rows whose E differ.

${fitCaveat}

${fitsTable()}

![Scaling fits over the annealed losses](${plots["ladder-scaling"]})

![Residuals of the scaling fits](${plots["ladder-scaling-residuals"]})

The token multiplier: at each fitted budget D of Muon's, the tokens AdamW's fitted law needs to
reach the loss Muon's fitted law reaches at D, divided by D (2 = AdamW needs twice the tokens).
Where AdamW's tokens lie beyond its largest budget the figure is an extrapolation of its fit and
is marked so, and so is an interval whose upper end lies there. The coverage of these intervals
has not been measured. In FLOPs, multiply by AdamW's FLOPs per token over Muon's, as for R above.

${fitCaveat ? "The caveat on the fits above applies to every figure of this table.\n\n" : ""}${multiplierTable()}

#### Findings that contradict the paper

${contradictions() || "- None of the rules above found one."}

<details><summary>Full results of the ladder sweep (sweepctl results --format md)</summary>

${md}
</details>
${END}
`;

// Placed under "The paper's claims, one by one" (or, in a file without it, at the end).
const CLAIMS = "## The paper's claims, one by one\n";
writeSection(args.out, BEGIN, END, section, "ladder", (old, s) => (old.includes(CLAIMS)
  ? old.replace(CLAIMS, CLAIMS + "\n" + s + "\n") : old.trimEnd() + "\n\n" + s));
