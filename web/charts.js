// Charts: uPlot panels in a grid that follow their panel's size, the same colour for a run (or a
// group of runs) on every panel and page, curves per run or per group (mean line with a min/max
// band), and every chart downloadable as PNG (what the screen shows) or SVG (vector, for papers).
"use strict";

const hashString = (s) => {
  let h = 2166136261;
  for (const c of String(s)) { h ^= c.codePointAt(0); h = Math.imul(h, 16777619); }
  return h >>> 0;
};
function hslHex(h, s, l) {
  const f = (n) => {
    const k = (n + h / 30) % 12, a = s * Math.min(l, 1 - l);
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1)))).toString(16).padStart(2, "0");
  };
  return "#" + f(0) + f(8) + f(4);
}
// A run's colour depends on its id alone and a group's on its name alone, so they are the same on
// every panel and page. Golden-angle hues: runs with neighbouring ids differ most.
function colorOf(key) {
  const n = typeof key === "number" ? key : hashString(key);
  return hslHex((n * 137.508) % 360, 0.72, [0.4, 0.5, 0.32][n % 3]);
}

// EMA smoothing (TensorBoard-style, debiased), skipping gaps.
function smooth(values, weight) {
  if (!weight) return values;
  let last = 0, n = 0;
  return values.map((v) => {
    if (v === null || v === undefined) return v;
    n++;
    last = last * weight + (1 - weight) * v;
    return last / (1 - Math.pow(weight, n));
  });
}

// Lines for uPlot from runs [{id, name, group, x, y, lo, hi, spikeX, spikeY}]: one line per run in
// the run's colour, or (grouped) per group a mean line over its runs with a min/max band. A run
// that carries lo/hi (each downsampled bucket's min and max, which a mean line hides: a spike
// inside a bucket) gets them as a faint band of its own, for up to kMaxRunBands runs (more bands
// than that only cover the lines). Spikes become a points-only series, so they are never hidden
// by smoothing or grouping.
// meta[i] says what series i is (line, band edge or points) for the legend and the SVG export.
const kMaxRunBands = 20;
function lineSeries(runs, grouped, smoothing, xLabel) {
  const tables = [], series = [{ label: xLabel }], meta = [null], bands = [];
  if (!grouped) {
    const withBands = runs.filter((r) => r.x.length && r.lo && r.hi).length <= kMaxRunBands;
    for (const r of runs) {
      if (!r.x.length) continue;
      const stroke = colorOf(r.id);
      if (withBands && r.lo && r.hi) {
        const base = series.length;
        tables.push([r.x, r.hi], [r.x, r.lo]);
        series.push({ label: `${r.name} bucket max`, stroke, width: 0 }, { label: `${r.name} bucket min`, stroke, width: 0 });
        meta.push({ kind: "edge", stroke }, { kind: "edge", stroke });
        bands.push({ series: [base, base + 1], fill: stroke + "22" });
      }
      tables.push([r.x, smooth(r.y, smoothing)]);
      series.push({ label: r.name, stroke, width: 1.5 });
      meta.push({ kind: "line", stroke, label: r.name });
    }
  } else {
    const groups = new Map();
    for (const r of runs) {
      if (!r.x.length) continue;
      if (!groups.has(r.group)) groups.set(r.group, []);
      groups.get(r.group).push([r.x, smooth(r.y, smoothing)]);
    }
    for (const [group, members] of groups) {
      const joined = uPlot.join(members);
      const xs = joined[0], lo = [], hi = [], mean = [];
      for (let i = 0; i < xs.length; i++) {
        let sum = 0, n = 0, min = Infinity, max = -Infinity;
        for (let m = 1; m < joined.length; m++) {
          const v = joined[m][i];
          if (v === null || v === undefined || !isFinite(v)) continue;
          sum += v; n++; min = Math.min(min, v); max = Math.max(max, v);
        }
        mean.push(n ? sum / n : null);
        lo.push(n ? min : null);
        hi.push(n ? max : null);
      }
      const stroke = colorOf(group);
      const base = series.length;
      tables.push([xs, hi], [xs, lo], [xs, mean]);
      series.push({ label: `${group} max`, stroke, width: 0 }, { label: `${group} min`, stroke, width: 0 },
                  { label: `${group} (mean of ${members.length})`, stroke, width: 2 });
      meta.push({ kind: "edge", stroke }, { kind: "edge", stroke }, { kind: "line", stroke, label: `${group} (mean of ${members.length})` });
      bands.push({ series: [base, base + 1], fill: stroke + "22" });
    }
  }
  const highest = new Map();  // one spike marker per x: the highest spiking value there
  for (const r of runs)
    (r.spikeX || []).forEach((x, i) => highest.set(x, Math.max(highest.get(x) ?? -Infinity, r.spikeY[i])));
  if (highest.size) {
    const xs = [...highest.keys()].sort((a, b) => a - b);
    tables.push([xs, xs.map((x) => highest.get(x))]);
    series.push({ label: "loss spikes", stroke: "#cf222e", paths: () => null, points: { show: true, size: 9, fill: "#cf222e" } });
    meta.push({ kind: "points", stroke: "#cf222e", label: "loss spikes" });
  }
  return { data: tables.length ? uPlot.join(tables) : null, series, meta, bands };
}

