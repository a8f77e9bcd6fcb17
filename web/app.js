// The dashboard: a read-only view of the coordinator's /api/. Every string from the API is
// rendered through textContent (el() below), never as HTML, so a run name holding markup shows as
// text. When the coordinator has a token, the page asks for it once and keeps it in localStorage.
"use strict";

const app = document.getElementById("app");
const statusLine = document.getElementById("status");
let pollTimer = null;
const PALETTE = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#1b7c83", "#e16f24", "#6e7781",
                 "#bc4c00", "#0550ae", "#a40e26", "#116329"];

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(path) {
  const token = localStorage.getItem("sweepToken");
  const res = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {} });
  if (res.status === 401) {
    const entered = window.prompt("This coordinator needs its access token:");
    if (entered === null) throw new Error("no token given");
    localStorage.setItem("sweepToken", entered.trim());
    return api(path);
  }
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

const fmt = (v, digits = 3) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits));
// Results come as the GetResultsResponse message in JSON (int64 as strings, enums by name); these
// render them in the same words as `sweepctl results`.
// "41 ± 3", and "(2/3 reached)" when a value averages over a subset of the row's runs.
const stat = (s, digits, word = "runs") => {
  if (!s || s.n === 0) return s && s.of > 0 ? `– (0/${s.of} ${word})` : "–";
  const text = s.n === 1 ? fmt(s.mean, digits) : `${fmt(s.mean, digits)} ± ${fmt(s.std, digits)}`;
  return s.n < s.of ? `${text} (${s.n}/${s.of} ${word})` : text;
};
const lrNumber = (v) => Number(v).toPrecision(3).replace(/\.?0+(e|$)/, "$1");
const outcomeText = (c) => [`${c.succeeded}/${c.total} ok`, c.diverged ? `${c.diverged} diverged` : null,
  c.failed ? `${c.failed} failed` : null, c.cancelled ? `${c.cancelled} cancelled` : null,
  c.unfinished ? `${c.unfinished} unfinished` : null].filter(Boolean).join(", ");
const lrText = (c) => {
  if (!c.decided) return `– (none of ${c.candidates} finished)`;
  if (c.candidates <= 1) return lrNumber(c.lr);
  const parts = [`best of ${c.candidates}`];
  if (c.at_grid_edge) parts.push("at grid edge: widen the grid");
  if (c.provisional) parts.push("provisional");
  return `${lrNumber(c.lr)} (${parts.join(", ")})`;
};
const ratioText = (r) => ({ RATIO_ESTIMATE: fmt(r.value, 3), RATIO_LOWER_BOUND: ">" + fmt(r.value, 3),
                            RATIO_UPPER_BOUND: "<" + fmt(r.value, 3) })[r.kind] || "–";
const intervalText = (r) => (r.has_interval ? `[${fmt(r.ci_low)}, ${fmt(r.ci_high)}]` : "–");
const when = (ms) => new Date(ms).toLocaleString();

function progressBar(step, max) {
  const pct = max > 0 ? Math.min(100, (100 * step) / max) : 0;
  const inner = el("span");
  inner.style.width = pct + "%";
  return el("span", { class: "bar", title: `${step}/${max}` }, inner);
}

// A table with a CSV download: rows are arrays of cell values (strings or numbers).
// A value for people, by what its field measures: bytes in KiB/MiB/GiB, seconds as s/min/h,
// losses to 4 decimals, counts as integers with separators; anything else to 6 digits.
function human(field, v) {
  if (typeof v !== "number") return v;
  if (!isFinite(v)) return "-";
  if (field.endsWith("_bytes")) {
    const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let i = 0, x = v;
    while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
    return i === 0 ? `${v} bytes` : `${x.toFixed(x < 10 ? 2 : 1)} ${units[i]}`;
  }
  if (field.endsWith("_s")) return v < 120 ? `${v.toFixed(v < 10 ? 2 : 1)} s` : v < 7200 ? `${(v / 60).toFixed(1)} min` : `${(v / 3600).toFixed(2)} h`;
  if (field.endsWith("_loss")) return v.toFixed(4);
  if (field.endsWith("_ppl") || field === "achieved_gflops") return v.toFixed(2);
  if (["steps", "tokens", "num_params", "tokens_per_second"].includes(field) || field.endsWith("_count"))
    return Math.round(v).toLocaleString("en-US");
  return v.toPrecision(6);
}

