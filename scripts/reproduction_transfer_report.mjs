// Writes the transfer section of docs/reproduction.md from a finished `scripts/reproduce.sh
// --transfer` run: telescoping_cpu.yaml (lr tuned at width 64, then 128 and 256 around the
// previous choice) against full_grid_256_cpu.yaml (the same search run directly at 256), muP
// against the standard parametrization, AdamW and Muon. The section sits between the markers
// below; the rest of the file is left as it is.
//   node scripts/reproduction_transfer_report.mjs --base URL --sweeps "T F" --results-dir DIR \
//        --run-info FILE --out docs/reproduction.md
//
// Transfer regret (the rule, stated in the section it writes): at the target width, the mean
// final val loss at the lr chosen at the base width minus the mean at the target's best lr,
// both read from the full grid's cells (its seed 1 everywhere, and its noise seed where the
// best's neighbours were close). Its 95% interval is ± 1.96·σ·sqrt(1/n_a + 1/n_b), σ the larger
// of the sweep's stated seed SD (tune.noise.sd) and the seed SD pooled over the grid's cells with
// two seeds: with one or two seeds per cell a t interval would be uselessly wide, so the stated
// noise model carries it, and the section says so.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { cpus } from "node:os";
import { f } from "./report_rules.mjs";

export const BEGIN = "<!-- transfer:begin (scripts/reproduce.sh --transfer writes this section) -->";
export const END = "<!-- transfer:end -->";

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []));
const [telescopeId, fullId] = args.sweeps.trim().split(/\s+/).map(Number);
const getJson = async (path) => (await fetch(args.base + path)).json();
const sweeps = {};
for (const id of [telescopeId, fullId])
  sweeps[id] = { detail: await getJson(`/api/sweeps/${id}`), results: await getJson(`/api/sweeps/${id}/results`) };
const results = (id) => sweeps[id].results;
const jobs = (id) => sweeps[id].detail.jobs.length;
const states = (id) => Object.entries(sweeps[id].detail.sweep.jobs_by_state).map(([k, v]) => `${v} ${k}`).join(", ");
const failures = () => Object.entries(sweeps).flatMap(([id, s]) => s.detail.jobs.filter((j) => j.state === "FAILED")
  .map((j) => `sweep ${id} job ${j.job_id} (${j.label}, seed ${j.seed}): ${j.message.trim().replace(/:$/, "") || "no message"}`));
const runInfo = Object.fromEntries((existsSync(args["run-info"]) ? readFileSync(args["run-info"], "utf8") : "")
  .split(/\s+/).filter(Boolean).map((kv) => kv.split("=")));

const g = (v) => (v === null || v === undefined || Number.isNaN(v) ? "–" : String(Number(Number(v).toPrecision(6))));
const flops = (v) => (v > 0 ? Number(v).toExponential(2) : "–");
const sameLr = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(a, b);
const verdictOf = (c) => (!c.decided ? "undecided" : c.extensions_exhausted ? "edge, not bracketed"
  : c.at_grid_edge ? "edge" : c.within_noise ? "within noise" : c.bracketed ? "bracketed" : "not bracketed");

