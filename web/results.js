// The sweep's results as the analysis computed them (GetResultsResponse in JSON): the paper's
// tables, the R_L(B) plot and the lr-sensitivity plot.
"use strict";

// R_L(B) against batch size: log x axis, one line per target through the estimates, t-interval
// bars where there is one (3+ seed pairs), and bounds drawn as arrows (▲ at least, ▼ at most).
function ratioPanel(results, baseline, sweepId) {
  const group = results.ratios.some((r) => r.group === baseline) ? baseline : results.ratios[0].group;
  const byTarget = new Map();
  for (const r of results.ratios.filter((r) => r.group === group && r.ratio.kind !== "RATIO_MISSING")) {
    if (!byTarget.has(r.target)) byTarget.set(r.target, []);
    byTarget.get(r.target).push(r);
  }
  const tables = [], series = [{ label: "batch tokens" }], meta = [null], marks = [];
  for (const [target, points] of byTarget) {
    points.sort((a, b) => Number(a.batch_tokens) - Number(b.batch_tokens));
    tables.push([points.map((p) => Number(p.batch_tokens)), points.map((p) => (p.ratio.kind === "RATIO_ESTIMATE" ? p.ratio.value : null))]);
    const stroke = colorOf(`L = ${target}`);
    series.push({ label: `L = ${target}`, stroke, width: 2, spanGaps: false, points: { show: true, size: 7 } });
    meta.push({ kind: "line", stroke, label: `L = ${target}`, points: true });
    marks.push({ stroke, points });
  }
  const yMax = Math.max(...marks.flatMap(({ points }) => points.map((p) => Math.max(p.ratio.value, p.ratio.has_interval ? p.ratio.ci_high : 0))));
  // Interval bars and bound arrows, as canvas strokes (screen, PNG) or SVG elements (export).
  const shapes = (X, Y) => marks.flatMap(({ stroke, points }) => points.flatMap((p) => {
    const x = X(Number(p.batch_tokens)), out = [];
    if (p.ratio.has_interval) out.push({ stroke, line: [x, Y(p.ratio.ci_low), x, Y(p.ratio.ci_high)] });
    if (p.ratio.kind === "RATIO_LOWER_BOUND" || p.ratio.kind === "RATIO_UPPER_BOUND") {
      const y = Y(p.ratio.value), d = 7 * (p.ratio.kind === "RATIO_LOWER_BOUND" ? -1 : 1);
      out.push({ stroke, triangle: [x - 7, y, x + 7, y, x, y + d] });
    }
    return out;
  }));
  const drawMarks = (u) => {
    const ctx = u.ctx, dpr = devicePixelRatio;
    ctx.save();
    ctx.lineWidth = 2 * dpr;
    for (const s of shapes((v) => u.valToPos(v, "x", true) / dpr, (v) => u.valToPos(v, "y", true) / dpr)) {
      ctx.strokeStyle = ctx.fillStyle = s.stroke;
      ctx.beginPath();
      const c = (s.line || s.triangle).map((v) => v * dpr);
      ctx.moveTo(c[0], c[1]);
      for (let i = 2; i < c.length; i += 2) ctx.lineTo(c[i], c[i + 1]);
      if (s.line) ctx.stroke(); else { ctx.closePath(); ctx.fill(); }
    }
    ctx.restore();
  };
  const svgMarks = (X, Y) => shapes(X, Y).map((s) => (s.line
    ? `<line x1="${s.line[0]}" y1="${s.line[1]}" x2="${s.line[2]}" y2="${s.line[3]}" stroke="${s.stroke}" stroke-width="2"/>`
    : `<polygon points="${s.triangle.join(",")}" fill="${s.stroke}"/>`));
  return chartPanel({ kind: "ratio", file: `sweep-${sweepId}-ratio`, data: uPlot.join(tables), meta, svgMarks,
    title: `R_L(B) = T_AdamW / T_Muon (${group}; > 1: Muon needs fewer tokens; ▲ at least, ▼ at most)`,
    // The y range covers bounds and interval ends too, which are not series values.
    opts: { series, scales: { x: { time: false, distr: 3 }, y: { range: () => [0, Math.max(1.2, yMax * 1.15)] } },
            axes: [{ label: "batch size (tokens)" }, { label: "R_L(B)" }], hooks: { draw: [drawMarks] } } });
}

