// Writes the transfer section of docs/reproduction.md from a finished `scripts/reproduce.sh
// --transfer` run: telescoping_cpu.yaml (lr tuned at width 64, then 128 and 256 around the
// previous choice) against full_grid_256_cpu.yaml (the same search run directly at 256), muP
// against the standard parametrization, AdamW and Muon. The section sits between the markers
// below; the rest of the file is left as it is.
//   node scripts/reproduction_transfer_report.mjs --base URL --sweeps "T F" --results-dir DIR \
//        --run-info FILE --out docs/reproduction.md
//
// Transfer regret (the rule, stated in the section it writes): at the target width, the mean
// final val loss at the lr chosen at the base width (each lr the base width could not tell
// apart) minus the mean at the target's best lr, read from the full grid's cells. Its 95%
// interval is ± 1.96·σ·sqrt(1/n_a + 1/n_b), σ per optimizer the larger of the stated seed SD
// (tune.noise.sd) and the SD pooled over the telescoped rows' two-seed cells at the target width:
// with one or two seeds per cell a t interval would be uselessly wide, so a noise model carries
// it, and the section says so.
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { parseArgs, loadSweeps, readRunInfo, resultsMd, writeSection } from "./report_io.mjs";
import { f } from "./report_rules.mjs";

export const BEGIN = "<!-- transfer:begin (scripts/reproduce.sh --transfer writes this section) -->";
export const END = "<!-- transfer:end -->";

const args = parseArgs();
const [telescopeId, fullId] = args.sweeps.trim().split(/\s+/).map(Number);
const { results, jobs, states, failures } = await loadSweeps(args.base, [telescopeId, fullId]);
const runInfo = readRunInfo(args["run-info"]);

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
  return { sd: dof > 0 ? Math.sqrt(sum / dof) : 0, dof };
}

const tele = results(telescopeId).tuning, full = results(fullId);
const teleRows = results(telescopeId).lr_sensitivity;
const widthOf = (row) => Number((row.match(/\/width=(\d+)$/) ?? [])[1]);
const stripWidth = (row) => row.replace(/\/width=\d+$/, "");
const targetWidth = Math.max(...tele.stages.map((s) => s.width));
const baseWidth = Math.min(...tele.stages.map((s) => s.width));
// σ per optimizer at a width: the larger of the stated SD and the SD pooled over the telescoped
// rows' two-seed cells there (the full grid's second seeds repeat those runs bit for bit: left out).
function sigmaAt(optimizer, width) {
  const pooled = pooledSd(teleRows.filter((p) => p.optimizer === optimizer && widthOf(p.row) === width));
  return { sd: Math.max(statedSd, pooled.sd), pooled: pooled.sd, dof: pooled.dof };
}

// The regret at `points` (one row's cells at one width) of using `lr` instead of the best there.
function regret(points, lr, sigma) {
  const best = points.find((p) => p.selected);
  const at = points.find((p) => sameLr(p.lr, lr));
  if (!best) return { text: "no choice there", kind: "none" };
  if (!at) return { text: `${g(lr)} not tried there`, kind: "none" };
  if (at === best) return { value: 0, kind: "same", text: `0 at ${g(lr)} (the same grid point)` };
  if (at.final_val_loss.n === 0) return { text: `${g(lr)} has no final loss there (diverged or failed)`, kind: "lost" };
  const value = at.final_val_loss.mean - best.final_val_loss.mean;
  const half = Z * sigma.sd * Math.sqrt(1 / at.final_val_loss.n + 1 / best.final_val_loss.n);
  return { value, lo: value - half, hi: value + half, kind: "measured",
           text: `${f(value, 4)} [${f(value - half, 4)}, ${f(value + half, 4)}] at ${g(lr)} (${at.final_val_loss.n === 1 && best.final_val_loss.n === 1 ? "one seed each" : `${at.final_val_loss.n} and ${best.final_val_loss.n} seeds`})` };
}
// The rule. A regret within the tolerance by its upper bound counts as transferring; beyond it by
// its lower bound, as not; else not decided. The same grid point is the only other positive
// outcome, and a factor-2 grid cannot see a shift of less than about half a step.
function transfers(r) {
  if (r.kind === "same") return "same grid point";
  if (r.kind === "lost") return "does not transfer";
  if (r.kind !== "measured") return "not decided";
  return r.hi <= TOLERANCE ? "within tolerance" : r.lo > TOLERANCE ? "does not transfer" : "not decided";
}
const positive = (v) => v === "same grid point" || v === "within tolerance";

// The lrs the base width could not tell apart: its best and each neighbour within the seed noise
// (the coordinator's own bracketing margin, with the stated σ or the row's pooled one).
function baseCandidates(family, optimizer) {
  const points = teleRows.filter((p) => stripWidth(p.row) === family && widthOf(p.row) === baseWidth);
  const best = points.find((p) => p.selected);
  if (!best) return [];
  const sd = Math.max(statedSd, pooledSd(points).sd);
  const i = points.indexOf(best);
  const out = [best.lr];
  for (const j of [i - 1, i + 1]) {
    const c = points[j];
    if (!c || c.final_val_loss.n === 0) continue;
    const margin = 2 * sd * Math.sqrt(1 / best.final_val_loss.n + 1 / c.final_val_loss.n);
    if (c.final_val_loss.mean - best.final_val_loss.mean <= margin) out.push(c.lr);
  }
  return out;
}