function dataTable(title, header, rows, options = {}) {
  const csv = () => {
    const quote = (v) => {
      const s = v === null || v === undefined ? "" : String(v);
      return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    };
    const text = [header, ...rows.map((r) => r.cells)].map((r) => r.map(quote).join(",")).join("\n") + "\n";
    const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: options.file || "table.csv" });
    a.click();
  };
  const isText = (i) => i === 0 || (options.textColumns || []).includes(i);
  const body = el("tbody");
  const fill = (ordered) => body.replaceChildren(...ordered.map((r) => el("tr", { class: r.rowClass || "" },
    r.cells.map((c, i) => el("td", { class: isText(i) ? "text" : "" }, r.nodes && r.nodes[i] ? r.nodes[i] : c)))));
  fill(rows);
  // Every column sorts on a click of its header (again: the other way): numbers as numbers,
  // missing values last, the rest as text.
  let sorted = { column: -1, ascending: true };
  const sortBy = (column, th) => {
    sorted = { column, ascending: sorted.column === column ? !sorted.ascending : true };
    const key = (r) => { const v = r.cells[column]; const n = typeof v === "number" ? v : parseFloat(v); return { v, n }; };
    const ordered = [...rows].sort((a, b) => {
      const x = key(a), y = key(b);
      const missing = (k) => k.v === null || k.v === undefined || k.v === "" || k.v === "-";
      if (missing(x) !== missing(y)) return missing(x) ? 1 : -1;
      const order = !isNaN(x.n) && !isNaN(y.n) && !isText(column) ? x.n - y.n : String(x.v).localeCompare(String(y.v));
      return sorted.ascending ? order : -order;
    });
    for (const other of th.parentNode.children) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", sorted.ascending ? "ascending" : "descending");
    fill(ordered);
  };
  const headers = header.map((h, i) => {
    const th = el("th", { class: (isText(i) ? "text " : "") + "sortable", title: "sort by " + h }, h);
    th.addEventListener("click", () => sortBy(i, th));
    return th;
  });
  const table = el("table", { class: options.class || "" }, el("thead", {}, el("tr", {}, headers)), body);
  return el("section", {}, el("h2", {}, title, el("button", { class: "csv", onclick: csv }, "CSV")), table);
}

// Replaces the page; absent parts (null) are skipped rather than shown as the text "null".
function show(...nodes) {
  app.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
}

function setPoll(fn, ms) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(fn, ms);
}

// ---------------------------------------------------------------- pages

async function sweepsPage(before) {
  const data = await api("/api/sweeps?limit=50" + (before ? "&before=" + before : ""));
  const rows = data.sweeps.map((s) => {
    const done = ["SUCCEEDED", "FAILED", "DIVERGED", "CANCELLED"].reduce((n, k) => n + (s.jobs_by_state[k] || 0), 0);
    const counts = Object.entries(s.jobs_by_state).map(([k, v]) => `${v} ${k}`).join(", ");
    return {
      cells: [s.name, s.id, s.state, `${done}/${s.total_jobs}`, counts, when(s.submitted_ms)],
      nodes: { 0: el("a", { href: `#/sweep/${s.id}` }, s.name), 2: el("span", { class: "state " + s.state }, s.state),
               3: el("span", {}, progressBar(done, s.total_jobs), ` ${done}/${s.total_jobs}`) },
    };
  });
  const older = data.sweeps.length === 50
    ? el("p", {}, el("a", { href: `#/sweeps/before/${data.sweeps[data.sweeps.length - 1].id}` }, "Older sweeps →")) : null;
  show(el("h1", {}, "Sweeps"),
    rows.length ? dataTable("", ["name", "id", "state", "progress", "jobs", "submitted"], rows, { textColumns: [2, 4, 5], file: "sweeps.csv" })
                : el("p", {}, "No sweeps yet: sweepctl submit examples/quick_cpu_sweep.yaml"), older);
  setPoll(() => route(), 5000);
}

// EMA smoothing (TensorBoard-style, debiased), skipping gaps.
function smooth(values, weight) {
  if (!weight) return values;
  let last = 0, count = 0;
  return values.map((v) => {
    if (v === null || v === undefined) return v;
    count++;
    last = last * weight + (1 - weight) * v;
    return last / (1 - Math.pow(weight, count));
  });
}

