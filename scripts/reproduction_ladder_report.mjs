// Writes the ladder section of docs/reproduction.md from a finished `scripts/reproduce.sh --ladder`
// run: claims 1, 2 and 2b decided on budget ladders (examples/batch_size_ratio_ladder_cpu.yaml),
// T read at the end of annealing, with pre-registered lrs and targets; the scaling fits and the
// compute multiplier; and the findings that contradict the paper. The section sits between the
// markers below, under "The paper's claims"; the rest of the file is left as it is (and
// scripts/reproduction_report.mjs keeps this section when it rewrites the rest).
//   node scripts/reproduction_ladder_report.mjs --base URL --sweep N --results-dir DIR \
//        --run-info FILE --out docs/reproduction.md --plots docs/reproduction
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { cpus } from "node:os";
import { f, tokenClaim, monotoneClaim, paretoClaim, targetPosition } from "./report_rules.mjs";
import { renderPlots } from "./report_plots.mjs";

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

// The targets' provenance: a verdict here rests on targets fixed before the first run.
const provenance = results.target_source === "TARGETS_GIVEN"
  ? `fixed in the sweep file before the first run (pre-registered): ${results.targets.join(" and ")}`
  : `**not pre-registered** (${results.target_source}): the verdicts below are not the pre-registered test`;
const withinRun = all.ratios.length - results.ratios.length;

// Each row's scaling fit L(D) = E + A·D^(−α) over its ladder's annealed final losses.
function fitsTable() {
  const rows = (results.scaling_fits || []).map((s) => `| ${s.optimizer === "muon" ? "Muon" : "AdamW"} | ${Number(s.batch_tokens)} | ${g(s.lr)} | ${f(s.e, 3)}${interval(s.e_low, s.e_high, s.has_interval)} | ${g(s.a)}${interval(s.a_low, s.a_high, s.has_interval)} | ${f(s.alpha, 3)}${interval(s.alpha_low, s.alpha_high, s.has_interval)}${s.alpha_at_bound ? " (at the end of the range searched: not a power law's fit)" : ""} | ${s.seeds} | ${s.points} | ${s.has_interval ? `${s.bootstrap_draws}${s.failed_draws ? `, ${s.failed_draws} without a fit` : ""}` : "–"} |`);
  return ["| optimizer | batch tokens | lr | E | A | α | seeds | points | bootstrap draws |", "|---|---:|---:|---|---|---|---:|---:|---|", ...rows].join("\n");
}

// How many times the tokens AdamW's fitted law needs to reach the loss Muon's reaches at D.
function multiplierTable() {
  const rows = [];
  for (const m of results.multipliers || [])
    for (const p of m.points)
      rows.push(`| ${Number(m.batch_tokens)} | ${Number(p.tokens)} | ${p.value === null ? "never (AdamW's law does not reach it)" : f(p.value, 2)}${p.has_interval ? ` [${f(p.low, 2)}, ${p.high === null ? "∞" : f(p.high, 2)}]` : ""} | ${p.extrapolated ? "extrapolated: AdamW's tokens lie outside its budgets" : "within the measured budgets"} | ${m.seeds} |`);
  return rows.length ? ["| batch tokens | Muon's budget D | AdamW tokens / D [bootstrap 95%] | range | seed pairs |", "|---:|---:|---|---|---:|", ...rows].join("\n") : "No multiplier: the fits are missing (see the notes in the full results).";
}