// A chart in a grid panel: a title bar with PNG and SVG downloads and a full-width toggle, the
// plot (drag its lower edge for height; width follows the grid), and the legend below. Legends of
// more than 40 lines are left out: the runs table shows each run's colour instead. The panel's
// `drawn` promise resolves at its first draw (the page's time-to-first-draw figure).
// spec: {kind, metric?, title, file, opts (uPlot options without size), data, meta, svgMarks?}
function chartPanel(spec) {
  const body = el("div", { class: "chart-body" });
  const legendBox = el("div", { class: "legend" });
  const readout = el("div", { class: "readout" });
  let firstDraw;
  const drawn = new Promise((resolve) => { firstDraw = resolve; });
  const lines = spec.meta.filter((m) => m && m.kind !== "edge").length;
  // Tick labels of a log axis as the exports write them: uPlot's own round small values (an lr
  // axis from 1e-4) to "0".
  const scales = spec.opts.scales || {};
  const logAxis = (a, i) => (scales[a.scale || (i === 0 ? "x" : "y")] || {}).distr === 3;
  const axes = (spec.opts.axes || [{}, {}]).map((a, i) =>
    (logAxis(a, i) ? Object.assign({ values: (u, splits) => splits.map((v) => (v === null ? "" : tickText(v))) }, a) : a));
  const opts = Object.assign({}, spec.opts, { axes }, {
    width: Math.max(300, Math.floor((app.clientWidth || 1200) / 2) - 40), height: 300,
    legend: { show: lines <= 40, live: true },
    hooks: Object.assign({}, spec.opts.hooks, {
      draw: [...((spec.opts.hooks || {}).draw || []), () => firstDraw()],
    }),
  });
  const plot = new uPlot(opts, spec.data, body);
  const legend = plot.root.querySelector(".u-legend");
  if (legend) {
    legendBox.append(legend);  // uPlot keeps updating the moved legend's cells
    legend.querySelectorAll(".u-series").forEach((row, i) => { if (spec.meta[i] && spec.meta[i].kind === "edge") row.style.display = "none"; });
  } else {
    legendBox.append(el("p", { class: "note" }, `${lines} lines: each run's colour is shown in the runs table.`));
  }
  new ResizeObserver(() => {
    const width = body.clientWidth, height = body.clientHeight;
    if (width > 0 && height > 0 && (width !== plot.width || height !== plot.height)) plot.setSize({ width, height });
  }).observe(body);
  const panel = el("div", Object.assign({ class: "chart panel", "data-kind": spec.kind }, spec.metric ? { "data-metric": spec.metric } : {}));
  const button = (text, title, onclick) => el("button", { class: text.toLowerCase(), title, onclick }, text);
  panel.append(
    el("div", { class: "panel-head" }, el("span", { class: "panel-title" }, spec.title),
      button("PNG", "download this chart as PNG", () => plotPng(plot, spec)),
      button("SVG", "download this chart as SVG", () => download(spec.file + ".svg", new Blob([plotSvg(plot, spec)], { type: "image/svg+xml" }))),
      button("Wide", "use the whole width", () => panel.classList.toggle("wide")),
      spec.onClose ? button("Close", "remove this panel", spec.onClose) : null),
    body, readout, legendBox);
  panel.drawn = drawn;
  panel.plot = plot;
  return panel;
}