const view = { x: "step", log: false, smoothing: 0, group: true };

// Builds aligned uPlot data for train or val curves, per run or grouped by label (mean line and
// a min/max band over seeds). Spikes become a points-only series so they are never hidden.
function curveChart(curves, kind, width) {
  const xOf = (job, steps) => (view.x === "tokens" ? steps.map((s) => s * job.batch_tokens) : steps);
  const tables = [], series = [{ label: view.x }], bands = [], bandEdges = [];
  const spikeX = [], spikeY = [];
  const groups = new Map();
  for (const job of curves) {
    const c = kind === "train" ? job.train : job.val;
    if (!c.step.length) continue;
    const y = smooth(kind === "train" ? c.mean : c.loss, view.smoothing);
    if (view.group) {
      if (!groups.has(job.label)) groups.set(job.label, []);
      groups.get(job.label).push({ x: xOf(job, c.step), y });
    } else {
      tables.push([xOf(job, c.step), y]);
      series.push({ label: `${job.label} seed ${job.seed}`, stroke: PALETTE[(series.length - 1) % PALETTE.length], width: 1.5 });
    }
    if (kind === "train") {
      const index = new Map(c.step.map((s, i) => [s, i]));
      for (const s of c.spike_steps) { spikeX.push(view.x === "tokens" ? s * job.batch_tokens : s); spikeY.push(c.max[index.get(s)]); }
    }
  }
  if (view.group) {
    let color = 0;
    for (const [label, runs] of groups) {
      const joined = uPlot.join(runs.map((r) => [r.x, r.y]));
      const xs = joined[0], lo = [], hi = [], mean = [];
      for (let i = 0; i < xs.length; i++) {
        const vals = joined.slice(1).map((s) => s[i]).filter((v) => v !== null && v !== undefined);
        mean.push(vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null);
        lo.push(vals.length ? Math.min(...vals) : null);
        hi.push(vals.length ? Math.max(...vals) : null);
      }
      const stroke = PALETTE[color++ % PALETTE.length];
      tables.push([xs, hi], [xs, lo], [xs, mean]);
      const base = series.length;
      series.push({ label: `${label} max`, stroke, width: 0 },
                  { label: `${label} min`, stroke, width: 0 },
                  { label: `${label} (mean of ${runs.length})`, stroke, width: 2 });
      bandEdges.push(base, base + 1);
      bands.push({ series: [base, base + 1], fill: stroke + "22" });
    }
  }
  if (spikeX.length) {
    const highest = new Map();  // one marker per x: the highest spiking value there
    spikeX.forEach((x, i) => highest.set(x, Math.max(highest.get(x) ?? -Infinity, spikeY[i])));
    const xs = [...highest.keys()].sort((a, b) => a - b);
    tables.push([xs, xs.map((x) => highest.get(x))]);
    series.push({ label: "loss spikes", stroke: "#cf222e", paths: () => null, points: { show: true, size: 9, fill: "#cf222e" } });
  }
  if (!tables.length) return el("p", {}, `No ${kind} points yet.`);
  const data = uPlot.join(tables);
  const opts = {
    title: kind === "train" ? "train loss" : "val loss", width, height: 320, series, bands,
    scales: { x: { time: false, distr: view.log ? 3 : 1 } },
    axes: [{ label: view.x }, { label: "loss (nats)" }],
    legend: { live: true },
  };
  const holder = el("div", { class: "chart", "data-kind": kind });
  const plot = new uPlot(opts, data, holder);
  // The band's min/max edges stay out of the legend; toggling a mean line is what users want.
  const rows = plot.root.querySelectorAll(".u-legend .u-series");
  for (const i of bandEdges) if (rows[i]) rows[i].style.display = "none";
  return holder;
}

// One named metric of one run (optimizer or MoE diagnostics): the mean per bucket, and the
// min/max band so that a spike between two drawn points stays visible.
function metricChart(name, curve, width) {
  if (!curve.step.length) return el("p", {}, `No points of ${name} yet.`);
  const stroke = PALETTE[0];
  const data = [curve.step, curve.max, curve.min, curve.mean];
  const holder = el("div", { class: "chart", "data-kind": "metric", "data-metric": name });
  new uPlot({
    title: name, width, height: 280,
    series: [{ label: "step" }, { label: "max", stroke, width: 0 }, { label: "min", stroke, width: 0 }, { label: name, stroke, width: 1.5 }],
    bands: [{ series: [1, 2], fill: stroke + "22" }],
    scales: { x: { time: false } }, axes: [{ label: "step" }, { label: name }], legend: { live: true },
  }, data, holder);
  return holder;
}