// Final val loss against lr (log x), one line per row (ablation, optimizer, batch size) that tried
// several lrs, and per weight decay where the sweep tunes it; the chosen point of each row is
// drawn larger.
function lrPanel(results, sweepId) {
  const rows = new Map();
  for (const p of results.lr_sensitivity) {
    // The row names the optimizer and batch size; a tuned weight decay (> 0) splits it in lines.
    const row = p.weight_decay > 0 ? `${p.row} wd=${lrNumber(p.weight_decay)}` : p.row;
    if (!rows.has(row)) rows.set(row, []);
    rows.get(row).push(p);
  }
  const lrs = [...new Set(results.lr_sensitivity.map((p) => Number(p.lr)))].sort((a, b) => a - b);
  const series = [{ label: "lr" }], data = [lrs], meta = [null], chosen = [];
  for (const [row, points] of rows) {
    const byLr = new Map(points.map((p) => [Number(p.lr), p]));
    data.push(lrs.map((lr) => (byLr.has(lr) && byLr.get(lr).final_val_loss.n > 0 ? byLr.get(lr).final_val_loss.mean : null)));
    const stroke = colorOf(row);
    series.push({ label: row, stroke, width: 2, spanGaps: true, points: { show: true, size: 6 } });
    meta.push({ kind: "line", stroke, label: row, points: true });
    const best = points.find((p) => p.selected);
    if (best && best.final_val_loss.n > 0) chosen.push({ stroke, lr: Number(best.lr), loss: best.final_val_loss.mean });
  }
  const drawChosen = (u) => {
    const ctx = u.ctx;
    ctx.save();
    for (const c of chosen) {
      ctx.fillStyle = c.stroke;
      ctx.beginPath();
      ctx.arc(u.valToPos(c.lr, "x", true), u.valToPos(c.loss, "y", true), 6 * devicePixelRatio, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.restore();
  };
  const svgMarks = (X, Y) => chosen.map((c) => `<circle cx="${X(c.lr)}" cy="${Y(c.loss)}" r="6" fill="${c.stroke}"/>`);
  return chartPanel({ kind: "lr", file: `sweep-${sweepId}-lr-sensitivity`, data, meta, svgMarks,
    title: "Final val loss against learning rate (mean over seeds; large dot: the row's chosen lr)",
    opts: { series, scales: { x: { time: false, distr: 3 } }, axes: [{ label: "learning rate" }, { label: "final val loss" }],
            hooks: { draw: [drawChosen] } } });
}

// The analysis tables of a sweep, in the order of the paper.
// An adaptive sweep's search (TuningReport): per row and stage the lrs tried, the choice and
// whether it is bracketed, the runs and the training FLOPs spent; telescopes against a full grid.
// The lr-sensitivity chart above is its picture: loss against lr per row (each stage a row).
function tuningTables(results, id) {
  const t = results.tuning;
  if (!t || !t.stages.length) return [];
  const flops = (v) => (v > 0 ? Number(v).toExponential(2) : "–");
  const stageRows = t.stages.map((s) => ({
    rowClass: s.choice.at_grid_edge && !s.choice.provisional ? "edge" : "",
    cells: [s.row, s.stage + 1, s.width,
            s.values.map((v, i) => (i < s.weight_decays.length ? `(${lrNumber(v)}, ${lrNumber(s.weight_decays[i])})` : lrNumber(v))).join(" "),
            lrText(s.choice), s.tuning_runs, s.stopped_runs,
            s.confirmation_runs, flops(s.tuning_flops)] }));
  const telescopeRows = t.telescopes.map((c) => ({
    cells: [c.family, c.optimizer, c.widths, flops(c.telescoped_flops), `${flops(c.full_grid_flops)} (${c.full_grid_values} runs)`,
            c.full_grid_flops > 0 ? fmt(c.telescoped_flops / c.full_grid_flops, 2) : "–"] }));
  return [
    dataTable(`Tuning: what the coordinator tried per row and stage (tuning FLOPs ${flops(t.tuning_flops)}, confirmation ${flops(t.confirmation_flops)}` +
              (t.stopped_runs ? `; ${t.stopped_runs} runs stopped early, saving ${flops(t.stopped_flops_saved)}` : "") + ")",
      ["row", "stage", "width", t.stages.some((s) => s.weight_decays.length) ? "(lr, weight decay) tried" : "lrs tried", "chosen lr", "tuning runs", "stopped", "confirmation runs", "tuning FLOPs"], stageRows,
      { class: "tuning", textColumns: [3, 4], file: `sweep-${id}-tuning` }),
    telescopeRows.length ? dataTable("Telescoping: tuning compute against one full grid at the largest width",
      ["row family", "optimizer", "widths", "telescoped FLOPs", "full grid at largest width", "telescoped / full grid"], telescopeRows,
      { class: "telescopes", textColumns: [1, 4], file: `sweep-${id}-telescopes` }) : null,
  ];
}

function resultsTables(results, id) {
  const target = results.targets.length ? results.targets[0] : null;
  const ablationRows = results.ablation.map((a) => ({
    rowClass: a.baseline ? "baseline" : "",
    cells: [a.label, lrText(a.lr),
            outcomeText(a.counts) + (a.lr.tuned ? ` (${a.tuning_runs} tuning + ${a.confirmation_runs} confirmation)` : ""),
            stat(a.val_ppl, 2, "succeeded"), stat(a.steps_to_target, 0, "reached"),
            stat(a.spikes, 1), stat(a.peak_memory_mb, 1),
            a.baseline ? "baseline" : !a.has_delta ? "–" : (a.delta_val_ppl >= 0 ? "+" : "") + fmt(a.delta_val_ppl, 2)],
  }));
  // The chosen lr, marked when its row tried nothing beyond it on one side.
  const chosenLr = (lr, atEdge) => (lr ? lrNumber(lr) + (atEdge ? " (edge)" : "") : "–");
  const selectionText = (rule) => (rule || "").replace(/^SELECTION_/, "").toLowerCase() || "–";
  // R at each side's neighbouring lrs, the other side at its choice.
  const neighboursText = (r) => ["adamw", "muon"].map((side) => {
    const parts = (r.neighbours || []).filter((n) => n.side === side).map((n) => `${lrNumber(n.lr)}: ${ratioText(n.ratio)}`);
    return parts.length ? `${side === "adamw" ? "AdamW" : "Muon"} ${parts.join(", ")}` : "";
  }).filter(Boolean).join("; ") || "–";
  // Where each run's T(L) was read (docs/statistics.md).
  const readingText = (reading) => (reading === "READ_ANNEALED" ? "annealed" : "within-run (early speed)");
  // Where each side reaches the target, on the runs R uses (docs/statistics.md, "T / budget").
  const crossingText = (c) => (!c ? "–" : (c.reached ? `${fmt(100 * c.mean_share, 0)}%` : "–") + (c.missed ? ` (${c.missed} missed)` : ""));
  const ratioRows = results.ratios.map((r) => ({
    cells: [readingText(r.reading), r.group, Number(r.batch_tokens), r.target, ratioText(r.ratio), intervalText(r.ratio), r.ratio.pairs,
            chosenLr(r.adamw_lr, r.adamw_lr_at_edge), chosenLr(r.muon_lr, r.muon_lr_at_edge), selectionText(r.selection),
            crossingText(r.adamw_crossing), crossingText(r.muon_crossing), neighboursText(r), r.ratio.note],
    nodes: { 2: count(r.batch_tokens) } }));
  const trendRows = (results.trends || []).map((t) => ({
    cells: [readingText(t.reading), t.group, t.target, t.batch_sizes, t.points, t.has_slope ? fmt(t.per_doubling, 3) : "–",
            t.has_slope ? `[${fmt(t.low, 3)}, ${fmt(t.high, 3)}]` : "–",
            !t.has_slope ? "–" : t.degrees_of_freedom === null ? "inf" : fmt(t.degrees_of_freedom, 1),
            t.has_slope ? `${t.does_not_fall ? "yes" : "not shown"} (margin ${fmt(t.margin, 2)})` : "–", t.withheld || ""] }));
  // The compute–time plane: every batch size's point, its frontier's verdict on each row.
  const paretoVerdictText = (v) => ({ PARETO_MUON_DOMINATES: "Muon dominates", PARETO_NOT_DOMINATED: "Muon does not dominate" })[v] || "undecided";
  const paretoRows = (results.pareto || []).flatMap((f) => f.points.map((p) => ({
    cells: [readingText(f.reading), f.group, f.target, p.optimizer, Number(p.batch_tokens), fmt(p.devices, 2),
            p.reached ? sig3(p.seconds) : "not reached", p.has_interval ? `[${sig3(p.seconds_low)}, ${sig3(p.seconds_high)}]` : "–",
            p.seeds, p.on_frontier ? "yes" : "", `${paretoVerdictText(f.verdict)}: ${f.why}`] })));
  // How the best lr scales with width and batch (docs/statistics.md).
  const exponent = (fitted, v, low, high, interval) => (!fitted ? "–" : fmt(v, 2) + (interval ? ` [${fmt(low, 2)}, ${fmt(high, 2)}]` : ""));
  const lawRows = (results.lr_laws || []).map((l) => ({
    cells: [l.group, l.optimizer, l.rows, exponent(l.fits_width, l.width_exponent, l.width_low, l.width_high, l.has_interval),
            exponent(l.fits_batch, l.batch_exponent, l.batch_low, l.batch_high, l.has_interval), fmt(l.degrees_of_freedom, 0), l.left_out_at_edge] }));
  // Scaling fits and the compute multiplier of budget ladders (docs/statistics.md).
  const never = (v) => (v === null ? "never" : fmt(v, 2));
  const scalingRows = (results.scaling_fits || []).map((r) => ({
    cells: [r.group, r.optimizer, Number(r.batch_tokens), r.lr, fmt(r.e, 3), sig3(r.a), fmt(r.alpha, 3) + (r.alpha_at_bound ? " (at the search's bound)" : ""),
            r.has_interval ? `[${fmt(r.alpha_low, 3)}, ${fmt(r.alpha_high, 3)}]` + (r.failed_draws ? ` (${r.failed_draws} of ${r.bootstrap_draws} draws gave no fit)` : "") : "– (fewer than 5 seeds)",
            r.seeds, r.points] }));
  const multiplierRows = (results.multipliers || []).flatMap((m) => m.points.map((p) => ({
    cells: [m.group, Number(m.batch_tokens), Number(p.tokens), never(p.value),
            p.has_interval ? `[${never(p.low)}, ${never(p.high)}]` : "– (fewer than 5 seeds)", p.extrapolated ? "yes" : "", m.seeds] })));
  const archName = (a) => (a.ffn === "moe" ? `MoE-${a.attention.toUpperCase()}` : a.attention.toUpperCase());
  const architectureRows = results.architecture.map((a) => ({
    cells: [a.label, archName(a), a.optimizer, lrText(a.lr), outcomeText(a.counts), stat(a.tokens_to_target, sig3, "reached"),
            stat(a.flops_to_target, sig3, "reached"), stat(a.seconds_to_target, 1, "reached"),
            stat(a.inference_tokens_per_second, 0, "succeeded"), stat(a.peak_memory_mb, 1), stat(a.val_ppl, 2, "succeeded"),
            a.relative_flops ? ratioText(a.relative_flops) : "–", a.relative_flops ? a.relative_flops.pairs : "–"] }));
  const lrRows = results.lr_sensitivity.map((p) => ({
    rowClass: p.selected ? "baseline" : "",
    cells: [p.row, p.optimizer, Number(p.batch_tokens), lrNumber(p.lr), stat(p.final_val_loss, 4, "succeeded"), outcomeText(p.counts),
            p.selected ? "best" : ""],
    nodes: { 2: count(p.batch_tokens) } }));
  return [
    dataTable(`Ablations (Table 2 layout; mean ± std over seeds on each row's best lr; (n/m): over n of the row's m runs${target !== null ? `; steps to val loss ${target}` : ""})`,
      ["label", "lr", "runs", "val PPL", "steps to target", "loss spikes", "peak memory (MiB)", "Δ val PPL vs baseline"], ablationRows,
      { class: "ablation", textColumns: [1, 2], file: `sweep-${id}-ablations` }),
    results.architecture.length ? dataTable(`Architectures (Table 3 layout${target !== null ? `; to val loss ${target}` : ""})`,
      ["label", "architecture", "optimizer", "lr", "runs", "tokens to target", "FLOPs to target (model + optimizer)",
       "train time to target (s)", "inference tok/s", "peak memory (MiB)", "final PPL",
       "FLOPs to target vs MHA+AdamW", "seed pairs"], architectureRows,
      { class: "architecture", textColumns: [1, 2, 3, 4], file: `sweep-${id}-architectures` }) : null,
    ratioRows.length ? dataTable("Token consumption ratio R_L(B) = T_AdamW / T_Muon (each side's lr chosen by the rule named)",
      ["T read", "group", "batch tokens", "target loss", "R_L(B)", "95% CI", "seed pairs", "lr AdamW", "lr Muon", "lr chosen by",
       "T / budget AdamW", "T / budget Muon", "R at neighbouring lrs", "how"],
      ratioRows, { class: "ratios", textColumns: [0, 7, 8, 9, 10, 11, 12, 13], file: `sweep-${id}-ratios` }) : null,
    trendRows.length ? dataTable("R_L(B) against the batch size (slope of the mean log ratio on log2(B), Welch interval)",
      ["T read", "group", "target loss", "batch sizes", "seed pairs", "R per doubling of B", "95% CI", "df", "does not fall", "why no slope"],
      trendRows, { class: "trends", textColumns: [0, 6, 8, 9], file: `sweep-${id}-trends` }) : null,
    ...(results.pareto || []).slice(0, 4).map((f) => paretoPanel(f,
      `Compute–time plane, L = ${f.target} (${readingText(f.reading)}${f.group ? `, ${f.group}` : ""}): ${paretoVerdictText(f.verdict)}`,
      `sweep-${id}-pareto-${f.target}`)),
    paretoRows.length ? dataTable("Compute–time plane (section 3.2): devices = B / one device's batch, time to target = T(L, B) / B steps × seconds per step there",
      ["T read", "group", "target loss", "optimizer", "batch tokens", "devices", "time to target (s)", "95% CI", "seeds", "on its frontier", "verdict"],
      paretoRows, { class: "pareto", textColumns: [0, 1, 3, 7, 10], file: `sweep-${id}-pareto` }) : null,
    ...scalingPanels(results.scaling_fits || [], "Scaling fits: L(D) = E + A·D^(−α) over each ladder row's annealed final losses",
      `sweep-${id}-scaling`),
    scalingRows.length ? dataTable("Scaling fits: L(D) = E + A·D^(−α) over each ladder row's annealed final losses",
      ["group", "optimizer", "batch tokens", "lr", "E", "A", "α", "bootstrap 95% of α (nominal; coverage 0.70 at 3 seeds, 0.89 at 8)", "seeds", "points"],
      scalingRows, { class: "scaling", textColumns: [1, 7], file: `sweep-${id}-scaling` }) : null,
    multiplierRows.length ? dataTable("Compute multiplier: tokens AdamW needs to reach the loss Muon reaches at D",
      ["group", "batch tokens", "budget D (tokens)", "AdamW / Muon tokens", "bootstrap 95%", "extrapolated", "paired seeds"],
      multiplierRows, { class: "multipliers", textColumns: [4, 5], file: `sweep-${id}-multipliers` }) : null,
    lrRows.length ? dataTable("Learning-rate sensitivity (final val loss per lr)",
      ["row", "optimizer", "batch tokens", "lr", "final val loss", "runs", "selected"], lrRows,
      { class: "lr-sensitivity", textColumns: [1, 5, 6], file: `sweep-${id}-lr-sensitivity` }) : null,
    lawRows.length ? dataTable("How the best lr scales: lr* = C · width^a · B^b over rows that differ only in those (95% CI)",
      ["group", "optimizer", "rows", "width exponent a", "batch exponent b", "df", "left out (lr at grid edge)"], lawRows,
      { class: "lr-laws", textColumns: [1, 3, 4], file: `sweep-${id}-lr-laws` }) : null,
    ...tuningTables(results, id),
    results.notes.length ? el("section", { class: "notes" }, el("h2", {}, "How these numbers were made"),
      el("ul", {}, results.notes.map((n) => el("li", {}, n)))) : null,
  ];
}
