// Which settings matter, on the sweep page: the importance table (functional ANOVA main effects,
// server/results/importance.h) and a parallel-coordinates plot of the varied settings against
// final val loss, with brushing: drag along an axis to keep the runs whose value lies in the
// dragged range (on every brushed axis at once); click an axis to clear its brush. The kept
// runs are drawn in colour, the others in grey, and counted under the plot.
"use strict";

function importanceSection(importance, id) {
  if (!importance || !importance.settings || !importance.settings.length) return null;
  const rows = importance.settings.map((s) => ({
    cells: [s.path, fmt(s.share, 3), s.levels.map((l) => `${l.value}: ${fmt(l.mean_final_val_loss, 4)} (${l.runs})`).join("; ")] }));
  rows.push({ cells: [importance.balanced ? "interactions and seed noise" : "the rest (not balanced: a ranking only)", fmt(importance.residual_share, 3), ""] });
  return [
    dataTable(`Which settings matter: share of the variance of final val loss (functional ANOVA main effects over ${importance.runs_used} runs)`,
      ["setting", "share of variance", "final val loss by value (runs)"], rows,
      { class: "importance", textColumns: [0, 2], file: `sweep-${id}-importance` }),
    el("p", { class: "importance-note" }, importance.note),
  ];
}

// runs: the sweep's jobs (JobInfo with settings); paths: the varied settings to draw, in order.
function parallelCoordinatesPanel(runs, paths, id) {
  const used = runs.filter((r) => r.state === "SUCCEEDED" && Number.isFinite(r.last_val_loss));
  if (used.length < 2 || !paths.length) return null;
  const valueText = (v) => (v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));
  // Each setting's axis: its values in order (numbers by value), evenly spaced.
  // A path "a + b" is settings that always varied together (importance.h): their values joined.
  const valueOf = (r, path) => path.split(" + ").map((p) => valueText(r.settings ? r.settings[p] : null)).join(" + ");
  const axes = paths.map((path) => {
    const values = [...new Set(used.map((r) => valueOf(r, path)))];
    const numeric = values.every((v) => v !== "–" && Number.isFinite(Number(v)));
    values.sort(numeric ? (a, b) => Number(a) - Number(b) : undefined);
    return { label: path, pos: (r) => { const i = values.indexOf(valueOf(r, path)); return values.length > 1 ? i / (values.length - 1) : 0.5; },
             ticks: values.map((v, i) => [values.length > 1 ? i / (values.length - 1) : 0.5, numeric ? tickText(Number(v)) : v]) };
  });
  const losses = used.map((r) => r.last_val_loss), lo = Math.min(...losses), hi = Math.max(...losses);
  const span = hi > lo ? hi - lo : 1;
  axes.push({ label: "final val loss", pos: (r) => (r.last_val_loss - lo) / span,
              ticks: niceTicks(lo, hi, false).map((v) => [(v - lo) / span, tickText(v)]) });
  const brushes = new Map();  // axis index -> [low, high] in axis units (0..1)
  const canvas = el("canvas", { class: "parcoords-canvas" });
  const caption = el("p", { class: "parcoords-caption" });
  const pad = { left: 40, right: 40, top: 28, bottom: 24 };
  const layout = () => {
    const w = canvas.clientWidth || 800, h = canvas.clientHeight || 320;
    const x = (i) => pad.left + (axes.length > 1 ? (i * (w - pad.left - pad.right)) / (axes.length - 1) : 0);
    const y = (u) => h - pad.bottom - u * (h - pad.top - pad.bottom);
    return { w, h, x, y };
  };
  const kept = (r) => [...brushes].every(([i, [a, b]]) => { const u = axes[i].pos(r); return u >= a - 1e-9 && u <= b + 1e-9; });
  const draw = () => {
    const { w, h, x, y } = layout(), dpr = devicePixelRatio;
    canvas.width = w * dpr;
    canvas.height = h * dpr;
    const ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, w, h);
    const inside = used.filter(kept);
    const line = (r, stroke, width) => {
      ctx.strokeStyle = stroke;
      ctx.lineWidth = width;
      ctx.beginPath();
      axes.forEach((a, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(i), y(a.pos(r))));
      ctx.stroke();
    };
    for (const r of used) if (!kept(r)) line(r, "#d0d0d0", 1);
    for (const r of inside) line(r, colorOf(r.job_id), 1.5);
    ctx.fillStyle = "#222";
    ctx.font = "12px sans-serif";
    axes.forEach((a, i) => {
      ctx.strokeStyle = "#444";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x(i), y(0));
      ctx.lineTo(x(i), y(1));
      ctx.stroke();
      ctx.textAlign = i === 0 ? "left" : i === axes.length - 1 ? "right" : "center";
      ctx.fillText(a.label, x(i), 14);
      ctx.textAlign = "left";
      for (const [u, text] of a.ticks) ctx.fillText(text, x(i) + 4, y(u) + 4);
      if (brushes.has(i)) {
        const [b0, b1] = brushes.get(i);
        ctx.fillStyle = "rgba(30, 100, 200, 0.25)";
        ctx.fillRect(x(i) - 6, y(b1), 12, y(b0) - y(b1));
        ctx.fillStyle = "#222";
      }
    });
    caption.textContent = `${inside.length} of ${used.length} finished runs inside the brushes` +
      (brushes.size ? "" : " (drag along an axis to brush; click an axis to clear it)");
    canvas.dataset.kept = String(inside.length);
  };
  // Brushing: the axis nearest the press (within 15 px), dragged from press to release.
  let drag = null;
  const axisAt = (px) => { const { x } = layout(); let best = -1; axes.forEach((_, i) => { if (Math.abs(x(i) - px) <= 15 && (best < 0 || Math.abs(x(i) - px) < Math.abs(x(best) - px))) best = i; }); return best; };
  const unitAt = (py) => { const { y } = layout(); return Math.max(0, Math.min(1, (y(0) - py) / (y(0) - y(1)))); };
  canvas.addEventListener("mousedown", (e) => {
    const i = axisAt(e.offsetX);
    if (i >= 0) drag = { i, from: unitAt(e.offsetY), moved: false };
  });
  canvas.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const to = unitAt(e.offsetY);
    drag.moved = drag.moved || Math.abs(to - drag.from) > 0.01;
    if (drag.moved) { brushes.set(drag.i, [Math.min(drag.from, to), Math.max(drag.from, to)]); draw(); }
  });
  window.addEventListener("mouseup", () => {
    if (drag && !drag.moved) { brushes.delete(drag.i); draw(); }
    drag = null;
  });
  const panel = el("div", { class: "panel parcoords", "data-kind": "parcoords" },
    el("h3", {}, "Parallel coordinates: the varied settings against final val loss"), canvas, caption);
  new ResizeObserver(draw).observe(canvas);
  return panel;
}