// The run page's metric picker: a select of the run's named metrics and the chosen one's chart.
function metricPanel(runId, names, width) {
  const holder = el("div", { class: "metric-chart" });
  const picker = el("select", { class: "metric-picker", "aria-label": "named metric" }, names.map((n) => el("option", { value: n }, n)));
  if (names.includes(view.metric)) picker.value = view.metric;  // kept across refreshes and runs
  const draw = async () => {
    const name = view.metric = picker.value;
    const data = await api(`/api/metrics?name=${encodeURIComponent(name)}&runs=${runId}&points=1000`);
    holder.replaceChildren(metricChart(name, data.runs[0].curve, width));
  };
  picker.addEventListener("change", draw);
  draw();
  return el("section", { class: "metrics" }, el("h2", {}, "Named metrics ", picker), holder);
}

// R_L(B) against batch size: log x axis, one line per target through the estimates, t-interval
// bars where there is one (3+ seed pairs), and bounds drawn as arrows (▲ at least, ▼ at most).
function ratioChart(results, width, baseline) {
  const group = results.ratios.some((r) => r.group === baseline) ? baseline : results.ratios[0].group;
  const byTarget = new Map();
  for (const r of results.ratios.filter((r) => r.group === group && r.ratio.kind !== "RATIO_MISSING")) {
    if (!byTarget.has(r.target)) byTarget.set(r.target, []);
    byTarget.get(r.target).push(r);
  }
  const tables = [], series = [{ label: "batch tokens" }], marks = [];
  let color = 0;
  for (const [target, points] of byTarget) {
    points.sort((a, b) => Number(a.batch_tokens) - Number(b.batch_tokens));
    tables.push([points.map((p) => Number(p.batch_tokens)), points.map((p) => (p.ratio.kind === "RATIO_ESTIMATE" ? p.ratio.value : null))]);
    const stroke = PALETTE[color++ % PALETTE.length];
    series.push({ label: `L = ${target}`, stroke, width: 2, spanGaps: false, points: { show: true, size: 7 } });
    marks.push({ stroke, points });
  }
  const yMax = Math.max(...marks.flatMap(({ points }) => points.map((p) => Math.max(p.ratio.value, p.ratio.has_interval ? p.ratio.ci_high : 0))));
  const drawMarks = (u) => {
    const ctx = u.ctx;
    ctx.save();
    ctx.lineWidth = 2 * devicePixelRatio;
    for (const { stroke, points } of marks) {
      ctx.strokeStyle = ctx.fillStyle = stroke;
      for (const p of points) {
        const x = u.valToPos(Number(p.batch_tokens), "x", true);
        if (p.ratio.has_interval) {
          ctx.beginPath();
          ctx.moveTo(x, u.valToPos(p.ratio.ci_low, "y", true));
          ctx.lineTo(x, u.valToPos(p.ratio.ci_high, "y", true));
          ctx.stroke();
        }
        if (p.ratio.kind === "RATIO_LOWER_BOUND" || p.ratio.kind === "RATIO_UPPER_BOUND") {
          const y = u.valToPos(p.ratio.value, "y", true), d = 7 * devicePixelRatio * (p.ratio.kind === "RATIO_LOWER_BOUND" ? -1 : 1);
          ctx.beginPath();
          ctx.moveTo(x - Math.abs(d), y);
          ctx.lineTo(x + Math.abs(d), y);
          ctx.lineTo(x, y + d);
          ctx.closePath();
          ctx.fill();
        }
      }
    }
    ctx.restore();
  };
  const holder = el("div", { class: "chart", "data-kind": "ratio" });
  new uPlot({
    title: `R_L(B) = T_AdamW / T_Muon (${group}; > 1: Muon needs fewer tokens; ▲ at least, ▼ at most)`, width, height: 300, series,
    // The y range covers bounds and interval ends too, which are not series values.
    scales: { x: { time: false, distr: 3 }, y: { range: () => [0, Math.max(1.2, yMax * 1.15)] } },
    axes: [{ label: "batch size (tokens)" }, { label: "R_L(B)" }], hooks: { draw: [drawMarks] },
  }, uPlot.join(tables), holder);
  return holder;
}

