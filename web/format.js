// Shared by every page: DOM building and numbers for people. Every string from the API is put in
// the page through el() as text, never as HTML, so a run name holding markup shows as text.
"use strict";

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

// Saves text as a file the browser downloads.
function download(name, blob) {
  const url = URL.createObjectURL(blob);
  el("a", { href: url, download: name }).click();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const isMissing = (v) => v === null || v === undefined || (typeof v === "number" && Number.isNaN(v));
const fmt = (v, digits = 3) => (isMissing(v) ? "–" : Number(v).toFixed(digits));
// Counts (steps, tokens, jobs) as integers with thousands separators.
const count = (v) => (isMissing(v) ? "–" : Math.round(Number(v)).toLocaleString("en-US"));

// Results come as the GetResultsResponse message in JSON (int64 as strings, enums by name); these
// render them in the same words as `sweepctl results`.
// "41 ± 3", and "(2/3 reached)" when a value averages over a subset of the row's runs.
// `digits`: decimals, or a function that writes a number (large counts: sig3).
const stat = (s, digits, word = "runs") => {
  if (!s || s.n === 0) return s && s.of > 0 ? `– (0/${s.of} ${word})` : "–";
  const num = typeof digits === "function" ? digits : (v) => fmt(v, digits);
  const text = s.n === 1 ? num(s.mean) : `${num(s.mean)} ± ${num(s.std)}`;
  return s.n < s.of ? `${text} (${s.n}/${s.of} ${word})` : text;
};
const sig3 = (v) => (isMissing(v) ? "–" : Number(v).toPrecision(3));
const lrNumber = (v) => Number(v).toPrecision(3).replace(/\.?0+(e|$)/, "$1");
const outcomeText = (c) => [`${c.succeeded}/${c.total} ok`, c.diverged ? `${c.diverged} diverged` : null,
  c.failed ? `${c.failed} failed` : null, c.cancelled ? `${c.cancelled} cancelled` : null,
  c.stopped ? `${c.stopped} stopped early` : null,
  c.unfinished ? `${c.unfinished} unfinished` : null].filter(Boolean).join(", ");
// Where a tuned row's search stands (docs/statistics.md, "Bracketing").
const bracketText = (c) => c.provisional ? "tuning"
  : c.extensions_exhausted ? "at edge: not bracketed"
  : c.at_grid_edge ? "at edge: extending"
  : c.within_noise ? "within noise: not bracketed"
  : c.bracketed ? "bracketed" : "checking its neighbours";
const lrText = (c) => {
  if (!c.decided) return `– (none of ${c.candidates} finished)`;
  if (c.tuned) {  // chosen by the coordinator's search (an adaptive sweep): say how it stands
    const parts = [`best of ${c.candidates} tuned`];
    if (c.extensions) parts.push(`${c.extensions} extension${c.extensions === 1 ? "" : "s"}`);
    parts.push(bracketText(c));
    // A tuned weight decay (> 0 by tune_spec.h) makes the choice a point (lr, weight decay).
    const wd = c.weight_decay > 0 ? `, weight decay ${lrNumber(c.weight_decay)}` : "";
    return `${lrNumber(c.lr)}${wd} (${parts.join(", ")})`;
  }
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
  if (["steps", "tokens", "num_params", "tokens_per_second"].includes(field) || field.endsWith("_count")) return count(v);
  return v.toPrecision(6);
}

// A config value as a cell: numbers as they are written in a sweep file (3e-3, 1024).
const settingText = (v) => (isMissing(v) ? "–" : typeof v === "number" && !Number.isInteger(v) ? lrNumber(v) : String(v));

function progressBar(step, max) {
  const pct = max > 0 ? Math.min(100, (100 * step) / max) : 0;
  const inner = el("span");
  inner.style.width = pct + "%";
  return el("span", { class: "bar", title: `${step}/${max}` }, inner);
}

// Why jobs wait on a provisioner its failed allocations hold back (ProvisioningSetback), in the
// words sweepctl uses (cli/sweepctl/status_text.cpp setback_text).
function setbackText(s, now = Date.now()) {
  const clock = (ms) => new Date(Number(ms)).toTimeString().slice(0, 8);
  const wait = Math.max(0, Math.ceil((Number(s.retry_at_unix_ms) - now) / 1000));
  return `jobs wait: allocation ${s.allocation} failed at ${clock(s.failed_unix_ms)} ` +
    `(${s.failures_in_a_row} in a row before any worker registered): ${s.cause}` +
    (wait > 0 ? `; next request at ${clock(s.retry_at_unix_ms)} (in ${wait} s)` : `; requests resumed at ${clock(s.retry_at_unix_ms)}`) +
    " (the Workers page shows each allocation's output)";
}
