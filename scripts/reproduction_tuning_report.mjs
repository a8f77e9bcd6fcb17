// Writes the tuning section of docs/reproduction.md from a finished `scripts/reproduce.sh
// --tuning` run: adaptive sweeps (docs/sweeps.md, "Sweeps that tune themselves") measured at CPU
// scale. The section sits between the markers below; the rest of the file is left as it is (and
// scripts/reproduction_report.mjs keeps this section when it rewrites the rest).
//   node scripts/reproduction_tuning_report.mjs --base URL --sweeps "R T E" --results-dir DIR \
//        --run-info FILE --out docs/reproduction.md
// The sweeps are, in order: the adaptive R_L(B) twin, tune_lr_cpu.yaml, the same with early
// stopping (telescoping has its own section: reproduction_transfer_report.mjs).
import { cpus } from "node:os";
import { parseArgs, loadSweeps, readRunInfo, resultsMd, writeSection } from "./report_io.mjs";
import { f, ratioWords, tokenClaim, monotoneClaim, targetPosition } from "./report_rules.mjs";

export const BEGIN = "<!-- tuning:begin (scripts/reproduce.sh --tuning writes this section) -->";
export const END = "<!-- tuning:end -->";

const args = parseArgs();
const [ratioId, tuneId, earlyId] = args.sweeps.trim().split(/\s+/).map(Number);

const g = (v) => (v === null || v === undefined ? "–" : String(Number(v.toPrecision(6))));
const flops = (v) => (v > 0 ? Number(v).toExponential(2) : "–");
// How a row's choice was made, in words.
const verdict = (c) => (!c.decided ? "undecided" : c.extensions_exhausted ? "at an edge after its extensions: not bracketed"
  : c.at_grid_edge ? "at an edge" : c.within_noise ? "a neighbour within the seed noise: not bracketed" : c.bracketed ? "bracketed" : "not bracketed");

const { sweeps, results, jobs, states, failures } = await loadSweeps(args.base, [ratioId, tuneId, earlyId]);
const runInfo = readRunInfo(args["run-info"]);

// ------------------------------------------------------------------------- R_L(B), bracketed

function ratioSection() {
  const r = results(ratioId);
  const edge = r.ablation.filter((a) => a.lr.at_grid_edge);
  const claim = edge.length === 0
    ? `**Every chosen lr is interior**: each of the ${r.ablation.length} rows' best lr has a tried lr on both sides.`
    : `**${edge.length} of ${r.ablation.length} rows are still at an edge** after ${edge.map((a) => a.lr.extensions).join(", ")} extensions: ${edge.map((a) => a.label).join(", ")}.`;
  const tokens = tokenClaim(r), trend = monotoneClaim(r);
  const rows = r.tuning.stages.map((s) => `| ${s.row} | ${s.values.map(g).join(", ")} | ${g(s.choice.lr)} | ${verdict(s.choice)} | ${s.choice.extensions} | ${s.tuning_runs} + ${s.confirmation_runs} |`).join("\n");
  return `### R_L(B) with learning rates the coordinator brackets

\`examples/batch_size_ratio_tuned_cpu.yaml\` is the R_L(B) twin above with a \`tune:\` section
instead of a fixed lr grid: each row starts from the same 3 lrs, is extended past an edge until
its best lr is interior (at most 3 extensions), and then runs the confirmation seeds 2, 3 and 4
at the chosen lr. R_L(B) pairs those three: seed 1, which chose the lr, is not among them, so no
ratio credits an lr with the run that picked it. ${claim}

Claim 1 (R_L(B) > 1), by the rule of claim 1 above: **${tokens.verdict}.**
${(r.notes || []).filter((n) => n.startsWith("Targets from the data")).join(" ")} ${targetPosition(r, sweeps[ratioId].detail)}

${tokens.table}

Claim 2 (R_L(B) does not fall as B grows), by the rule of claim 2 above: **${trend.verdict}.**

${trend.lines}

| row | lrs tried (tuning seed 1) | chosen | choice | extensions | runs (tuning + confirmation) |
|---|---|---:|---|---:|---|
${rows}
`;
}

