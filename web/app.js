// The dashboard: a read-only view of the coordinator's /api/ (pages, router, view state). Every
// answer is a message of proto/orchestrator.proto as JSON (proto field names, enums by name), so
// a field has the name it has in sweepctl and the gRPC API. When the coordinator wants a token, the
// page asks for it once per browser session and keeps it in sessionStorage (never in a URL or a
// cookie); the header says whose token it is (/api/whoami). The page only reads: no role sees an
// action button (changes go through sweepctl, where the coordinator checks the role).
// A page's view (x axis, grouping, filter, metric panels) lives in the URL's hash query, so a
// copied URL shows the same view; the runs picked for comparing live in the compare URL.
"use strict";

const app = document.getElementById("app");
const statusLine = document.getElementById("status");
let whoami = null;  // {user, role} of this session's token, asked once
let pollTimer = null;

// An /api/ answer: JSON, or with `binary` the bytes (errors are JSON either way).
async function api(path, binary = false) {
  const token = sessionStorage.getItem("sweepToken");
  const res = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {} });
  if (res.status === 401) {
    const entered = window.prompt(token ? "That token was refused; this coordinator's access token:"
                                        : "This coordinator needs its access token:");
    if (entered === null) throw new Error("no token given");
    sessionStorage.setItem("sweepToken", entered.trim());
    return api(path, binary);
  }
  if (!res.ok) {
    const body = await res.json();
    throw new Error(body.error || res.statusText);
  }
  return binary ? res.arrayBuffer() : res.json();
}

// Replaces the page; absent parts (null) are skipped rather than shown as the text "null".
function show(...nodes) {
  app.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
}

function setPoll(fn, ms) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(fn, ms);
}

// ---------------------------------------------------------------- view state (in the URL)

function currentRoute() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  return { parts: path.split("/"), params: new URLSearchParams(query || "") };
}

// The x axis defaults to tokens when the runs' batch sizes differ (steps would compare unequal
// amounts of data; tokens is the paper's axis), else to steps; the URL keeps only a departure.
const defaultXOf = (runs) => (new Set(runs.map((r) => Number(r.batch_tokens))).size > 1 ? "tokens" : "step");

function viewOf(params, defaultGroup, defaultX = "step") {
  return {
    x: !params.has("x") ? defaultX : params.get("x") === "tokens" ? "tokens" : "step",
    defaultX,
    log: params.get("log") === "1",
    smoothing: Math.min(0.99, Math.max(0, Number(params.get("smooth")) || 0)),
    // "" = every run (in the URL: group=none, so that it differs from the page's default).
    group: !params.has("group") ? defaultGroup : params.get("group") === "none" ? "" : params.get("group"),
    filter: params.get("filter") || "",
    metrics: (params.get("metrics") || "").split(",").filter(Boolean),
  };
}

// Writes changes into the URL without reloading data, then redraws from what was fetched.
let redraw = null;
function setView(changes) {
  const { parts, params } = currentRoute();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === "" || v === false || (Array.isArray(v) && !v.length)) params.delete(k);
    else params.set(k, Array.isArray(v) ? v.join(",") : v === true ? "1" : String(v));
  }
  const query = params.toString();
  history.replaceState(null, "", "#/" + parts.join("/") + (query ? "?" + query : ""));
  if (redraw) redraw();
}

// ---------------------------------------------------------------- runs: filter, group, select

// A sweep's or worker's state as people read it: the enum name without its prefix, lower case
// (SWEEP_RUNNING -> running, WORKER_LOST -> lost). Job states show as they are (RUNNING).
const stateText = (name) => name.replace(/^[A-Z]+_/, "").toLowerCase();

// The fields a run (a JobInfo, plus sweep_name on the compare page) can be filtered and grouped
// by: its own, then its sweep's varied settings (JobInfo.settings).
const RUN_FIELDS = ["label", "state", "seed", "sweep", "job_id"];
function fieldOf(run, key) {
  if (key === "sweep") return run.sweep_name ?? run.sweep_id;
  if (RUN_FIELDS.includes(key)) return run[key];
  return run.settings ? run.settings[key] : undefined;
}