// Final val loss against lr (log x), one line per row that tried several lrs; the chosen lr of
// each row is drawn larger.
function lrChart(results, width) {
  const rows = new Map();
  for (const p of results.lr_sensitivity) {
    if (!rows.has(p.row)) rows.set(p.row, []);
    rows.get(p.row).push(p);
  }
  const lrs = [...new Set(results.lr_sensitivity.map((p) => Number(p.lr)))].sort((a, b) => a - b);
  const series = [{ label: "lr" }], data = [lrs];
  let color = 0;
  const chosen = [];
  for (const [row, points] of rows) {
    const byLr = new Map(points.map((p) => [Number(p.lr), p]));
    data.push(lrs.map((lr) => (byLr.has(lr) && byLr.get(lr).final_val_loss.n > 0 ? byLr.get(lr).final_val_loss.mean : null)));
    const stroke = PALETTE[color++ % PALETTE.length];
    series.push({ label: row, stroke, width: 2, spanGaps: true, points: { show: true, size: 6 } });
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
  const holder = el("div", { class: "chart", "data-kind": "lr" });
  new uPlot({ title: "Final val loss against learning rate (mean over seeds; large dot: the row's chosen lr)", width, height: 300,
              series, scales: { x: { time: false, distr: 3 } }, axes: [{ label: "learning rate" }, { label: "final val loss" }],
              hooks: { draw: [drawChosen] } }, data, holder);
  return holder;
}

async function sweepPage(id) {
  const [detail, curves, results] = await Promise.all([
    api(`/api/sweeps/${id}`), api(`/api/sweeps/${id}/curves?points=400`), api(`/api/sweeps/${id}/results`)]);
  const s = detail.sweep;
  const width = Math.min(680, Math.max(360, (app.clientWidth - 40) / 2));
  const control = (label, input) => el("label", {}, label, " ", input);
  const rerender = () => sweepPage(id);
  const select = (key, options) => {
    const node = el("select", { onchange: (e) => { view[key] = e.target.value === "true" ? true : e.target.value === "false" ? false : e.target.value; rerender(); } },
      options.map(([v, text]) => { const o = el("option", { value: String(v) }, text); if (view[key] === v) o.selected = true; return o; }));
    return node;
  };
  const slider = el("input", { type: "range", min: "0", max: "0.99", step: "0.01", value: String(view.smoothing),
                               onchange: (e) => { view.smoothing = Number(e.target.value); rerender(); } });
  const jobRows = detail.jobs.map((j) => ({
    cells: [j.label, j.id, j.seed, j.state, j.attempt, j.worker_id, `${j.step}/${j.max_steps}`, fmt(j.last_train_loss), fmt(j.last_val_loss), j.spikes, j.message],
    nodes: { 0: el("a", { href: `#/run/${j.id}` }, j.label), 3: el("span", { class: "state " + j.state }, j.state),
             6: el("span", {}, progressBar(j.step, j.max_steps), ` ${j.step}/${j.max_steps}`) },
  }));
  const target = results.targets.length ? results.targets[0] : null;
  const ablationRows = results.ablation.map((a) => ({
    rowClass: a.baseline ? "baseline" : "",
    cells: [a.label, lrText(a.lr), outcomeText(a.counts), stat(a.val_ppl, 2, "succeeded"), stat(a.steps_to_target, 0, "reached"),
            stat(a.spikes, 1), stat(a.peak_memory_mb, 1),
            a.baseline ? "baseline" : !a.has_delta ? "–" : (a.delta_val_ppl >= 0 ? "+" : "") + fmt(a.delta_val_ppl, 2)],
  }));
  const ratioRows = results.ratios.map((r) => ({
    cells: [r.group, Number(r.batch_tokens), r.target, ratioText(r.ratio), intervalText(r.ratio), r.ratio.pairs,
            r.adamw_lr ? lrNumber(r.adamw_lr) : "–", r.muon_lr ? lrNumber(r.muon_lr) : "–", r.ratio.note] }));
  const archName = (a) => (a.ffn === "moe" ? `MoE-${a.attention.toUpperCase()}` : a.attention.toUpperCase());
  const architectureRows = results.architecture.map((a) => ({
    cells: [a.label, archName(a), a.optimizer, lrText(a.lr), outcomeText(a.counts), stat(a.seconds_to_target, 1, "reached"),
            stat(a.inference_tokens_per_second, 0, "succeeded"), stat(a.peak_memory_mb, 1), stat(a.val_ppl, 2, "succeeded"),
            a.relative_flops ? ratioText(a.relative_flops) : "–", a.relative_flops ? a.relative_flops.pairs : "–"] }));
  const lrRows = results.lr_sensitivity.map((p) => ({
    rowClass: p.selected ? "baseline" : "",
    cells: [p.row, p.optimizer, Number(p.batch_tokens), lrNumber(p.lr), stat(p.final_val_loss, 4, "succeeded"), outcomeText(p.counts),
            p.selected ? "best" : ""] }));
  show(
    el("h1", {}, s.name, " ", el("span", { class: "state " + s.state }, s.state)),
    el("p", {}, `sweep ${s.id} · submitted ${when(s.submitted_ms)} · ${s.total_jobs} jobs · `,
      Object.entries(s.jobs_by_state).map(([k, v]) => `${v} ${k}`).join(", ")),
    el("div", { class: "controls" },
      control("x axis", select("x", [["step", "steps"], ["tokens", "tokens"]])),
      control("x scale", select("log", [[false, "linear"], [true, "log"]])),
      control("smoothing", slider), el("span", {}, fmt(view.smoothing, 2)),
      control("curves", select("group", [[true, "mean and min/max band per label"], [false, "every run"]]))),
    el("div", { class: "charts" }, curveChart(curves.jobs, "train", width), curveChart(curves.jobs, "val", width)),
    results.ratios.some((r) => r.ratio.kind !== "RATIO_MISSING") || results.lr_sensitivity.length
      ? el("div", { class: "charts" },
          results.ratios.some((r) => r.ratio.kind !== "RATIO_MISSING") ? ratioChart(results, width, s.baseline) : null,
          results.lr_sensitivity.length ? lrChart(results, width) : null) : null,
    dataTable(`Ablations (Table 2 layout; mean ± std over seeds on each row's best lr; (n/m): over n of the row's m runs${target !== null ? `; steps to val loss ${target}` : ""})`,
      ["label", "lr", "runs", "val PPL", "steps to target", "loss spikes", "peak memory (MiB)", "Δ val PPL vs baseline"], ablationRows,
      { class: "ablation", textColumns: [1, 2], file: `sweep-${id}-ablations.csv` }),
    results.architecture.length ? dataTable(`Architectures (Table 3 layout${target !== null ? `; to val loss ${target}` : ""})`,
      ["label", "architecture", "optimizer", "lr", "runs", "train time to target (s)", "inference tok/s", "peak memory (MiB)", "final PPL",
       "FLOPs to target vs MHA+AdamW", "seed pairs"], architectureRows,
      { class: "architecture", textColumns: [1, 2, 3, 4], file: `sweep-${id}-architectures.csv` }) : null,
    ratioRows.length ? dataTable("Token consumption ratio R_L(B) = T_AdamW / T_Muon (best lr of each side)",
      ["group", "batch tokens", "target loss", "R_L(B)", "95% CI", "seed pairs", "lr AdamW", "lr Muon", "how"],
      ratioRows, { class: "ratios", textColumns: [8], file: `sweep-${id}-ratios.csv` }) : null,
    lrRows.length ? dataTable("Learning-rate sensitivity (final val loss per lr)",
      ["row", "optimizer", "batch tokens", "lr", "final val loss", "runs", "selected"], lrRows,
      { class: "lr-sensitivity", textColumns: [1, 5, 6], file: `sweep-${id}-lr-sensitivity.csv` }) : null,
    results.notes.length ? el("section", { class: "notes" }, el("h2", {}, "How these numbers were made"),
      el("ul", {}, results.notes.map((n) => el("li", {}, n)))) : null,
    dataTable("Jobs", ["label", "job", "seed", "state", "attempt", "worker", "progress", "train loss", "val loss", "loss spikes", "message"],
      jobRows, { class: "jobs", textColumns: [3, 5, 10], file: `sweep-${id}-jobs.csv` }));
  if (s.state === "pending" || s.state === "running") setPoll(() => route(), 3000);
}

async function runPage(id) {
  const [r, named] = await Promise.all([api(`/api/runs/${id}?points=1000`), api(`/api/runs/${id}/metrics`)]);
  const j = r.job;
  const width = Math.min(900, app.clientWidth - 40);
  const curves = [{ id: j.id, label: j.label, seed: j.seed, batch_tokens: j.batch_tokens, train: r.train, val: r.val }];
  const summary = r.summary || {};
  const summaryRows = ["status", "steps", "final_train_loss", "final_val_loss", "final_val_ppl", "loss_spike_count",
    "grad_norm_spike_count", "peak_memory_bytes", "tokens_per_second", "achieved_gflops", "tokens", "train_s", "elapsed_s", "num_params"]
    .filter((k) => k in summary).map((k) => ({ cells: [k, summary[k]], nodes: { 1: String(human(k, summary[k])) } }));  // CSV keeps the raw value
  if (summary.dataset && summary.dataset.id !== undefined)
    summaryRows.push({ cells: ["dataset", `${summary.dataset.id ? summary.dataset.id.slice(0, 16) : "unrecorded"} · ${summary.dataset.source} · ` +
      `${Number(summary.dataset.train_tokens).toLocaleString()} train / ${Number(summary.dataset.val_tokens).toLocaleString()} val tokens`] });
  for (const t of summary.targets || [])
    summaryRows.push({ cells: [`to loss ${t.target}`, t.reached ? `step ${fmt(t.steps, 1)}, ${fmt(t.tokens, 0)} tokens, ${fmt(t.seconds, 1)} s of training, ${(t.flops || 0).toExponential(3)} FLOPs` : "not reached"] });
  const saved = view.group;
  view.group = false;
  const charts = el("div", { class: "charts" }, curveChart(curves, "train", width), curveChart(curves, "val", width));
  view.group = saved;
  show(
    el("h1", {}, `${j.label} · seed ${j.seed} `, el("span", { class: "state " + j.state }, j.state)),
    el("p", {}, el("a", { href: `#/sweep/${j.sweep_id}` }, "← sweep"), ` · job ${j.id} · attempt ${j.attempt} · worker ${j.worker_id || "–"} · step ${j.step}/${j.max_steps} `, j.message),
    charts,
    named.metrics.length ? metricPanel(id, named.metrics, width) : null,
    dataTable("Summary", ["field", "value"], summaryRows, { textColumns: [1], file: `run-${id}-summary.csv` }),
    dataTable("Eval points", ["step", "val loss", "val PPL"], r.val.step.map((s, i) => ({ cells: [s, fmt(r.val.loss[i], 4), fmt(Math.exp(r.val.loss[i]), 2)] })),
      { file: `run-${id}-evals.csv` }),
    el("h2", {}, "Config"), el("pre", {}, JSON.stringify(r.config, null, 2)));
  if (j.state === "PENDING" || j.state === "ASSIGNED" || j.state === "RUNNING") setPoll(() => route(), 3000);
}

async function workersPage() {
  const data = await api("/api/workers");
  const now = Date.now();
  const rows = data.workers.map((w) => ({
    cells: [w.id, w.state, w.backend, w.slots, (Array.isArray(w.devices) ? w.devices : []).map((d) => `${d.kind}: ${d.name}`).join(", "),
            w.jobs.join(", "), `${((now - w.last_heartbeat_ms) / 1000).toFixed(1)} s ago`],
    nodes: { 1: el("span", { class: "state " + w.state }, w.state),
             5: el("span", {}, w.jobs.map((id, i) => [i ? ", " : "", el("a", { href: `#/run/${id}` }, id)])) } }));
  show(el("h1", {}, "Workers"),
    dataTable("", ["worker", "state", "backend", "slots", "devices", "jobs", "last heartbeat"], rows, { textColumns: [1, 2, 4, 5], file: "workers.csv" }));
  setPoll(() => route(), 5000);
}

// ---------------------------------------------------------------- router

async function route() {
  clearTimeout(pollTimer);
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  try {
    if (parts[0] === "sweep" && parts[1]) await sweepPage(Number(parts[1]));
    else if (parts[0] === "run" && parts[1]) await runPage(Number(parts[1]));
    else if (parts[0] === "workers") await workersPage();
    else await sweepsPage(parts[0] === "sweeps" && parts[1] === "before" ? Number(parts[2]) : 0);
    statusLine.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    show(el("p", { class: "error" }, "Error: " + e.message));
    setPoll(() => route(), 5000);
  }
}

window.addEventListener("hashchange", route);
route();