// The legend as drawn into exports: entries left to right, wrapping at the width.
function exportLegend(spec, plot, width) {
  const items = [];
  let x = 8, y = 0;
  spec.meta.forEach((m, i) => {
    if (!m || m.kind === "edge" || !plot.series[i].show) return;
    const w = 26 + 6.5 * m.label.length;
    if (x + w > width && x > 8) { x = 8; y += 18; }
    items.push({ x, y, m });
    x += w + 14;
  });
  return { items, height: items.length ? y + 26 : 0 };
}

// PNG: the title, the plot as drawn on screen (at the screen's pixel ratio) and the legend.
function plotPng(plot, spec) {
  const dpr = devicePixelRatio, source = plot.ctx.canvas;
  const legend = exportLegend(spec, plot, plot.width);
  const canvas = document.createElement("canvas");
  canvas.width = source.width;
  canvas.height = source.height + (28 + legend.height) * dpr;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.scale(dpr, dpr);
  ctx.fillStyle = "#1b1f24";
  ctx.font = "600 14px system-ui, sans-serif";
  ctx.fillText(spec.title, 8, 18);
  ctx.drawImage(source, 0, 28, source.width / dpr, source.height / dpr);
  ctx.font = "12px system-ui, sans-serif";
  for (const { x, y, m } of legend.items) {
    const top = 28 + plot.height + y + 6;
    ctx.fillStyle = m.stroke;
    ctx.fillRect(x, top + 4, 18, 4);
    ctx.fillStyle = "#1b1f24";
    ctx.fillText(m.label, x + 24, top + 10);
  }
  canvas.toBlob((blob) => download(spec.file + ".png", blob), "image/png");
}