// A filter is space-separated terms that must all hold: key=value, key!=value, key>number,
// key<number, key~text (contains), or a bare word found in the label or sweep name (any case).
// Values may be quoted ("a b"). Returns {test, error}; an unknown key is an error that lists the
// known ones.
function parseFilter(text, keys) {
  const terms = [];
  for (const token of text.match(/(?:[^\s"]+|"[^"]*")+/g) || []) {
    const m = /^([\w.\/-]+?)(!=|=|>|<|~)(.*)$/.exec(token);
    if (!m) {
      const word = token.replace(/"/g, "").toLowerCase();
      terms.push((r) => String(r.label).toLowerCase().includes(word) || String(r.sweep_name || "").toLowerCase().includes(word));
      continue;
    }
    const [, key, op, raw] = m;
    if (!keys.includes(key)) return { test: () => true, error: `no field "${key}" to filter by; fields: ${keys.join(", ")}` };
    const value = raw.replace(/^"|"$/g, "");
    const same = (v) => (v !== undefined && v !== null && (String(v) === value || (value !== "" && Number(v) === Number(value))));
    terms.push({
      "=": (r) => same(fieldOf(r, key)),
      "!=": (r) => !same(fieldOf(r, key)),
      ">": (r) => Number(fieldOf(r, key)) > Number(value),
      "<": (r) => Number(fieldOf(r, key)) < Number(value),
      "~": (r) => String(fieldOf(r, key) ?? "").toLowerCase().includes(value.toLowerCase()),
    }[op]);
  }
  return { test: (r) => terms.every((t) => t(r)), error: null };
}

const groupName = (run, key) => (key === "label" ? run.label : `${key}=${settingText(fieldOf(run, key))}`);

// The runs picked for comparing, kept across pages until the compare view takes them.
const picked = {
  get: () => new Set(JSON.parse(localStorage.getItem("compareRuns") || "[]")),
  set(ids) {
    localStorage.setItem("compareRuns", JSON.stringify([...ids]));
    document.getElementById("compare-link").textContent = `Compare (${ids.size})`;
    for (const link of document.querySelectorAll("#compare-link, a.compare-picked")) link.href = "#/compare?runs=" + [...ids].join(",");
  },
};

// Controls shared by the sweep and compare pages.
function viewControls(view, keys, metricNames) {
  const control = (label, input) => el("label", {}, label, " ", input);
  const select = (name, value, options, onchange) => {
    const node = el("select", { name, onchange: (e) => onchange(e.target.value) },
      options.map(([v, text]) => { const o = el("option", { value: v }, text); if (v === value) o.selected = true; return o; }));
    return node;
  };
  const filter = el("input", { type: "search", name: "filter", size: "40", value: view.filter,
                               placeholder: "optimizer.name=muon training.batch_tokens>256 label~wd" });
  filter.addEventListener("change", () => setView({ filter: filter.value.trim() }));
  const addMetric = select("add-metric", "", [["", metricNames.length ? "add a metric panel…" : "no named metrics"],
    ...metricNames.filter((n) => !view.metrics.includes(n)).map((n) => [n, n])],
  (name) => { if (name) setView({ metrics: [...view.metrics, name] }); });
  return el("div", { class: "controls" },
    control("x axis", select("x", view.x, [["step", "steps"], ["tokens", "tokens"]], (v) => setView({ x: v === view.defaultX ? null : v }))),
    control("x scale", select("log", view.log ? "1" : "", [["", "linear"], ["1", "log"]], (v) => setView({ log: v }))),
    control("smoothing", el("input", { type: "range", name: "smooth", min: "0", max: "0.99", step: "0.01", value: String(view.smoothing),
                                       onchange: (e) => setView({ smooth: Number(e.target.value) || null }) })),
    el("span", {}, fmt(view.smoothing, 2)),
    control("group by", select("group", view.group || "none", [["none", "every run"], ...keys.map((k) => [k, k])], (v) => setView({ group: v }))),
    control("filter", filter),
    addMetric);
}

// Train loss, val loss and the chosen named metrics of `runs`, as panels of a grid.
// metricCache: name -> the /api/metrics answer for these runs (fetched once per page load).
function curvePanels(runs, view, file, metricCache) {
  const grouped = view.group !== "";
  const named = (r) => (r.sweep_name !== undefined ? `${r.sweep_name} · ` : "") + `${r.label} · seed ${r.seed} · job ${r.job_id}`;
  const base = (r) => ({ id: r.job_id, name: named(r), group: grouped ? groupName(r, view.group) : null, batch_tokens: r.batch_tokens });
  const chartView = { x: view.x, log: view.log, smoothing: view.smoothing, grouped };
  // A fork (a budget ladder's cooldown) is drawn as a branch from its branch point: its curve up
  // to there is its parent's, drawn as the parent's line. Grouped, a group is cut only when all
  // its runs are forks at one step (a mean over some of its runs would be a different curve).
  const groupBranch = new Map();
  for (const r of grouped ? runs : []) {
    const g = groupName(r, view.group), b = r.fork ? Number(r.fork.branch_step) : 0, seen = groupBranch.get(g);
    groupBranch.set(g, seen === undefined || seen === b ? b : 0);
  }
  const branchStep = (r) => (!r.fork ? 0 : grouped ? groupBranch.get(groupName(r, view.group)) : Number(r.fork.branch_step));
  const fromBranch = (r, curve, keys) => {
    const keep = curve.step.map((s) => s >= branchStep(r));
    return Object.fromEntries(keys.map((k) => [k, curve[k].filter((_, i) => keep[i])]));
  };
  const panels = [
    curvePanel({ kind: "train", title: "train loss", yLabel: "loss (nats)", view: chartView, file: file + "-train-loss",
      runs: runs.map((r) => {
        const train = fromBranch(r, r.train, ["step", "mean", "min", "max"]);
        const index = new Map(r.train.step.map((s, i) => [s, i]));
        const spikes = r.train.spike_steps.filter((s) => s >= branchStep(r));
        return { ...base(r), step: train.step, value: train.mean, lo: train.min, hi: train.max, spikeSteps: spikes,
                 spikeValues: spikes.map((s) => r.train.max[index.get(s)]) };
      }) }),
    curvePanel({ kind: "val", title: "val loss", yLabel: "loss (nats)", view: { ...chartView, smoothing: 0 }, file: file + "-val-loss",
      runs: runs.map((r) => {
        const val = fromBranch(r, r.val, ["step", "val_loss"]);
        return { ...base(r), step: val.step, value: val.val_loss };
      }) }),
  ];
  const ids = runs.map((r) => r.job_id).slice(0, 200);
  for (const name of view.metrics) {
    const holder = el("div", { class: "chart panel loading", "data-kind": "metric", "data-metric": name }, el("p", {}, `loading ${name}…`));
    const close = () => setView({ metrics: view.metrics.filter((m) => m !== name) });
    const key = name + "|" + ids.join(",");
    if (!metricCache.has(key)) metricCache.set(key, api(`/api/metrics?name=${encodeURIComponent(name)}&runs=${ids.join(",")}&points=400`));
    metricCache.get(key)
      .then((data) => holder.replaceWith(metricPanel(name, data, runs.map(base), chartView, file, close)))
      .catch((e) => holder.replaceChildren(el("p", { class: "error" }, `${name}: ${e.message}`)));
    panels.push(holder);
  }
  return panels;
}

// One named metric of `runs` ({id, name, group, batch_tokens}) from an /api/metrics answer
// (NamedMetricResponse).
function metricPanel(name, answer, runs, view, file, onClose) {
  const byRun = new Map(answer.runs.map((m) => [m.job_id, m.curve]));
  return curvePanel({ kind: "metric", metric: name, title: name, yLabel: name, view, onClose,
    file: `${file}-${name.replace(/[^\w.-]+/g, "_")}`,
    runs: runs.filter((r) => byRun.has(r.id)).map((r) => ({ ...r, step: byRun.get(r.id).step, value: byRun.get(r.id).mean })) });
}

// The runs table: each run's colour, a pick box for comparing, and the settings its sweep varies.
function runsTable(title, runs, keys, options) {
  const selection = picked.get();
  const pickCell = (r) => {
    const box = el("input", { type: "checkbox", class: "pick", "data-run": r.job_id, title: "pick for comparing" });
    box.checked = options.checked ? options.checked(r) : selection.has(r.job_id);
    box.addEventListener("change", () => options.onPick(r, box.checked));
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = colorOf(r.job_id);
    return el("span", {}, box, swatch, el("a", { href: `#/run/${r.job_id}` }, r.label));
  };
  const columns = [
    { name: "label", text: true, value: (r) => r.label, node: pickCell },
    options.sweepColumn ? { name: "sweep", text: true, value: (r) => r.sweep_name, node: (r) => el("a", { href: `#/sweep/${r.sweep_id}` }, r.sweep_name) } : null,
    { name: "job", value: (r) => r.job_id },
    { name: "seed", value: (r) => r.seed },
    { name: "state", text: true, value: (r) => r.state, node: (r) => el("span", { class: "state " + r.state }, r.state) },
    ...keys.map((k) => ({ name: k, text: runs.some((r) => typeof r.settings[k] === "string"), value: (r) => r.settings[k] ?? null,
                          node: (r) => settingText(r.settings[k]) })),
    { name: "attempt", value: (r) => r.attempt },
    { name: "worker", text: true, value: (r) => r.worker_id },
    { name: "step", value: (r) => r.step, node: (r) => el("span", {}, progressBar(r.step, r.max_steps), ` ${count(r.step)}/${count(r.max_steps)}`) },
    { name: "train loss", value: (r) => r.last_train_loss, node: (r) => fmt(r.last_train_loss, 4) },
    { name: "val loss", value: (r) => r.last_val_loss, node: (r) => fmt(r.last_val_loss, 4) },
    { name: "loss spikes", value: (r) => r.spikes },
    { name: "message", text: true, value: (r) => r.message },
    // An adaptive sweep's jobs say why they exist: tuning, extension or confirmation, and why; so
    // does a health rule's rewind in any sweep.
    options.tuned ? { name: "role", text: true, value: (r) => (r.role || "").replace("ROLE_", "").toLowerCase() } : null,
    options.tuned ? { name: "why", text: true, value: (r) => r.reason } : null,
  ].filter(Boolean);
  const rows = runs.map((r) => ({
    id: r.job_id,
    cells: columns.map((c) => c.value(r)),
    nodes: Object.fromEntries(columns.map((c, i) => [i, c.node ? c.node(r) : null]).filter(([, n]) => n !== null)),
  }));
  return dataTable(title, columns.map((c) => c.name), rows,
    { class: "jobs", file: options.file, textColumns: columns.flatMap((c, i) => (c.text ? [i] : [])) });
}

// ---------------------------------------------------------------- pages

async function sweepsPage(before) {
  // One after the other: a refused token is asked for once, not once per request.
  const data = await api("/api/sweeps?limit=50" + (before ? "&before=" + before : ""));
  const recent = await api("/api/events?limit=20");
  const rows = data.sweeps.map((s) => {
    const done = s.finished_jobs;
    const counts = Object.entries(s.jobs_by_state).map(([k, v]) => `${v} ${k}`).join(", ");
    const state = stateText(s.state);
    return {
      cells: [s.name, s.sweep_id, s.owner || "admin", state, `${done}/${s.total_jobs}`, counts, when(s.submitted_unix_ms)],
      nodes: { 0: el("a", { href: `#/sweep/${s.sweep_id}` }, s.name), 3: el("span", { class: "state " + state }, state),
               4: el("span", {}, progressBar(done, s.total_jobs), ` ${done}/${s.total_jobs}`) },
    };
  });
  const older = data.sweeps.length === 50
    ? el("p", {}, el("a", { href: `#/sweeps/before/${data.sweeps[data.sweeps.length - 1].sweep_id}` }, "Older sweeps →")) : null;
  show(el("h1", {}, "Sweeps"),
    rows.length ? dataTable("", ["name", "id", "owner", "state", "progress", "jobs", "submitted"], rows, { textColumns: [2, 3, 5, 6], file: "sweeps" })
                : el("p", {}, "No sweeps yet: sweepctl submit examples/quick_cpu_sweep.yaml"), older,
    eventsList([...(recent.events || [])].reverse(), "Recent events, every sweep", true));
  setPoll(() => route(), 5000);
  return [];
}

// Events (sweep finished, jobs failed for good, health rules that fired, no worker), newest last,
// as the coordinator keeps them (docs/deploy.md, "Notifications"); text nodes only. With
// `linked`, each names its sweep with a link (the sweeps page's list of every sweep's events).
function eventsList(events, title = "Events", linked = false) {
  if (!events.length) return null;
  return el("details", { class: "events", open: "" }, el("summary", {}, `${title} (${events.length})`),
    el("ul", {}, events.map((e) => el("li", { class: "event " + e.kind.toLowerCase().replace(/_/g, "-") },
      `${when(e.at_unix_ms)} · `,
      linked && e.sweep_id ? el("a", { href: `#/sweep/${e.sweep_id}` }, `sweep ${e.sweep_id}`) : null,
      linked && e.sweep_id ? ": " : null, e.text))));
}

async function sweepPage(id, params) {
  const [detail, curves, results] = await Promise.all([
    api(`/api/sweeps/${id}`), api(`/api/sweeps/${id}/curves?points=400&format=packed`, true).then(decodePackedCurves),
    api(`/api/sweeps/${id}/results`)]);
  const s = detail.sweep;
  const keys = [...RUN_FIELDS.filter((k) => k !== "sweep" && k !== "job_id"), ...detail.config_columns];
  const curveOf = new Map(curves.jobs.map((c) => [c.job_id, c]));
  const runs = detail.jobs.map((j) => ({ ...j, train: curveOf.get(j.job_id).train, val: curveOf.get(j.job_id).val }));
  const names = await api(`/api/metric-names?runs=${runs.map((r) => r.job_id).join(",") || "0"}`);
  const metricCache = new Map();
  const render = () => {
    const view = viewOf(currentRoute().params, "label", defaultXOf(runs));
    const filter = parseFilter(view.filter, keys);
    const shown = runs.filter(filter.test);
    const panels = curvePanels(shown, view, `sweep-${id}`, metricCache);
    const hasRatio = results.ratios.some((r) => r.ratio.kind !== "RATIO_MISSING");
    if (hasRatio) panels.push(ratioPanel(results, s.baseline, id));
    if (results.lr_sensitivity.length) panels.push(lrPanel(results, id));
    const pick = (r, on) => { const ids = picked.get(); if (on) ids.add(r.job_id); else ids.delete(r.job_id); picked.set(ids); };
    show(
      el("h1", {}, s.name, " ", el("span", { class: "state " + stateText(s.state) }, stateText(s.state))),
      el("p", {}, `sweep ${s.sweep_id} · submitted ${when(s.submitted_unix_ms)} · ${s.total_jobs} jobs · `,
        Object.entries(s.jobs_by_state).map(([k, v]) => `${v} ${k}`).join(", "),
        s.tuned ? (s.planning_open ? " · tuning: the coordinator adds jobs as runs finish" : " · tuning: done") : ""),
      detail.provisioning_setback ? el("p", { class: "error setback" }, setbackText(detail.provisioning_setback)) : null,
      eventsList(detail.events || []),
      viewControls(view, keys, names.metrics),
      filter.error ? el("p", { class: "error filter-error" }, filter.error)
        : el("p", { class: "shown" }, view.filter ? `${shown.length} of ${runs.length} runs match the filter (charts and the runs table; the results tables cover every run).` : ""),
      el("div", { class: "grid" }, panels),
      ...resultsTables(results, id),
      ...(importanceSection(results.importance, id) || []),
      parallelCoordinatesPanel(shown, (results.importance && results.importance.settings || []).map((s) => s.path), id),
      el("div", { class: "pick-actions" },
        el("button", { onclick: () => { const ids = picked.get(); shown.forEach((r) => ids.add(r.job_id)); picked.set(ids); redraw(); } }, "Pick the runs shown"),
        el("button", { onclick: () => { picked.set(new Set()); redraw(); } }, "Clear picks"),
        el("a", { class: "compare-picked", href: "#/compare?runs=" + [...picked.get()].join(",") }, "Compare picked runs →")),
      runsTable(`Runs (${shown.length}${shown.length < runs.length ? ` of ${runs.length}` : ""}; tick to compare with runs of other sweeps)`,
        shown, detail.config_columns, { onPick: pick, file: `sweep-${id}-runs`, tuned: s.tuned || shown.some((r) => r.reason) }));
    return panels.slice(0, 2 + (hasRatio ? 1 : 0) + (results.lr_sensitivity.length ? 1 : 0));
  };
  redraw = render;
  if (s.finished_jobs < s.total_jobs || s.planning_open) setPoll(() => route(), 3000);  // unfinished
  return render();
}

// Runs of any sweeps side by side: #/compare?runs=3,17,42 (the URL is the selection, so it can
// be shared), with their curves, chosen metric panels and the settings that differ among them.
async function comparePage(params) {
  const ids = (params.get("runs") || "").split(",").filter((v) => /^\d+$/.test(v));
  const [compared, sweeps] = await Promise.all([ids.length ? api(`/api/compare?runs=${ids.join(",")}&points=500`) : { runs: [], config_columns: [] },
                                                 api("/api/sweeps?limit=200")]);
  // Each ComparedRun as a run like the sweep page's: its JobInfo with its sweep's name and curves.
  const data = { config_columns: compared.config_columns,
                 runs: compared.runs.map((c) => ({ ...c.job, sweep_name: c.sweep_name, train: c.train, val: c.val })) };
  picked.set(new Set(data.runs.map((r) => r.job_id)));
  const keys = [...RUN_FIELDS, ...data.config_columns];
  const names = data.runs.length ? await api(`/api/metric-names?runs=${data.runs.map((r) => r.job_id).join(",")}`) : { metrics: [] };
  const metricCache = new Map();
  const setRuns = (list) => {
    const { params: p } = currentRoute();
    p.set("runs", list.join(","));
    location.hash = "#/compare?" + p.toString();
  };
  // Adds the runs of a sweep that match a filter over that sweep's settings.
  const sweepChoice = el("select", { name: "add-sweep" }, sweeps.sweeps.map((s) => el("option", { value: s.sweep_id }, `${s.name} (sweep ${s.sweep_id})`)));
  const addFilter = el("input", { type: "search", name: "add-filter", size: "30", placeholder: "all its runs, or a filter" });
  const addError = el("span", { class: "error" });
  const add = async () => {
    const detail = await api(`/api/sweeps/${sweepChoice.value}`);
    const filter = parseFilter(addFilter.value, [...RUN_FIELDS, ...detail.config_columns]);
    if (filter.error) { addError.textContent = filter.error; return; }
    const chosen = detail.jobs.map((j) => ({ ...j, sweep_name: detail.sweep.name })).filter(filter.test).map((j) => j.job_id);
    setRuns([...new Set([...data.runs.map((r) => r.job_id), ...chosen])].slice(0, 200));
  };
  const render = () => {
    const view = viewOf(currentRoute().params, "", defaultXOf(data.runs));
    const filter = parseFilter(view.filter, keys);
    const shown = data.runs.filter(filter.test);
    const panels = shown.length ? curvePanels(shown, view, "compare", metricCache) : [];
    const sweepCount = new Set(data.runs.map((r) => r.sweep_id)).size;
    show(
      el("h1", {}, `Compare ${data.runs.length} runs from ${sweepCount} sweep${sweepCount === 1 ? "" : "s"}`),
      el("p", {}, "This page's URL holds the runs and the view: share it to show the same comparison. ",
        ids.length > data.runs.length ? `${ids.length - data.runs.length} run id(s) in the URL do not exist.` : ""),
      el("div", { class: "controls add-runs" }, "Add runs of ", sweepChoice, " matching ", addFilter,
        el("button", { class: "add", onclick: () => add().catch((e) => { addError.textContent = e.message; }) }, "Add"), addError),
      viewControls(view, keys, names.metrics),
      filter.error ? el("p", { class: "error filter-error" }, filter.error) : null,
      el("div", { class: "grid" }, panels),
      data.runs.length ? runsTable("Runs (untick to remove)", shown, data.config_columns,
        { sweepColumn: true, checked: () => true, file: "compare-runs",
          onPick: (r) => setRuns(data.runs.map((x) => x.job_id).filter((x) => x !== r.job_id)) })
        : el("p", {}, "No runs yet: tick runs on sweep pages, or add a sweep's runs above."));
    return panels.slice(0, 2);
  };
  redraw = render;
  return render();
}

// The run's log as its worker shipped it (JobLog: bytes base64, not necessarily UTF-8: decoded
// with replacement characters, and put in the page as text), with the unkept middle of a long
// log said where it was. null: nothing written yet.
async function logPane(id) {
  const log = await api(`/api/runs/${id}/log`);
  if (!Number(log.next_offset)) return null;  // nothing written (the built-in trainer writes nothing)
  const text = (b64) => new TextDecoder("utf-8").decode(Uint8Array.from(atob(b64 || ""), (c) => c.charCodeAt(0)));
  const body = text(log.before_gap) + (Number(log.omitted_bytes) > 0
    ? `\n[... ${count(log.omitted_bytes)} bytes not kept: the coordinator keeps each log's first 64 KiB and last 192 KiB ...]\n` : "") + text(log.after_gap);
  const pre = el("pre", { class: "log-text" }, body);
  setTimeout(() => { pre.scrollTop = pre.scrollHeight; }, 0);  // the newest lines in view
  return el("details", { class: "log", open: "" },
    el("summary", {}, `Log (attempt ${log.attempt}, ${count(log.next_offset)} bytes${log.finished ? "" : ", following"})`), pre);
}

async function runPage(id) {
  const [r, named, log] = await Promise.all([api(`/api/runs/${id}?points=1000`), api(`/api/runs/${id}/metrics`), logPane(id)]);
  const j = r.job;
  const run = { ...j, train: r.train, val: r.val };
  const view = { x: "step", log: false, smoothing: 0, group: "", filter: "", metrics: [] };
  const panels = curvePanels([run], view, `run-${id}`, new Map());
  const summary = r.summary || {};
  const summaryRows = ["status", "steps", "final_train_loss", "final_val_loss", "final_val_ppl", "loss_spike_count",
    "grad_norm_spike_count", "peak_memory_bytes", "tokens_per_second", "achieved_gflops", "tokens", "train_s", "elapsed_s", "num_params"]
    .filter((k) => k in summary).map((k) => ({ cells: [k, summary[k]], nodes: { 1: String(human(k, summary[k])) } }));  // CSV keeps the raw value
  if (summary.dataset && summary.dataset.id !== undefined)
    summaryRows.push({ cells: ["dataset", `${summary.dataset.id ? summary.dataset.id.slice(0, 16) : "unrecorded"} · ${summary.dataset.source} · ` +
      `${count(summary.dataset.train_tokens)} train / ${count(summary.dataset.val_tokens)} val tokens`] });
  for (const t of summary.targets || [])
    summaryRows.push({ cells: [`to loss ${t.target}`, t.reached ? `step ${count(t.steps)}, ${count(t.tokens)} tokens, ${human("train_s", t.seconds)} of training, ${(t.flops || 0).toExponential(3)} FLOPs` : "not reached"] });
  // One named metric at a time, picked by name.
  let metricSection = null;
  if (named.metrics.length) {
    const picker = el("select", { class: "metric-picker" }, named.metrics.map((n) => el("option", { value: n }, n)));
    const holder = el("div", { class: "grid" });
    const draw = async () => {
      const name = picker.value;
      const data = await api(`/api/metrics?name=${encodeURIComponent(name)}&runs=${id}&points=1000`);
      holder.replaceChildren(metricPanel(name, data, [{ id: j.job_id, name: j.label, group: null, batch_tokens: j.batch_tokens }],
        { x: "step", smoothing: 0, grouped: false }, `run-${id}`));
    };
    picker.addEventListener("change", draw);
    draw();
    metricSection = el("section", { class: "metrics" }, el("h2", {}, "Named metrics ", picker), holder);
  }
  show(
    el("h1", {}, `${j.label} · seed ${j.seed} `, el("span", { class: "state " + j.state }, j.state)),
    el("p", {}, el("a", { href: `#/sweep/${j.sweep_id}` }, "← sweep"), ` · job ${j.job_id} · attempt ${j.attempt} · worker ${j.worker_id || "–"} · step ${count(j.step)}/${count(j.max_steps)} `, j.message),
    el("div", { class: "grid" }, panels),
    log,
    metricSection,
    dataTable("Summary", ["field", "value"], summaryRows, { textColumns: [1], file: `run-${id}-summary` }),
    dataTable("Eval points", ["step", "val loss", "val PPL"], r.val.step.map((s, i) => ({ cells: [s, fmt(r.val.val_loss[i], 4), fmt(Math.exp(r.val.val_loss[i]), 2)] })),
      { file: `run-${id}-evals` }),
    el("h2", {}, "Config"), el("pre", {}, JSON.stringify(r.config, null, 2)));
  if (!j.finished) setPoll(() => route(), 3000);
  return panels;
}

async function workersPage() {
  const data = await api("/api/workers");
  const now = Date.now();
  const ago = (ms) => `${((now - ms) / 1000).toFixed(1)} s ago`;
  const rows = data.workers.map((w) => ({
    cells: [w.worker_id, stateText(w.state), w.backend, w.slots, w.devices.map((d) => `${d.kind}: ${d.name}`).join(", "),
            w.job_ids.join(", "), ago(w.last_heartbeat_unix_ms), w.allocation || "by hand"],
    nodes: { 1: el("span", { class: "state " + stateText(w.state) }, stateText(w.state)),
             5: el("span", {}, w.job_ids.map((id, i) => [i ? ", " : "", el("a", { href: `#/run/${id}` }, String(id))])) } }));
  // Workers on demand (docs/deploy.md): the provisioner's last look and its allocations.
  const p = data.provisioner;
  const provisioner = p.engine === "none" ? [] : [el("p", { class: "provisioner" },
    `Provisioner: ${p.engine}, ${p.backend} workers. ${p.waiting_jobs} job(s) waiting, ${p.unplaced_jobs} with no room ` +
    `(${p.needed_allocations} allocation(s) needed, at most ${p.max_allocations} open); ${p.unfit_jobs} too large for one node. ` +
    `Idle workers leave after ${p.idle_timeout_s} s.`),
    p.setback ? el("p", { class: "error setback" }, setbackText(p.setback)) : null];
  const allocationRows = data.allocations.map((a) => ({
    cells: [a.name, a.engine, a.engine_id || "-", stateText(a.state),
            `${a.nodes} x ${a.slots_per_node} slot(s)${a.gpus_per_node ? `, ${a.gpus_per_node} GPU(s)` : ""}`,
            `${a.workers_active} / ${a.workers_registered}`, ago(a.requested_unix_ms),
            a.ended_unix_ms ? ago(a.ended_unix_ms) : "", a.engine_reason || "-", a.reason],
    nodes: { 3: el("span", { class: "state " + stateText(a.state) }, stateText(a.state)),
             // The engine's own words under its reason: the output's last lines, a pod's state.
             8: el("span", {}, a.engine_reason || "-",
                   a.engine_output ? el("pre", { class: "engine-output" }, a.engine_output) : null) } }));
  const allocations = data.allocations.length || p.engine !== "none" ? [dataTable("Allocations",
    ["allocation", "engine", "engine id", "state", "shape", "workers active / registered", "asked", "ended", "engine says", "why asked"],
    allocationRows, { textColumns: [1, 2, 3, 4, 5, 6, 7, 8, 9], file: "allocations" })] : [];
  show(el("h1", {}, "Workers"),
    dataTable("", ["worker", "state", "backend", "slots", "devices", "jobs", "last heartbeat", "started by"], rows,
      { textColumns: [1, 2, 4, 5, 7], file: "workers" }),
    ...provisioner, ...allocations);
  setPoll(() => route(), 5000);
  return [];
}

// ---------------------------------------------------------------- router

// window.dashboardDrawn: when the page's first charts had all drawn, in ms since navigation
// began (performance.now()) and since the route started; the browser tests print it.
async function route() {
  clearTimeout(pollTimer);
  redraw = null;
  const started = performance.now();
  const { parts, params } = currentRoute();
  try {
    let panels;
    if (parts[0] === "sweep" && parts[1]) panels = await sweepPage(Number(parts[1]), params);
    else if (parts[0] === "compare") panels = await comparePage(params);
    else if (parts[0] === "run" && parts[1]) panels = await runPage(Number(parts[1]));
    else if (parts[0] === "workers") panels = await workersPage();
    else panels = await sweepsPage(parts[0] === "sweeps" && parts[1] === "before" ? Number(parts[2]) : 0);
    if (!whoami) whoami = await api("/api/whoami");
    statusLine.textContent = `${whoami.user} (${whoami.role}) · updated ${new Date().toLocaleTimeString()}`;
    await Promise.all(panels.map((p) => p.drawn).filter(Boolean));
    const now = performance.now();
    window.dashboardDrawn = { page: parts[0] || "sweeps", since_navigation_ms: now, since_route_ms: now - started };
  } catch (e) {
    show(el("p", { class: "error" }, "Error: " + e.message));
    setPoll(() => route(), 5000);
  }
}

picked.set(picked.get());
window.addEventListener("hashchange", route);
route();