// The full grid's stated seed noise (tune.noise.sd in its sweep file), the floor of every
// interval's σ.
const statedSd = Number((readFileSync("examples/full_grid_256_cpu.yaml", "utf8").match(/noise:\s*\{sd:\s*([0-9.eE+-]+)/) ?? [])[1]);
if (!(statedSd > 0)) throw new Error("examples/full_grid_256_cpu.yaml states no tune.noise.sd");
const TOLERANCE = 2 * statedSd;  // a regret below it is within two seed SDs: "cleanly"
const Z = 1.96;

function pooledSd(points) {
  let sum = 0, dof = 0;
  for (const p of points) if (p.final_val_loss.n >= 2) { sum += (p.final_val_loss.n - 1) * p.final_val_loss.std ** 2; dof += p.final_val_loss.n - 1; }
  return dof > 0 ? Math.sqrt(sum / dof) : 0;
}

// The regret at `points` (one row's cells at the target width) of using `lr` instead of the best.
function regret(points, lr) {
  const best = points.find((p) => p.selected);
  const at = points.find((p) => sameLr(p.lr, lr));
  if (!best) return { text: "no choice at the target", kind: "none" };
  if (!at) return { text: `${g(lr)} not tried at the target width`, kind: "none" };
  if (at === best) return { value: 0, lo: 0, hi: 0, kind: "same", text: "0 (the same lr)" };
  if (at.final_val_loss.n === 0) return { text: `${g(lr)} has no final loss there (diverged or failed)`, kind: "lost" };
  const sd = Math.max(statedSd, pooledSd(points));
  const value = at.final_val_loss.mean - best.final_val_loss.mean;
  const half = Z * sd * Math.sqrt(1 / at.final_val_loss.n + 1 / best.final_val_loss.n);
  return { value, lo: value - half, hi: value + half, sd, n: [at.final_val_loss.n, best.final_val_loss.n], kind: "measured",
           text: `${f(value, 4)} [${f(value - half, 4)}, ${f(value + half, 4)}] (${at.final_val_loss.n} and ${best.final_val_loss.n} seeds)` };
}
// The rule: transfers cleanly when the regret's upper bound is within TOLERANCE; costs when its
// lower bound is beyond it; else not decided.
function transfers(r) {
  if (r.kind === "same") return "transfers cleanly";
  if (r.kind === "lost") return "does not transfer";
  if (r.kind !== "measured") return "not decided";
  return r.hi <= TOLERANCE ? "transfers cleanly" : r.lo > TOLERANCE ? "does not transfer" : "not decided";
}

const tele = results(telescopeId).tuning, full = results(fullId);
const families = [...new Set(tele.stages.map((s) => s.family))];
const pointsOf = (family) => full.lr_sensitivity.filter((p) => p.row === family);
const byFamily = families.map((family) => {
  const stages = tele.stages.filter((s) => s.family === family).sort((a, b) => a.stage - b.stage);
  const fullRow = full.ablation.find((a) => a.label === family);
  const fullStage = full.tuning.stages.find((s) => s.row === family);
  const cost = tele.telescopes.find((c) => c.family === family);
  const first = stages[0], last = stages[stages.length - 1];
  const points = pointsOf(family);
  return { family, stages, fullRow, fullStage, cost, first, last, points,
           optimizer: first.optimizer, muP: family.startsWith("baseline"),
           baseRegret: first.choice.decided ? regret(points, first.choice.lr) : { text: "undecided", kind: "none" },
           telescopedRegret: last.choice.decided ? regret(points, last.choice.lr) : { text: "undecided", kind: "none" } };
});

const tableRows = byFamily.map((r) => {
  const ratio = r.cost && r.fullStage && r.fullStage.tuning_flops > 0 ? f(r.cost.telescoped_flops / r.fullStage.tuning_flops, 2) : "–";
  return `| ${r.family} | ${r.stages.map((s) => `${g(s.choice.lr)} (${verdictOf(s.choice)})`).join(" → ")} | ${r.fullRow ? `${g(r.fullRow.lr.lr)} (${verdictOf(r.fullRow.lr)})` : "–"} | ${r.baseRegret.text} | ${transfers(r.baseRegret)} | ${r.telescopedRegret.text} | ${r.cost ? flops(r.cost.telescoped_flops) : "–"} | ${r.fullStage ? flops(r.fullStage.tuning_flops) : "–"} | ${ratio} |`;
});

// The paper's sentence, judged per optimizer on the muP rows: it holds where every muP family
// of that optimizer transfers cleanly, fails where one does not transfer, else is not decided.
const claimFor = (optimizer) => {
  const rows = byFamily.filter((r) => r.muP && r.optimizer === optimizer);
  const verdicts = rows.map((r) => transfers(r.baseRegret));
  const word = rows.length === 0 ? "not measured" : verdicts.every((v) => v === "transfers cleanly") ? "reproduces"
    : verdicts.some((v) => v === "does not transfer") ? "does not reproduce" : "not decided";
  const standard = byFamily.find((r) => !r.muP && r.optimizer === optimizer);
  return `- **${optimizer}**: ${word} for the lr (${rows.map((r) => `muP regret ${r.baseRegret.text}`).join("; ")}${standard ? `; the standard parametrization's: ${standard.baseRegret.text}, ${transfers(standard.baseRegret)}` : ""}).`;
};

// RMS matching's claim: AdamW's best lr, used for Muon, at the base width and at the target.
const rmsLines = [];
for (const muP of [true, false]) {
  const adamw = byFamily.find((r) => r.muP === muP && r.optimizer === "adamw");
  const muon = byFamily.find((r) => r.muP === muP && r.optimizer === "muon");
  if (!adamw || !muon || !adamw.fullRow || !adamw.fullRow.lr.decided) continue;
  const atTarget = regret(muon.points, adamw.fullRow.lr.lr);
  const steps = muon.fullRow && muon.fullRow.lr.decided ? Math.log2(muon.fullRow.lr.lr / adamw.fullRow.lr.lr) : NaN;
  const verdict = transfers(atTarget) === "transfers cleanly" ? "AdamW's lr carries over"
    : transfers(atTarget) === "does not transfer" ? "AdamW's lr does not carry over" : "not decided";
  const measured = atTarget.kind === "none" ? `Muon did not run at ${g(adamw.fullRow.lr.lr)} there` : `Muon at AdamW's lr: regret ${atTarget.text}`;
  rmsLines.push(`- ${muP ? "muP" : "standard"}: at width 256 AdamW's best lr is ${g(adamw.fullRow.lr.lr)}, Muon's ${muon.fullRow ? g(muon.fullRow.lr.lr) : "–"} (${Number.isNaN(steps) ? "–" : `${f(Math.abs(steps), 1)} factor-2 steps ${steps > 0 ? "above" : "below"}`}); ${measured}: ${verdict}.`);
}

const section = `${BEGIN}
## Hyperparameter transfer across widths (telescoping, muP)

Made by \`scripts/reproduce.sh --transfer\` (started ${runInfo.started ?? "?"}; its two sweeps took
${Math.round(Number(runInfo.seconds ?? 0) / 60)} min on ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores; one worker with 2 slots; binaries of
commit \`${runInfo.commit ?? "?"}\`). Sweeps: \`telescoping_cpu.yaml\` (${jobs(telescopeId)} jobs: ${states(telescopeId)}),
\`full_grid_256_cpu.yaml\` (${jobs(fullId)} jobs: ${states(fullId)}).${failures().length ? `
Failed for good: ${failures().join("; ")}.` : ""}

\`examples/telescoping_cpu.yaml\` tunes the lr of AdamW and Muon at width 64 on 5 values (seed 1),
then at 128 and 256 on 3 values centred on the previous width's choice (seeds 1 and 2), each
stage bracketed beyond the seed noise (\`tune.noise\`: sd ${statedSd}, one extra seed where a
neighbour is within 2·σ·sqrt(1/n + 1/n) of the best). \`baseline\` rows use muP (base width 64;
for Muon the spectral factor of [science.md](science.md), "muP"), \`standard\` rows the standard
parametrization. \`examples/full_grid_256_cpu.yaml\` runs the same search directly at width 256
from the same start grids: its best is the reference. Only the lr is tuned: weight decay stays
at 0.1 and its transfer is not measured here.

**Transfer regret** at width 256: the mean final val loss, on the full grid's cells, at the lr
chosen at width 64 minus the mean at width 256's best; 95% interval ± 1.96·σ·sqrt(1/n_a + 1/n_b)
with σ the larger of the stated seed SD (${statedSd}) and the SD pooled over the grid's two-seed
cells (with one or two seeds a cell, the stated noise carries the interval). The rule: the lr
**transfers cleanly** when the upper bound is at most ${f(TOLERANCE, 3)} nats (two stated seed SDs),
**does not transfer** when the lower bound exceeds it, else it is not decided.

| row family | chosen lr, width 64 → 128 → 256 | full grid at 256 | regret at 256 of width 64's lr | verdict | regret of the telescoped choice | telescoped FLOPs | full grid FLOPs | telescoped / full |
|---|---|---|---|---|---|---:|---:|---:|
${tableRows.join("\n")}

FLOPs are the training FLOPs of every tuning run on both sides (extensions and noise seeds
included). "The optimal learning rate ... transferred cleanly across scales when using the RMS
scaling factor" (the paper's section 5.4), judged on the muP rows by the rule above:

${["adamw", "muon"].map(claimFor).join("\n")}

**RMS matching** (the paper: the factor lets AdamW's lr serve Muon), Muon's regret at AdamW's
best lr at width 256, by the same rule:

${rmsLines.join("\n") || "- not measured"}

<details><summary>Full results of the two sweeps (sweepctl results --format md)</summary>

#### Telescoping (sweep ${telescopeId})

${readFileSync(join(args["results-dir"], `results-${telescopeId}.md`), "utf8").replace(/^### /gm, "#### ")}
#### Full grid at width 256 (sweep ${fullId})

${readFileSync(join(args["results-dir"], `results-${fullId}.md`), "utf8").replace(/^### /gm, "#### ")}
</details>
${END}
`;

const old = existsSync(args.out) ? readFileSync(args.out, "utf8") : "";
const begin = old.indexOf(BEGIN), end = old.indexOf(END);
const out = begin >= 0 && end > begin ? old.slice(0, begin) + section + old.slice(end + END.length + 1) : old.trimEnd() + "\n\n" + section;
writeFileSync(args.out, out);
console.log(`wrote the transfer section of ${args.out}`);