// Tick values a reader can read: 1, 2 or 5 times a power of ten (linear), powers of ten (log).
function niceTicks(min, max, log) {
  if (!(isFinite(min) && isFinite(max)) || min === max) return isFinite(min) ? [min] : [];
  if (log && min > 0) {
    const ticks = [];
    for (let e = Math.ceil(Math.log10(min) - 1e-9); e <= Math.floor(Math.log10(max) + 1e-9); e++) ticks.push(Math.pow(10, e));
    if (ticks.length >= 2) return ticks;
  }
  const rough = (max - min) / 5, power = Math.pow(10, Math.floor(Math.log10(rough)));
  const step = power * (rough / power >= 5 ? 5 : rough / power >= 2 ? 2 : 1);
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return ticks;
}
const tickText = (v) => (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3) ? v.toExponential(1) : String(Number(v.toPrecision(4))));
const xmlText = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// SVG: the same plot as vectors (lines, bands, points, axes with ticks, title, legend), drawn
// from uPlot's data and scales, so it matches the screen.
function plotSvg(plot, spec) {
  const dpr = devicePixelRatio, bbox = plot.bbox;
  const left = bbox.left / dpr, top = 28 + bbox.top / dpr, pw = bbox.width / dpr, ph = bbox.height / dpr;
  const X = (v) => left + plot.valToPos(v, "x");
  const Y = (v, scale = "y") => top + plot.valToPos(v, scale);
  const legend = exportLegend(spec, plot, plot.width);
  const width = plot.width, height = 28 + plot.height + legend.height;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif">`,
               `<rect width="100%" height="100%" fill="#fff"/>`,
               `<text x="8" y="18" font-size="14" font-weight="600">${xmlText(spec.title)}</text>`];
  const xs = plot.data[0];
  const finite = (v) => v !== null && v !== undefined && isFinite(v);
  for (const band of plot.bands || []) {
    const [a, b] = band.series;
    if (!plot.series[a].show || !plot.series[b].show) continue;
    const upper = [], lower = [];
    xs.forEach((x, i) => { if (finite(plot.data[a][i]) && finite(plot.data[b][i])) { upper.push([X(x), Y(plot.data[a][i])]); lower.push([X(x), Y(plot.data[b][i])]); } });
    if (upper.length < 2) continue;
    const points = [...upper, ...lower.reverse()].map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
    out.push(`<polygon points="${points}" fill="${spec.meta[a].stroke}" fill-opacity="0.13"/>`);  // uPlot turns band.fill into a function
  }
  out.push(`<clipPath id="plot"><rect x="${left}" y="${top}" width="${pw}" height="${ph}"/></clipPath><g clip-path="url(#plot)">`);
  spec.meta.forEach((m, i) => {
    if (!m || m.kind === "edge" || !plot.series[i].show) return;
    const ys = plot.data[i], scale = plot.series[i].scale || "y";
    if (m.kind === "points") {
      xs.forEach((x, k) => { if (finite(ys[k])) out.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(ys[k], scale).toFixed(1)}" r="4" fill="${m.stroke}"/>`); });
      return;
    }
    let d = "", pen = "M";
    xs.forEach((x, k) => {
      if (!finite(ys[k])) { if (!plot.series[i].spanGaps) pen = "M"; return; }
      d += `${pen}${X(x).toFixed(1)} ${Y(ys[k], scale).toFixed(1)}`;
      pen = "L";
    });
    if (d) out.push(`<path d="${d}" fill="none" stroke="${m.stroke}" stroke-width="${plot.series[i].width || 1.5}" stroke-linejoin="round"/>`);
    if (m.points) xs.forEach((x, k) => { if (finite(ys[k])) out.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(ys[k], scale).toFixed(1)}" r="3" fill="${m.stroke}"/>`); });
  });
  if (spec.svgMarks) out.push(...spec.svgMarks(X, Y));
  out.push(`</g><rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#8c959f"/>`);
  const xScale = plot.scales.x, yScale = plot.scales.y;
  for (const t of niceTicks(xScale.min, xScale.max, xScale.distr === 3)) {
    const x = X(t);
    out.push(`<line x1="${x}" x2="${x}" y1="${top + ph}" y2="${top + ph + 5}" stroke="#8c959f"/>`,
             `<text x="${x}" y="${top + ph + 18}" font-size="11" text-anchor="middle">${tickText(t)}</text>`);
  }
  for (const t of niceTicks(yScale.min, yScale.max, yScale.distr === 3)) {
    const y = Y(t);
    out.push(`<line x1="${left - 5}" x2="${left}" y1="${y}" y2="${y}" stroke="#8c959f"/>`,
             `<text x="${left - 8}" y="${y + 4}" font-size="11" text-anchor="end">${tickText(t)}</text>`);
  }
  const axes = spec.opts.axes || [];
  if (axes[0] && axes[0].label) out.push(`<text x="${left + pw / 2}" y="${top + ph + 36}" font-size="12" text-anchor="middle">${xmlText(axes[0].label)}</text>`);
  if (axes[1] && axes[1].label) out.push(`<text transform="translate(14 ${top + ph / 2}) rotate(-90)" font-size="12" text-anchor="middle">${xmlText(axes[1].label)}</text>`);
  for (const { x, y, m } of legend.items) {
    const row = 28 + plot.height + y + 6;
    out.push(`<rect x="${x}" y="${row + 4}" width="18" height="4" fill="${m.stroke}"/>`,
             `<text x="${x + 24}" y="${row + 10}" font-size="12">${xmlText(m.label)}</text>`);
  }
  out.push("</svg>");
  return out.join("\n");
}

// The compute–time plane of one target (section 3.2; docs/statistics.md): per optimizer, each
// batch size's time to target against its devices, both axes logarithmic; a batch size whose
// seeds did not all reach the target has no point. frontier: a ParetoFrontier of the results.
function paretoPanel(frontier, title, file) {
  const reached = frontier.points.filter((p) => p.reached);
  if (!reached.length) return el("div", { class: "chart panel empty", "data-kind": "pareto" }, el("p", {}, `${title}: no batch size reaches the target with every seed.`));
  const xs = [...new Set(reached.map((p) => p.devices))].sort((a, b) => a - b);
  const names = { adamw: "AdamW", muon: "Muon" };
  const optimizers = [...new Set(reached.map((p) => p.optimizer))];
  const column = (opt) => xs.map((x) => { const p = reached.find((q) => q.optimizer === opt && q.devices === x); return p ? p.seconds : null; });
  const meta = [null, ...optimizers.map((o) => ({ kind: "line", stroke: colorOf(o), label: names[o] || o, points: true }))];
  const series = [{}, ...optimizers.map((o, i) => ({ label: meta[i + 1].label, stroke: meta[i + 1].stroke, width: 2, spanGaps: true, points: { show: true, size: 7 } }))];
  return chartPanel({ kind: "pareto", title, file, data: [xs, ...optimizers.map(column)], meta,
    opts: { series, scales: { x: { time: false, distr: 3 }, y: { distr: 3 } },
            axes: [{ label: "devices (B / one device's batch)" }, { label: "time to target (s)" }] } });
}

// A budget ladder's scaling fits (docs/statistics.md, "Scaling fits"): per row, the fitted law
// L(D) = E + A·D^(−α) drawn as a line over the budgets and the annealed final losses it was fitted
// to (the mean over seeds at each budget) as points; and beside it the residuals, each budget's
// mean loss minus the law there, so that curvature the law misses shows. fits: the results'
// scaling_fits, with their observations.
function scalingPanels(fits, title, file) {
  const rows = fits.filter((f) => (f.observations || []).length);
  if (!rows.length) return [];
  const budgets = [...new Set(rows.flatMap((f) => f.observations.map((o) => Number(o.tokens))))].sort((a, b) => a - b);
  const lo = Math.log(budgets[0]), hi = Math.log(budgets[budgets.length - 1]);
  const grid = Array.from({ length: 41 }, (_, i) => Math.exp(lo + ((hi - lo) * i) / 40));
  const xs = [...new Set([...budgets, ...grid])].sort((a, b) => a - b);
  const law = (f, d) => f.e + f.a * Math.pow(d, -f.alpha);
  const meanAt = (f) => {  // budget -> mean observed loss over the row's seeds
    const sums = new Map();
    for (const o of f.observations) {
      const s = sums.get(Number(o.tokens)) || [0, 0];
      sums.set(Number(o.tokens), [s[0] + o.loss, s[1] + 1]);
    }
    return new Map([...sums].map(([d, [sum, n]]) => [d, sum / n]));
  };
  const name = (f) => `${f.optimizer === "muon" ? "Muon" : "AdamW"} B=${Number(f.batch_tokens)}`;
  const fitSeries = [{}], fitMeta = [null], fitData = [xs], resSeries = [{}], resMeta = [null], resData = [budgets];
  for (const f of rows) {
    const stroke = colorOf(f.group), means = meanAt(f);
    fitSeries.push({ label: `${name(f)}: fit`, stroke, width: 2, points: { show: false } });
    fitMeta.push({ kind: "line", stroke, label: `${name(f)}: fit` });
    fitData.push(xs.map((d) => law(f, d)));
    fitSeries.push({ label: `${name(f)}: mean of ${f.seeds} seeds`, stroke, paths: () => null, points: { show: true, size: 7, fill: stroke } });
    fitMeta.push({ kind: "points", stroke, label: `${name(f)}: mean of ${f.seeds} seeds` });
    fitData.push(xs.map((d) => (means.has(d) ? means.get(d) : null)));
    resSeries.push({ label: name(f), stroke, width: 1, points: { show: true, size: 6 } });
    resMeta.push({ kind: "line", stroke, label: name(f), points: true });
    resData.push(budgets.map((d) => (means.has(d) ? means.get(d) - law(f, d) : null)));
  }
  const logX = { x: { time: false, distr: 3 } };
  return [
    chartPanel({ kind: "scaling", title, file, data: fitData, meta: fitMeta,
      opts: { series: fitSeries, scales: logX, axes: [{ label: "budget D (tokens)" }, { label: "annealed final val loss" }] } }),
    chartPanel({ kind: "scaling-residuals", title: "Residuals: mean annealed loss − the fitted law", file: file + "-residuals",
      data: resData, meta: resMeta,
      opts: { series: resSeries, scales: logX, axes: [{ label: "budget D (tokens)" }, { label: "loss − fit" }] } }),
  ];
}

// Curves of many runs over steps or tokens: runs [{id, name, group, batch_tokens, step, value,
// spikeSteps?, spikeValues?}].
function curvePanel({ kind, metric, title, yLabel, runs, view, file, onClose }) {
  const xOf = (r, steps) => (view.x === "tokens" ? steps.map((s) => s * r.batch_tokens) : steps);
  const lines = lineSeries(runs.map((r) => ({
    id: r.id, name: r.name, group: r.group, x: xOf(r, r.step), y: r.value, lo: r.lo, hi: r.hi,
    spikeX: r.spikeSteps ? xOf(r, r.spikeSteps) : [], spikeY: r.spikeValues || [] })), view.grouped, view.smoothing, view.x);
  if (!lines.data) return el("div", { class: "chart panel empty", "data-kind": kind }, el("p", {}, `No ${title} points yet.`));
  return chartPanel({ kind, metric, title, file, data: lines.data, meta: lines.meta, onClose,
    opts: { series: lines.series, bands: lines.bands, scales: { x: { time: false, distr: view.log ? 3 : 1 } },
            axes: [{ label: view.x }, { label: yLabel }] } });
}