// ------------------------------------------------------------------------- early stopping

function earlyStopSection() {
  const plain = results(tuneId), early = results(earlyId);
  const rows = plain.ablation.map((a) => {
    const e = early.ablation.find((b) => b.label === a.label);
    const changed = e && e.lr.decided && a.lr.decided && Math.abs(e.lr.lr - a.lr.lr) > 1e-12;
    return { label: a.label, plain: a.lr.lr, early: e ? e.lr.lr : NaN, changed };
  });
  const changed = rows.filter((r) => r.changed).length;
  const saved = early.tuning.tuning_flops > 0 ? 1 - early.tuning.tuning_flops / plain.tuning.tuning_flops : 0;
  const completions = sweeps[earlyId].detail.jobs.filter((j) => j.role === "ROLE_COMPLETION").length;
  return `### Early stopping of tuning runs

\`examples/tune_lr_cpu.yaml\` ran twice: as it is, and with its \`early_stop\` line in force
(rungs at 25% and 50% of a run's tokens; a rung is judged once every start-grid run of the row
has reached it, and the worst half of the runs there stop, once at least 3 are ranked; a stopped
neighbour of a row's best is run again to its end, since a stopped run does not bracket:
docs/sweeps.md). Early stopping spent **${f(100 * Math.abs(saved), 1)}% ${saved >= 0 ? "less" : "more"} tuning compute**${completions ? ` (its ${completions} completion run${completions === 1 ? "" : "s"} included)` : ""} and
changed the chosen lr in **${changed} of ${rows.length} rows**.

| | tuning runs stopped | tuning FLOPs | FLOPs the stopped runs did not spend |
|---|---:|---:|---:|
| without early stopping | ${plain.tuning.stopped_runs} | ${flops(plain.tuning.tuning_flops)} | – |
| with early stopping | ${early.tuning.stopped_runs} | ${flops(early.tuning.tuning_flops)} | ${flops(early.tuning.stopped_flops_saved)} |

| row | chosen lr without | with early stopping |
|---|---:|---:|
${rows.map((r) => `| ${r.label} | ${g(r.plain)} | ${g(r.early)}${r.changed ? " (changed)" : ""} |`).join("\n")}
`;
}

const md = (id) => resultsMd(args["results-dir"], id);
const section = `${BEGIN}
## Sweeps that tune themselves

What the coordinator's own search finds and costs at CPU scale (docs/sweeps.md, "Sweeps that
tune themselves"). Made by \`scripts/reproduce.sh --tuning\` (started ${runInfo.started ?? "?"};
its three sweeps took ${Math.round(Number(runInfo.seconds ?? 0) / 60)} min on ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores;
one worker with 2 slots; binaries of commit \`${runInfo.commit ?? "?"}\`). Sweeps:
\`batch_size_ratio_tuned_cpu.yaml\` (${jobs(ratioId)} jobs: ${states(ratioId)}),
\`tune_lr_cpu.yaml\` (${jobs(tuneId)} jobs: ${states(tuneId)}) and its early-stopping run (${jobs(earlyId)} jobs: ${states(earlyId)}).
Hyperparameter transfer across widths has its own section below.${failures().length ? `
Failed for good: ${failures().join("; ")}.` : ""}

${ratioSection()}
${earlyStopSection()}
<details><summary>Full results of the three sweeps (sweepctl results --format md)</summary>

#### Adaptive R_L(B) (sweep ${ratioId})

${md(ratioId)}
#### tune_lr_cpu.yaml (sweep ${tuneId})

${md(tuneId)}
#### tune_lr_cpu.yaml with early stopping (sweep ${earlyId})

${md(earlyId)}
</details>
${END}
`;

writeSection(args.out, BEGIN, END, section, "tuning");