// Findings that contradict the paper, each with its rule. The paper applies Moonlight's RMS
// factor "to match AdamW's update magnitude, enabling direct hyperparameter transfer": Muon
// would then reuse AdamW's lr. The lrs of this sweep are the coordinator's bracketed choices.
function contradictions() {
  const lines = [];
  const byBatch = new Map();
  for (const p of results.ratios || []) byBatch.set(Number(p.batch_tokens), p.muon_lr / p.adamw_lr);
  const factors = [...byBatch.entries()].sort((a, b) => a[0] - b[0]);
  if (factors.length) {
    const all = factors.every(([, x]) => x >= 2);
    lines.push(`- **${all ? "Contradicts the paper" : "Agrees with the paper"}: Muon's best lr against AdamW's, with RMS matching.** The paper applies Moonlight's factor 0.2·√max(A, B) "to match AdamW's update magnitude, enabling direct hyperparameter transfer", that is, Muon at AdamW's lr. The lrs bracketed by the coordinator (interior on both sides, final loss on seed 1, "R_L(B) with learning rates the coordinator brackets" below) put Muon's at ${factors.map(([b, x]) => `${f(x, 0)}× AdamW's at batch ${b}`).join(", ")}. Rule: a factor of 2 or more at every batch size contradicts (one grid step of the bracketing). At this scale only the hidden matrices use Muon's lr (embeddings, head and norms keep AdamW's), so the factor is about those matrices.`);
  }
  const fallen = (results.trends || []).filter((t) => t.has_slope && t.high < t.margin);
  for (const t of fallen) lines.push(`- **Contradicts the paper**: at L = ${t.target}, R falls with B beyond the margin (×${f(t.per_doubling, 3)} per doubling, [${f(t.low, 3)}, ${f(t.high, 3)}]).`);
  const below = (results.ratios || []).filter((p) => p.ratio.has_interval && p.ratio.ci_high < 1);
  for (const p of below) lines.push(`- **Contradicts the paper**: at L = ${p.target}, batch ${Number(p.batch_tokens)}, Muon needs more tokens (R ${f(p.ratio.value)} [${f(p.ratio.ci_low)}, ${f(p.ratio.ci_high)}]).`);
  return lines.join("\n");
}

const tokens = tokenClaim(results), trend = monotoneClaim(results), pareto = paretoClaim(results);
const minutes = Math.round(Number(runInfo.seconds ?? 0) / 60);
const md = readFileSync(join(args["results-dir"], `results-${id}.md`), "utf8").replace(/^### /gm, "#### ");
const section = `${BEGIN}
### Claims 1, 2 and 2b, decided on budget ladders

Made by \`scripts/reproduce.sh --ladder\` (started ${runInfo.started ?? "?"}; its sweep took ${minutes} min
on ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores; one worker with 2 slots; binaries of commit \`${runInfo.commit ?? "?"}\`):
\`examples/batch_size_ratio_ladder_cpu.yaml\`, ${detail.jobs.length} jobs (${states}).

**What the verdicts rest on.** Each row (optimizer × batch size) and seed is a budget ladder:
one warmup-stable-decay run to ${budgets[budgets.length - 1]} tokens and a cooldown forked off it at each
smaller budget's decay start, so each of the ${budgets.length} budgets (${budgets.join(", ")} tokens) ends fully annealed.
T, the tokens to a target loss, is read where the annealed final losses cross it, between
budgets ([statistics.md](statistics.md#tokens-to-target-from-a-budget-ladder-t-read-annealed)),
not where a run's curve first crosses it: R then compares both optimizers at the end of
annealing, never one side's early speed with the other's annealed end. Seeds ${seeds.join(", ")}.
Targets ${provenance}. The lrs are fixed per row too, from runs this sweep does not contain
(the coordinator's bracketing on cosine runs of 491,520 tokens, below): they are not re-tuned per
budget or for the WSD schedule, which weighs most at the smallest budgets.

Only ratios read annealed count below (${results.ratios.length} of them); the ${withinRun} within-run
ratios of single rungs (each budget's runs as if alone) are in the full results at the end.

#### 1. Muon reaches a target loss with fewer tokens: R_L(B) > 1

**${tokens.verdict}.**

${tokens.table}

${targetPosition(results)}

![R_L(B) on budget ladders against batch size](${plots["ladder-ratio"]})

#### 2. R_L(B) does not fall as the batch grows

**${trend.verdict}.** Rule: R's factor per doubling of B by least squares of the seeds' log R on
log2 B, with a 95% Welch–Satterthwaite interval (each batch size its own noise); "does not fall"
is non-inferiority: the interval's lower end above the sweep's margin
([statistics.md](statistics.md#how-r-moves-with-b)).

${trend.lines}

#### 2b. Muon's frontier dominates on the compute–time plane (section 3.2)

**${pareto.verdict}.** Devices = B / the smallest B; time to target = T(L, B) / B steps at the end
of annealing × each optimizer's measured seconds per step at the smallest B, on this sweep's own
worker: ideal data parallelism, no communication cost
([statistics.md](statistics.md#the-computetime-pareto-frontier-the-papers-section-32)).

${pareto.lines}

![The compute–time plane](${plots["ladder-pareto"]})

#### The answer in compute: scaling fits and the compute multiplier

Per row, L(D) = E + A·D^(−α) fitted to the annealed final losses of its ladder (every seed's
rungs), with 95% intervals by a bootstrap over seeds (from 5 seeds; their measured coverage is in
[statistics.md](statistics.md#scaling-fits-and-the-compute-multiplier)):

${fitsTable()}

![Scaling fits over the annealed losses](${plots["ladder-scaling"]})

![Residuals of the scaling fits](${plots["ladder-scaling-residuals"]})

The compute multiplier: at each of Muon's budgets D, the tokens AdamW's fitted law needs to reach
the loss Muon's fitted law reaches at D, divided by D (2 = AdamW needs twice the tokens). Where
AdamW's tokens lie beyond its largest budget, the figure is an extrapolation of its fit and is
marked so. The multiplier is in tokens. In FLOPs Muon's side also pays for its Newton–Schulz
iterations, which at this width (128) are a large share of a step (docs/science.md counts them),
so a FLOPs multiplier would be smaller than the token one here; at the paper's widths that share
is small.

${multiplierTable()}

#### Findings that contradict the paper

${contradictions() || "- None of the rules above found one."}

<details><summary>Full results of the ladder sweep (sweepctl results --format md)</summary>

${md}
</details>
${END}
`;

// Placed under "The paper's claims, one by one" (or, in a file without it, at the end).
const old = existsSync(args.out) ? readFileSync(args.out, "utf8") : "";
const begin = old.indexOf(BEGIN), end = old.indexOf(END);
const CLAIMS = "## The paper's claims, one by one\n";
const out = begin >= 0 && end > begin ? old.slice(0, begin) + section + old.slice(end + END.length + 1)
  : old.includes(CLAIMS) ? old.replace(CLAIMS, CLAIMS + "\n" + section + "\n")
  : old.trimEnd() + "\n\n" + section;
writeFileSync(args.out, out);
console.log(`wrote the ladder section of ${args.out}`);