const families = [...new Set(tele.stages.map((s) => s.family))];
const byFamily = families.map((family) => {
  const stages = tele.stages.filter((s) => s.family === family).sort((a, b) => a.stage - b.stage);
  const fullRow = full.ablation.find((a) => a.label === family);
  const fullStage = full.tuning.stages.find((s) => s.row === family);
  const cost = tele.telescopes.find((c) => c.family === family);
  const first = stages[0], last = stages[stages.length - 1];
  const optimizer = first.optimizer;
  const points = full.lr_sensitivity.filter((p) => p.row === family);
  const sigma = sigmaAt(optimizer, targetWidth);
  const candidates = baseCandidates(family, optimizer);
  const regrets = candidates.map((lr) => regret(points, lr, sigma));
  const verdicts = [...new Set(regrets.map(transfers))];
  // Every lr the base width could not tell apart must agree, or the transfer is not decided.
  const verdict = regrets.length === 0 ? "not decided" : verdicts.length === 1 ? verdicts[0]
    : verdicts.every(positive) ? "within tolerance" : "not decided";
  return { family, stages, fullRow, fullStage, cost, first, last, points, optimizer, sigma, regrets, verdict,
           muP: family.startsWith("baseline"),
           telescopedRegret: last.choice.decided ? regret(points, last.choice.lr, sigma) : { text: "undecided", kind: "none" } };
});

const tableRows = byFamily.map((r) => {
  const ratio = r.cost && r.fullStage && r.fullStage.tuning_flops > 0 ? f(r.cost.telescoped_flops / r.fullStage.tuning_flops, 2) : "–";
  return `| ${r.family} | ${r.stages.map((s) => `${g(s.choice.lr)} (${verdictOf(s.choice)})`).join(" → ")} | ${r.fullRow ? `${g(r.fullRow.lr.lr)} (${verdictOf(r.fullRow.lr)})` : "–"} | ${r.regrets.map((x) => x.text).join("; ") || "–"} | ${r.verdict} | ${r.telescopedRegret.text} | ${r.cost ? flops(r.cost.telescoped_flops) : "–"} | ${r.fullStage ? flops(r.fullStage.tuning_flops) : "–"} | ${ratio} |`;
});
const sigmaLines = ["adamw", "muon"].map((o) => {
  const s = sigmaAt(o, targetWidth);
  return `${o} ${f(s.sd, 4)} (pooled ${f(s.pooled, 4)} over ${s.dof} two-seed cell${s.dof === 1 ? "" : "s"})`;
}).join(", ");
const stageCounts = tele.stages.reduce((c, s) => {
  const v = verdictOf(s.choice);
  c[v] = (c[v] ?? 0) + 1;
  return c;
}, {});
const stageSummary = Object.entries(stageCounts).map(([v, n]) => `${n} ${v}`).join(", ");

const claimLine = (r, who) => `${who}: **${r.verdict}**; regret ${r.regrets.map((x) => x.text).join("; ")}`;
const muonMuP = byFamily.find((r) => r.muP && r.optimizer === "muon");
const muonStd = byFamily.find((r) => !r.muP && r.optimizer === "muon");
const adamwMuP = byFamily.find((r) => r.muP && r.optimizer === "adamw");
const adamwStd = byFamily.find((r) => !r.muP && r.optimizer === "adamw");
const claims = [
  muonMuP && claimLine(muonMuP, "- Muon under muP, with Moonlight's RMS factor and the muP factor this repository adds ([science.md](science.md), \"muP\"; before it, Muon's choice fell from 0.024 at width 64 to 0.012 at 256, the same with muP as without: the tuning section run by the binaries of commit 0a3cf87)"),
  muonStd && claimLine(muonStd, "- Muon in the standard parametrization (RMS factor only)"),
  adamwMuP && claimLine(adamwMuP, "- AdamW under muP (the control: the mup package's rules)"),
  adamwStd && claimLine(adamwStd, "- AdamW in the standard parametrization"),
].filter(Boolean).join("\n");

// RMS matching's claim, where muP does not enter: at the base width (muP is the standard
// parametrization there), Muon at AdamW's best lr, from the telescoped stage 0 of each family.
const rmsLines = [];
for (const muP of [false]) {  // the baseline rows' width-64 runs are these (muP is standard there)
  const adamw = byFamily.find((r) => r.muP === muP && r.optimizer === "adamw");
  const muon = byFamily.find((r) => r.muP === muP && r.optimizer === "muon");
  if (!adamw || !muon || !adamw.first.choice.decided || !muon.first.choice.decided) continue;
  const muonPoints = teleRows.filter((p) => stripWidth(p.row) === muon.family && widthOf(p.row) === baseWidth);
  const atAdamw = regret(muonPoints, adamw.first.choice.lr, sigmaAt("muon", baseWidth));
  const steps = Math.log2(muon.first.choice.lr / adamw.first.choice.lr);
  rmsLines.push(`- at width ${baseWidth} (muP and the standard parametrization are the same model there: the baseline rows' runs are the same): AdamW's best lr ${g(adamw.first.choice.lr)}, Muon's ${g(muon.first.choice.lr)} (${f(Math.abs(steps), 1)} factor-2 steps ${steps > 0 ? "above" : "below"}); Muon at AdamW's lr: regret ${atAdamw.text}: ${transfers(atAdamw) === "does not transfer" ? "AdamW's lr does not carry over" : positive(transfers(atAdamw)) ? "AdamW's lr carries over" : "not decided"}.`);
}

const section = `${BEGIN}
## Hyperparameter transfer across widths (telescoping, muP)

Made by \`scripts/reproduce.sh --transfer\` (started ${runInfo.started ?? "?"}; its two sweeps took
${Math.round(Number(runInfo.seconds ?? 0) / 60)} min on ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores; one worker with 2 slots; binaries of
commit \`${runInfo.commit ?? "?"}\`). Sweeps: \`telescoping_cpu.yaml\` (${jobs(telescopeId)} jobs: ${states(telescopeId)}),
\`full_grid_256_cpu.yaml\` (${jobs(fullId)} jobs: ${states(fullId)}).${failures().length ? `
Failed for good: ${failures().join("; ")}.` : ""}

\`examples/telescoping_cpu.yaml\` tunes the lr of AdamW and Muon at width ${baseWidth} on 5 values (seed 1),
then at 128 and ${targetWidth} on 3 values centred on the previous width's choice (seeds 1 and 2). Each
stage aims to bracket its best beyond the seed noise (\`tune.noise\`: sd ${statedSd}, one extra seed
where a neighbour is within 2·σ·sqrt(1/n + 1/n) of the best); of its ${tele.stages.length} stages, ${stageSummary}.
\`baseline\` rows use muP (base width ${baseWidth}; for Muon the spectral factor of
[science.md](science.md), "muP"), \`standard\` rows the standard parametrization.
\`examples/full_grid_256_cpu.yaml\` runs the same search directly at width ${targetWidth} from the same start
grids (seed 1, a second seed where neighbours were close): its best is the reference. Only the lr
is tuned: weight decay stays at 0.1, and whether it transfers is not measured here.

**Transfer regret** at width ${targetWidth}: the mean final val loss, on the full grid's cells, at the lr
chosen at width ${baseWidth} minus the mean at the grid's best there. Where width ${baseWidth} could not tell its
best from a neighbour (within the noise margin above), every such lr is read, and they must agree.
95% interval ± 1.96·σ·sqrt(1/n_a + 1/n_b), σ per optimizer the larger of the stated seed SD and the
SD pooled over the telescoped rows' two-seed cells at width ${targetWidth} (${sigmaLines}); most cells here
have one seed, so σ carries the interval. The rule: **within tolerance** when the upper bound is at
most ${f(TOLERANCE, 3)} nats (two stated seed SDs), **does not transfer** when the lower bound exceeds
it, **same grid point** when the base width's lr is the target's best, else **not decided**. With
one seed a cell the interval is wider than the tolerance, so only "same grid point" can come out
positive, and a factor-2 grid cannot see a shift of less than about half a step (0.5 octave).

| row family | chosen lr, width ${baseWidth} → 128 → ${targetWidth} | full grid at ${targetWidth} | regret at ${targetWidth} of width ${baseWidth}'s lr(s) | verdict | regret of the telescoped choice | telescoped FLOPs | full grid FLOPs | telescoped / full |
|---|---|---|---|---|---|---:|---:|---:|
${tableRows.join("\n")}

FLOPs are the training FLOPs of every tuning run (extensions and noise seeds included): training
tokens × the model's FLOPs per token, 6N plus attention. The telescoped search cost more than the
full grid here (it runs two seeds at 128 and ${targetWidth} against the grid's one, and a 3-value stage
against a 5-value grid saves little): no saving is shown at this scale. The reference shares seed 1
with the telescoped runs (the same configurations: bit-identical runs), so their agreement at
${targetWidth} is not independent evidence.

The paper (section 5.4): "The optimal learning rate and weight decay are transferred cleanly
across scales when using the RMS scaling factor". That sentence is about Muon; AdamW is the
control. By the rule above, for the lr:

${claims}

**RMS matching** (the paper: the factor lets AdamW's lr serve Muon), read where muP does not
enter: at width ${baseWidth}, where muP is the standard parametrization, Muon's regret at AdamW's best lr
(one seed a cell):

${rmsLines.join("\n") || "- not measured"}

<details><summary>Full results of the two sweeps (sweepctl results --format md)</summary>

#### Telescoping (sweep ${telescopeId})

${resultsMd(args["results-dir"], telescopeId)}
#### Full grid at width 256 (sweep ${fullId})

${resultsMd(args["results-dir"], fullId)}
</details>
${END}
`;

writeSection(args.out, BEGIN, END, section, "transfer");
