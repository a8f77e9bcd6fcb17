// Browser tests of the dashboard: a real coordinator and CPU worker run a tiny sweep on
// 127.0.0.1, then headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) opens
// the page. Screenshots go to $ARTIFACT_DIR. Run by ctest (label: browser).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import http from "node:http";
import { chromium } from "playwright-core";

const { COORDINATOR_BINARY, WORKER_BINARY, SWEEPCTL_BINARY, DASHBOARD_FILL_BINARY } = process.env;
const artifacts = process.env.ARTIFACT_DIR || join(tmpdir(), "dashboard-artifacts");
mkdirSync(artifacts, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), "dashboard-"));
const MARKUP = '<img src=x onerror="window.__xss=1">';
let coordinator, worker, browser, base, sweepId, scaleId, tunedId, ladderId, logsId;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try { if (await check()) return; } catch { /* not yet */ }
    await sleep(250);
  }
  throw new Error("timed out waiting for " + what);
}
const getJson = async (path) => (await fetch(base + path)).json();

before(async () => {
  // The size of a team's long runs for the page timings: 100 finished runs x 100k steps, written
  // into the database before the coordinator opens it.
  scaleId = Number(execFileSync(DASHBOARD_FILL_BINARY, [join(dir, "s.db"), "100", "100000"], { encoding: "utf8" }).trim());
  coordinator = spawn(COORDINATOR_BINARY, ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", join(dir, "s.db"),
    "--checkpoint-root", join(dir, "ckpt"), "--ports-file", join(dir, "ports.json")], { stdio: "ignore" });
  await until(() => existsSync(join(dir, "ports.json")), 20000, "the coordinator");
  const ports = JSON.parse(readFileSync(join(dir, "ports.json"), "utf8"));
  base = `http://127.0.0.1:${ports.http}`;
  const grpc = `127.0.0.1:${ports.grpc}`;
  worker = spawn(WORKER_BINARY, ["--coordinator", grpc, "--worker-id", "browser-w1", "--slots", "2", "--work-dir", join(dir, "w")], { stdio: "ignore" });
  // A tiny sweep whose name and one ablation label carry markup: the page must show it as text.
  writeFileSync(join(dir, "sweep.yaml"), `name: '${MARKUP} sweep'
base:
  model: {preset: tiny, n_layer: 1, hidden: 64, n_head: 2, ffn_hidden: 128, seq_len: 64}
  training: {max_steps: 60, batch_tokens: 512, micro_batch: 8, eval_every: 10, eval_tokens: 4096}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: ${join(dir, "cache")}}
ablations:
  - {label: '<b>no_wd</b>', set: {optimizer.weight_decay: 0.0}}
grid:
  optimizer: [{name: adamw, lr: 3.0e-3}, {name: adamw, lr: 1.0e-2}, {name: muon, lr: 1.0e-2}]
  training.batch_tokens: [512, 1024]
seeds: [1, 2]
targets: [3.2]
`);
  const out = execFileSync(SWEEPCTL_BINARY, ["--coordinator", grpc, "submit", join(dir, "sweep.yaml")], { encoding: "utf8" });
  sweepId = Number(/submitted sweep (\d+)/.exec(out)[1]);
  await until(async () => (await getJson(`/api/sweeps/${sweepId}`)).sweep.state === "SWEEP_FINISHED", 240000, "the sweep to finish");
  // An adaptive sweep whose start grid lies below the optimum: the coordinator extends it.
  writeFileSync(join(dir, "tuned.yaml"), `name: tuned
base:
  model: {preset: micro}
  training: {max_steps: 30, batch_tokens: 256, micro_batch: 8, eval_every: 10, eval_tokens: 2048}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: ${join(dir, "cache")}}
tune: {start: [1.0e-4, 3.0e-4], factor: 3, max_extensions: 8, confirm_seeds: [1, 2]}
`);
  const tuned = execFileSync(SWEEPCTL_BINARY, ["--coordinator", grpc, "submit", join(dir, "tuned.yaml")], { encoding: "utf8" });
  tunedId = Number(/submitted sweep (\d+)/.exec(tuned)[1]);
  await until(async () => (await getJson(`/api/sweeps/${tunedId}`)).sweep.state === "SWEEP_FINISHED", 240000, "the tuned sweep to finish");
  // A budget ladder: one trunk of 80 steps and its cooldown forks, the 40-step one branching at
  // step 32; four budgets, so that its row has a scaling fit.
  writeFileSync(join(dir, "ladder.yaml"), `name: ladder
base:
  model: {preset: tiny, n_layer: 1, hidden: 64, n_head: 2, ffn_hidden: 128, seq_len: 64}
  training: {batch_tokens: 512, micro_batch: 8, eval_every: 10, eval_tokens: 4096}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: ${join(dir, "cache")}}
budgets: {tokens: [5120, 10240, 20480, 40960], via: cooldown}
`);
  const ladder = execFileSync(SWEEPCTL_BINARY, ["--coordinator", grpc, "submit", join(dir, "ladder.yaml")], { encoding: "utf8" });
  ladderId = Number(/submitted sweep (\d+)/.exec(ladder)[1]);
  await until(async () => (await getJson(`/api/sweeps/${ladderId}`)).sweep.state === "SWEEP_FINISHED", 240000, "the ladder to finish");
  // A program that writes markup, bytes that are not UTF-8 and no final newline to its log, then
  // fails: its run page shows the log as text.
  writeFileSync(join(dir, "talker.py"), `import sys
print('${MARKUP} in a log', flush=True)
sys.stdout.buffer.write(b"bad \\xff bytes, no newline")
sys.exit(1)
`);
  writeFileSync(join(dir, "logs.yaml"), `name: logs
base:
  command: [/usr/bin/python3, ${join(dir, "talker.py")}]
  optimizer: {name: sgd, lr: 1.0}
  training: {max_steps: 10, batch_tokens: 64, eval_every: 50, eval_tokens: 512}
  data: {max_corpus_bytes: 200000}
max_attempts: 1
`);
  const logs = execFileSync(SWEEPCTL_BINARY, ["--coordinator", grpc, "submit", join(dir, "logs.yaml")], { encoding: "utf8" });
  logsId = Number(/submitted sweep (\d+)/.exec(logs)[1]);
  await until(async () => (await getJson(`/api/sweeps/${logsId}`)).sweep.state === "SWEEP_FINISHED", 60000, "the logging sweep to finish");
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  for (const p of [worker, coordinator]) if (p && p.exitCode === null) p.kill("SIGTERM");
  await sleep(500);
  rmSync(dir, { recursive: true, force: true });
});

const failedRequests = [];
async function openPage(hash) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 }, acceptDownloads: true });
  page.on("dialog", (d) => { d.dismiss(); throw new Error("a dialog opened: " + d.message()); });
  page.on("response", (r) => { if (r.status() >= 400) failedRequests.push(`${r.status()} ${r.url()}`); });
  await page.goto(`${base}/${hash}`);
  return page;
}

// Pixels of a canvas that are not background: a drawn chart has thousands.
const inkedPixels = (page, selector) => page.$eval(selector, (canvas) => {
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200)) n++;
  return n;
});

test("sweep page shows every job, drawn curves and the R_L(B) plot", async () => {
  const api = await getJson(`/api/sweeps/${sweepId}`);
  const page = await openPage(`#/sweep/${sweepId}`);
  await page.waitForSelector("table.jobs tbody tr");
  assert.equal(await page.locator("table.jobs tbody tr").count(), api.jobs.length);
  const jobLabels = await page.locator("table.jobs tbody tr td:first-child").allTextContents();
  assert.deepEqual(jobLabels, api.jobs.map((j) => j.label));
  for (const kind of ["train", "val", "ratio", "lr"]) {
    await page.waitForSelector(`.chart[data-kind=${kind}] canvas`);
    assert.ok(await inkedPixels(page, `.chart[data-kind=${kind}] canvas`) > 2000, `${kind} chart is drawn`);
  }
  await page.screenshot({ path: join(artifacts, "sweep-page.png"), fullPage: true });
  // The runs' batch sizes differ, so the x axis starts in tokens (the paper's axis); steps is a
  // choice the URL keeps, and going back to the default takes it out again.
  assert.equal(await page.inputValue("select[name=x]"), "tokens");
  assert.doesNotMatch(page.url(), /x=/);
  await page.selectOption("select[name=x]", "step");
  await until(async () => /x=step/.test(page.url()), 5000, "x=step in the URL");
  await page.selectOption("select[name=x]", "tokens");
  await until(async () => !/x=/.test(page.url()), 5000, "the default x out of the URL");
  // Controls redraw: per-run curves on a log x axis in tokens, kept in the URL.
  await page.selectOption("select[name=log]", "1");
  await page.selectOption("select[name=group]", "none");
  await page.waitForSelector(".chart[data-kind=train] canvas");
  assert.ok(await inkedPixels(page, ".chart[data-kind=train] canvas") > 2000);
  const lines = await page.$$eval(".chart[data-kind=train] .u-legend .u-series", (rows) => rows.map((r) => r.textContent));
  assert.ok(!lines.some((t) => t.includes("(mean of")), "every run has its own line: " + lines.join("|"));
  assert.ok(lines.some((t) => t.includes(" · seed 2 · job ")), lines.join("|"));
  assert.match(page.url(), /log=1/);
  // Numbers for people in the runs table: steps with separators, losses to 4 decimals.
  const cells = await page.$$eval("table.jobs tbody tr:first-child td", (tds) => tds.map((td) => td.textContent));
  assert.ok(cells.some((c) => /^\s*60\/60$/.test(c)), cells.join("|"));
  assert.ok(cells.some((c) => /^\d+\.\d{4}$/.test(c)), cells.join("|"));
  await page.close();
});

test("the compute–time plane of section 3.2: each optimizer's batch sizes by devices and time to target", async () => {
  const results = await getJson(`/api/sweeps/${sweepId}/results`);
  const plane = results.pareto[0];
  assert.ok(plane, "the sweep has AdamW and Muon rows at two batch sizes");
  const reached = (opt) => plane.points.filter((p) => p.optimizer === opt && p.reached);
  assert.ok(reached("adamw").length > 0 && reached("muon").length > 0, JSON.stringify(plane.points));
  assert.ok(plane.points.every((p) => p.devices === Number(p.batch_tokens) / Number(plane.device_batch_tokens)));
  const page = await openPage(`#/sweep/${sweepId}`);
  await page.waitForSelector(".chart[data-kind=pareto] canvas");
  assert.ok(await inkedPixels(page, ".chart[data-kind=pareto] canvas") > 500, "the plane is drawn");
  const title = await page.locator(".chart[data-kind=pareto] .panel-title").first().textContent();
  assert.match(title, /^Compute–time plane, L = 3.2 \(within-run \(early speed\), .+\): (Muon dominates|Muon does not dominate|undecided)$/);
  const legend = await page.$$eval(".chart[data-kind=pareto] .u-legend .u-series", (rows) => rows.map((r) => r.textContent));
  assert.ok(legend.some((t) => t.includes("AdamW")) && legend.some((t) => t.includes("Muon")), legend.join("|"));
  await page.locator(".chart[data-kind=pareto]").first().screenshot({ path: join(artifacts, "pareto-plane.png") });
  // The table beside it gives every point with the verdict's reason, as the API does.
  const rows = await page.locator("table.pareto tbody tr").count();
  assert.equal(rows, results.pareto.reduce((n, f) => n + f.points.length, 0));
  await page.close();
});

test("table values equal the API's", async () => {
  const results = await getJson(`/api/sweeps/${sweepId}/results`);
  const page = await openPage(`#/sweep/${sweepId}`);
  await page.waitForSelector("table.ablation tbody tr");
  const rows = await page.$$eval("table.ablation tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.equal(rows.length, results.ablation.length);
  const f = (s, d, word) => {
    if (s.n === 0) return s.of > 0 ? `– (0/${s.of} ${word})` : "–";
    const text = s.n === 1 ? s.mean.toFixed(d) : `${s.mean.toFixed(d)} ± ${s.std.toFixed(d)}`;
    return s.n < s.of ? `${text} (${s.n}/${s.of} ${word})` : text;
  };
  results.ablation.forEach((a, i) => {
    assert.equal(rows[i][0], a.label);
    assert.ok(rows[i][2].endsWith(`/${a.counts.total} ok`) || rows[i][2].includes(`/${a.counts.total} ok,`), rows[i][2]);
    assert.equal(rows[i][3], f(a.val_ppl, 2, "succeeded"));
    assert.equal(rows[i][4], f(a.steps_to_target, 0, "reached"));
    assert.equal(rows[i][6], f(a.peak_memory_mb, 1, "runs"));
  });
  // The AdamW rows tried two lrs: the table names the best one, and the lr-sensitivity table
  // lists both with the chosen one marked.
  const adamw = results.ablation.filter((a) => a.optimizer === "adamw");
  assert.ok(adamw.length > 0);
  for (const a of adamw) {
    assert.equal(a.lr.candidates, 2);
    const row = rows[results.ablation.indexOf(a)];
    assert.ok(row[1].startsWith(Number(a.lr.lr).toPrecision(3).replace(/\.?0+(e|$)/, "$1") + " (best of 2"), row[1]);
  }
  const lrRows = await page.$$eval("table.lr-sensitivity tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.equal(lrRows.length, results.lr_sensitivity.length);
  assert.equal(lrRows.filter((r) => r[6] === "best").length, adamw.length);
  const ratios = await page.$$eval("table.ratios tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.equal(ratios.length, results.ratios.length);
  const ratioText = (r) => ({ RATIO_ESTIMATE: r.value.toFixed(3), RATIO_LOWER_BOUND: ">" + r.value.toFixed(3),
                              RATIO_UPPER_BOUND: "<" + r.value.toFixed(3) })[r.kind] || "–";
  results.ratios.forEach((r, i) => {
    assert.equal(ratios[i][0], "within-run (early speed)", "where T was read is named");
    assert.equal(ratios[i][4], ratioText(r.ratio));
    assert.equal(ratios[i][9], "tokens_to_target", "the rule that chose the lrs is named");
    // Where each side reaches the target, on the runs R uses, as the API says.
    const share = (c) => (c.reached ? `${(100 * c.mean_share).toFixed(0)}%` : "–") + (c.missed ? ` (${c.missed} missed)` : "");
    assert.equal(ratios[i][10], share(r.adamw_crossing));
    assert.equal(ratios[i][11], share(r.muon_crossing));
    assert.equal(ratios[i][13], r.ratio.note);
  });
  assert.ok((await page.textContent("section.notes")).includes("best learning rate"));
  assert.ok(!(await page.textContent("main")).includes("null"), "no absent part shows as null");
  await page.close();
});

test("markup in names is shown as text, never executed", async () => {
  const page = await openPage(`#/sweep/${sweepId}`);
  await page.waitForSelector("table.ablation tbody tr");
  assert.ok((await page.textContent("h1")).includes(MARKUP + " sweep"));
  // The sweep's events list quotes its name: as text too.
  await page.waitForSelector(".events li");
  assert.ok((await page.textContent(".events")).includes(`(${MARKUP} sweep) finished: `), await page.textContent(".events"));
  assert.equal(await page.locator("img[src=x]").count(), 0);
  assert.equal(await page.locator("main b").count(), 0);
  assert.ok((await page.locator("table.ablation").textContent()).includes("<b>no_wd</b>"));
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  const list = await openPage("#/");
  await list.waitForSelector("table tbody tr");
  assert.ok((await list.textContent("table")).includes(MARKUP));
  // Every sweep's events on the sweeps page: as the API lists them, each linked to its sweep.
  await list.waitForSelector(".events li");
  const feed = await getJson("/api/events?limit=20");
  assert.ok(feed.events.length > 0);
  const items = await list.$$eval(".events li", (lis) => lis.map((li) => li.textContent));
  assert.equal(items.length, feed.events.length);
  assert.ok(items[items.length - 1].endsWith(feed.events[0].text), "newest last");
  assert.ok(items.some((t) => t.includes(`sweep ${sweepId}: `) && t.includes(`(${MARKUP} sweep) finished: `)), items.join("\n"));
  assert.ok(await list.locator(`.events a[href="#/sweep/${sweepId}"]`).count() > 0);
  assert.equal(await list.locator("img[src=x]").count(), 0);
  await list.screenshot({ path: join(artifacts, "sweeps-page.png") });
  await page.close();
  await list.close();
});

test("which settings matter: the importance table and parallel coordinates with brushing", async () => {
  const results = await getJson(`/api/sweeps/${sweepId}/results`);
  const settings = results.importance.settings;
  assert.ok(settings.length >= 2, JSON.stringify(results.importance));
  const page = await openPage(`#/sweep/${sweepId}`);
  await page.waitForSelector("table.importance tbody tr");
  const paths = await page.locator("table.importance tbody tr td:first-child").allTextContents();
  assert.deepEqual(paths.slice(0, settings.length), settings.map((s) => s.path));
  await page.waitForSelector(".parcoords canvas[data-kept]");
  assert.ok(await inkedPixels(page, ".parcoords canvas") > 2000, "the plot is drawn");
  const kept = async () => Number(await page.getAttribute(".parcoords canvas", "data-kept"));
  const total = await kept();
  const api = await getJson(`/api/sweeps/${sweepId}`);
  const losses = api.jobs.filter((j) => j.state === "SUCCEEDED" && Number.isFinite(j.last_val_loss)).map((j) => j.last_val_loss);
  assert.equal(total, losses.length, "every finished run is drawn and kept before any brush");
  // Brush the lower half of the loss axis (the last, at the right): the runs below the middle stay.
  await page.locator(".parcoords canvas").scrollIntoViewIfNeeded();
  const box = await page.locator(".parcoords canvas").boundingBox();
  const x = box.x + box.width - 40, top = box.y + 28, bottom = box.y + box.height - 24;
  await page.mouse.move(x, bottom);
  await page.mouse.down();
  await page.mouse.move(x, (top + bottom) / 2, { steps: 6 });
  await page.mouse.up();
  const lo = Math.min(...losses), hi = Math.max(...losses);
  const below = losses.filter((l) => l <= (lo + hi) / 2 + (hi - lo) * 0.02).length;
  const after = await kept();
  assert.ok(after > 0 && after < total && after <= below, `${after} kept of ${total}; ${below} below the middle`);
  assert.match(await page.textContent(".parcoords-caption"), new RegExp(`^${after} of ${total} finished runs inside the brushes`));
  await page.screenshot({ path: join(artifacts, "parallel-coordinates.png"), fullPage: true });
  await page.mouse.click(x, top + 5);  // a click on the axis clears its brush
  assert.equal(await kept(), total);
  await page.close();
});

test("a run's log: shown as text, markup and bad bytes included", async () => {
  const job = (await getJson(`/api/sweeps/${logsId}`)).jobs[0];
  const page = await openPage(`#/run/${job.job_id}`);
  await page.waitForSelector(".log-text");
  const text = await page.textContent(".log-text");
  assert.ok(text.includes(`${MARKUP} in a log\n`), text);
  assert.ok(text.includes("bad \uFFFD bytes, no newline"), text);
  assert.equal(await page.locator("img[src=x]").count(), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.match(await page.textContent(".log summary"), /^Log \(attempt 1, \d+ bytes\)$/);
  await page.close();
});

test("run and workers pages", async () => {
  const api = await getJson(`/api/sweeps/${sweepId}`);
  const run = await openPage(`#/run/${api.jobs[0].job_id}`);
  await run.waitForSelector(".chart[data-kind=train] canvas");
  assert.ok(await inkedPixels(run, ".chart[data-kind=train] canvas") > 1000);
  assert.ok((await run.textContent("pre")).includes('"optimizer"'));
  // Numbers for people: bytes in MiB, seconds with their unit, counts with separators.
  const summary = await run.locator("section", { hasText: "Summary" }).locator("table").textContent();
  assert.match(summary, /peak_memory_bytes\s*[\d.]+ (KiB|MiB|GiB)/);
  assert.match(summary, /train_s\s*[\d.]+ (s|min|h)/);
  assert.match(summary, /final_val_loss\s*\d+\.\d{4}(?!\d)/);
  await run.screenshot({ path: join(artifacts, "run-page.png"), fullPage: true });
  // Every table sorts by any column: eval points by val loss, then the other way.
  const evals = run.locator("section", { hasText: "Eval points" });
  const losses = async () => (await evals.locator("tbody tr td:nth-child(2)").allTextContents()).map(Number);
  await evals.locator("th", { hasText: "val loss" }).click();
  const ascending = await losses();
  assert.deepEqual(ascending, [...ascending].sort((a, b) => a - b));
  await evals.locator("th", { hasText: "val loss" }).click();
  const descending = await losses();
  assert.deepEqual(descending, [...ascending].reverse());
  const workers = await openPage("#/workers");
  await workers.waitForSelector("table tbody tr");
  assert.ok((await workers.textContent("table")).includes("browser-w1"));
  // States read as words from the proto's enum names (WORKER_ACTIVE -> active).
  const cells = await workers.$$eval("table tbody tr:first-child td", (tds) => tds.map((td) => td.textContent));
  assert.equal(cells[1], "active");
  // Allocations beside the workers (tests/browser/fill_sweep.cpp stored two): the engine's id and
  // word, the state as a word, and the worker that left, named by its allocation.
  const allocations = workers.locator("section", { hasText: "Allocations" });
  const allocationText = await allocations.locator("table").textContent();
  assert.match(allocationText, /4242/);
  assert.match(allocationText, /NODE_FAIL: NodeDown/);
  assert.match(allocationText, /3 waiting cpu job\(s\)/);
  const states = await allocations.locator("tbody tr td:nth-child(4)").allTextContents();
  assert.deepEqual(states.sort(), ["ended", "failed"]);
  const leftRow = await workers.locator("tr", { hasText: "fill-provisioned" }).textContent();
  assert.match(leftRow, /left/);
  assert.match(leftRow, /sweep-[0-9a-f]{8}-1/);
  await workers.screenshot({ path: join(artifacts, "workers-page.png"), fullPage: true });
  await run.close();
  await workers.close();
});

test("run page: named metrics through a picker", async () => {
  writeFileSync(join(dir, "moe.yaml"), `name: moe
base:
  model: {preset: tiny, n_layer: 1, hidden: 32, n_head: 2, ffn_hidden: 64, seq_len: 32, ffn: moe, n_experts: 4, top_k: 2}
  training: {max_steps: 30, batch_tokens: 256, micro_batch: 8, eval_every: 10, eval_tokens: 2048}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: ${join(dir, "cache")}}
`);
  const grpc = `127.0.0.1:${JSON.parse(readFileSync(join(dir, "ports.json"), "utf8")).grpc}`;
  const out = execFileSync(SWEEPCTL_BINARY, ["--coordinator", grpc, "submit", join(dir, "moe.yaml")], { encoding: "utf8" });
  const moe = Number(/submitted sweep (\d+)/.exec(out)[1]);
  await until(async () => (await getJson(`/api/sweeps/${moe}`)).sweep.state === "SWEEP_FINISHED", 120000, "the MoE sweep");
  const job = (await getJson(`/api/sweeps/${moe}`)).jobs[0].job_id;
  const page = await openPage(`#/run/${job}`);
  await page.waitForSelector(".chart[data-kind=metric] canvas");
  const options = await page.$$eval("select.metric-picker option", (o) => o.map((x) => x.value));
  assert.deepEqual(options, ["moe/balance_loss", "moe/load/expert0", "moe/load/expert1", "moe/load/expert2", "moe/load/expert3", "moe/load_max"]);
  assert.ok(await inkedPixels(page, ".chart[data-kind=metric] canvas") > 500);
  await page.selectOption("select.metric-picker", "moe/load_max");
  await page.waitForSelector('.chart[data-metric="moe/load_max"] canvas');
  assert.ok(await inkedPixels(page, '.chart[data-metric="moe/load_max"] canvas') > 500);
  await page.screenshot({ path: join(artifacts, "run-page-named-metrics.png"), fullPage: true });
  await page.close();
});

// Time to first draw: from navigation to every first chart of the page drawn, as the page
// measures it (window.dashboardDrawn). Printed as figures, never a pass/fail threshold.
async function firstDraw(hash) {
  const page = await openPage(hash);
  await page.waitForFunction(() => window.dashboardDrawn, null, { timeout: 60000 });
  const drawn = await page.evaluate(() => window.dashboardDrawn);
  return { page, ms: drawn.since_navigation_ms };
}

// The bytes an answer takes on the wire when the client accepts gzip (Node's http: no decoding).
function wireBytes(path) {
  return new Promise((resolve, reject) => {
    http.get(base + path, { headers: { "Accept-Encoding": "gzip" } }, (res) => {
      let n = 0;
      res.on("data", (chunk) => { n += chunk.length; });
      res.on("end", () => resolve({ bytes: n, encoding: res.headers["content-encoding"] || "none" }));
    }).on("error", reject);
  });
}

// The sweep page reads its curves packed (server/api/curve_pack.h, web/curve_pack.js): the same
// numbers as the JSON answer to float32 precision, and fewer bytes on the wire (printed).
test("packed curves: the JSON answer's numbers in fewer bytes", async () => {
  const path = `/api/sweeps/${scaleId}/curves?points=400`;
  const json = await wireBytes(path);
  const packed = await wireBytes(path + "&format=packed");
  assert.equal(json.encoding, "gzip");
  assert.equal(packed.encoding, "gzip");
  console.log(`FIGURE curves of 100 runs x 100k steps at 400 points, on the wire: JSON+gzip ${json.bytes} B, ` +
              `packed+gzip ${packed.bytes} B (${(json.bytes / packed.bytes).toFixed(2)}x smaller)`);
  assert.ok(packed.bytes * 2 <= json.bytes, `${packed.bytes} B packed against ${json.bytes} B JSON`);
  const page = await openPage("#/workers");
  await page.waitForSelector("h1");
  const mismatch = await page.evaluate(async (p) => {
    const [j, b] = await Promise.all([fetch(p).then((r) => r.json()),
      fetch(p + "&format=packed").then((r) => r.arrayBuffer()).then(decodePackedCurves)]);
    if (j.jobs.length !== b.jobs.length) return "runs " + j.jobs.length + " vs " + b.jobs.length;
    const close = (x, y) => (x === null && y === null) || Math.abs(x - y) <= 1e-6 * Math.max(1, Math.abs(x));
    for (let r = 0; r < j.jobs.length; r++) {
      const [x, y] = [j.jobs[r], b.jobs[r]];
      if (x.job_id !== y.job_id) return "job ids";
      for (const [a, c, name] of [[x.train.step, y.train.step, "steps"], [x.train.spike_steps, y.train.spike_steps, "spikes"],
                                  [x.val.step, y.val.step, "val steps"]])
        if (JSON.stringify(a) !== JSON.stringify(c)) return `${name} of job ${x.job_id}`;
      for (const k of ["min", "max", "mean"])
        if (!x.train[k].every((v, i) => close(v, y.train[k][i]))) return `train.${k} of job ${x.job_id}`;
      if (!x.val.val_loss.every((v, i) => close(v, y.val.val_loss[i]))) return `val.val_loss of job ${x.job_id}`;
    }
    return "";
  }, path);
  assert.equal(mismatch, "");
  await page.close();
});

test("time to first draw: a sweep of 100 runs x 100k steps, and 20 runs compared", async () => {
  const scale = await getJson(`/api/sweeps/${scaleId}`);
  assert.equal(scale.jobs.length, 100);
  const times = [];
  for (let i = 0; i < 3; i++) {
    const { page, ms } = await firstDraw(`#/sweep/${scaleId}`);
    times.push(ms);
    if (i === 2) {
      assert.equal(await page.locator("table.jobs tbody tr").count(), 100);
      for (const kind of ["train", "val", "lr"]) assert.ok(await inkedPixels(page, `.chart[data-kind=${kind}] canvas`) > 2000, kind);
      await page.screenshot({ path: join(artifacts, "sweep-page-100-runs.png") });
    }
    await page.close();
  }
  const ids = scale.jobs.slice(0, 20).map((j) => j.job_id).join(",");
  const compareTimes = [];
  for (let i = 0; i < 3; i++) {
    const { page, ms } = await firstDraw(`#/compare?runs=${ids}`);
    compareTimes.push(ms);
    if (i === 2) assert.ok(await inkedPixels(page, ".chart[data-kind=train] canvas") > 2000);
    await page.close();
  }
  const line = (name, t) => `${name}: ${t.map((x) => x.toFixed(0)).join(", ")} ms (median ${[...t].sort((a, b) => a - b)[1].toFixed(0)} ms)`;
  console.log("FIGURE time to first draw, " + line("sweep page, 100 runs x 100k steps", times));
  console.log("FIGURE time to first draw, " + line("compare view, 20 runs x 100k steps", compareTimes));
  writeFileSync(join(artifacts, "first-draw.txt"), line("sweep 100x100k", times) + "\n" + line("compare 20", compareTimes) + "\n");
});

test("filter and group runs by any config key; the view is in the URL", async () => {
  const page = await openPage(`#/sweep/${scaleId}`);
  await page.waitForSelector("table.jobs tbody tr");
  await page.fill("input[name=filter]", "optimizer.name=muon training.batch_tokens=512");
  await page.press("input[name=filter]", "Enter");
  await page.waitForFunction(() => document.querySelectorAll("table.jobs tbody tr").length === 25);
  const settings = await page.$$eval("table.jobs tbody tr", (trs) => trs.map((tr) => tr.textContent));
  assert.ok(settings.every((t) => t.includes("muon") && t.includes("512")));
  assert.match(await page.textContent("p.shown"), /25 of 100 runs/);
  // Grouped by lr: one mean line (and band) per lr value of the filtered runs.
  await page.selectOption("select[name=group]", "optimizer.lr");
  await page.waitForSelector(".chart[data-kind=train] canvas");
  const legend = await page.$$eval(".chart[data-kind=train] .u-legend .u-series", (rows) =>
    rows.filter((r) => r.style.display !== "none").map((r) => r.textContent));
  assert.equal(legend.filter((t) => t.includes("(mean of 5)")).length, 5, legend.join("|"));
  assert.ok(legend.some((t) => t.startsWith("optimizer.lr=0.008")), legend.join("|"));
  await page.screenshot({ path: join(artifacts, "sweep-filtered-grouped.png") });
  // The URL holds the view: opened again (shared), it shows the same rows and grouping.
  const shared = await openPage(new URL(page.url()).hash);
  await shared.waitForFunction(() => document.querySelectorAll("table.jobs tbody tr").length === 25);
  assert.equal(await shared.inputValue("select[name=group]"), "optimizer.lr");
  // A bare word searches labels; an unknown key is an error that names the known ones.
  await shared.fill("input[name=filter]", "nosuchkey=3");
  await shared.press("input[name=filter]", "Enter");
  await shared.waitForSelector("p.filter-error");
  assert.match(await shared.textContent("p.filter-error"), /no field "nosuchkey".*optimizer\.name/);
  await shared.fill("input[name=filter]", "optimizer.lr=0.016 seed=1");
  await shared.press("input[name=filter]", "Enter");
  await shared.waitForFunction(() => document.querySelectorAll("table.jobs tbody tr").length === 4);
  await page.close();
  await shared.close();
});

test("named-metric panels for many runs, added and removed by name", async () => {
  const page = await openPage(`#/sweep/${scaleId}?filter=seed%3D1`);
  await page.waitForSelector("select[name=add-metric]");
  const options = await page.$$eval("select[name=add-metric] option", (o) => o.map((x) => x.value).filter(Boolean));
  assert.deepEqual(options, ["opt/lr/matrices", "opt/matrices/update_rms"]);
  await page.selectOption("select[name=add-metric]", "opt/matrices/update_rms");
  await page.waitForSelector('.chart[data-metric="opt/matrices/update_rms"] canvas');
  assert.ok(await inkedPixels(page, '.chart[data-metric="opt/matrices/update_rms"] canvas') > 2000);
  assert.match(decodeURIComponent(page.url()), /metrics=opt\/matrices\/update_rms/);
  await page.screenshot({ path: join(artifacts, "sweep-metric-panel.png") });
  await page.click('.chart[data-metric="opt/matrices/update_rms"] button.close');
  await page.waitForFunction(() => !document.querySelector('.chart[data-kind=metric]'));
  await page.close();
});

test("compare runs picked on two sweeps, from a URL that can be shared", async () => {
  const tiny = (await getJson(`/api/sweeps/${sweepId}`)).jobs;
  const page = await openPage(`#/sweep/${sweepId}`);
  await page.waitForSelector("table.jobs input.pick");
  await page.evaluate(() => localStorage.removeItem("compareRuns"));
  await page.reload();
  await page.waitForSelector("table.jobs input.pick");
  await page.check(`input.pick[data-run="${tiny[0].job_id}"]`);
  await page.check(`input.pick[data-run="${tiny[1].job_id}"]`);
  await page.goto(`${base}/#/sweep/${scaleId}`);
  await page.waitForSelector("table.jobs input.pick");
  const scale = (await getJson(`/api/sweeps/${scaleId}`)).jobs;
  await page.check(`input.pick[data-run="${scale[0].job_id}"]`);
  assert.equal(await page.textContent("#compare-link"), "Compare (3)");
  await page.click("a.compare-picked");
  await page.waitForSelector(".chart[data-kind=train] canvas");
  await page.waitForFunction(() => document.querySelectorAll("table.jobs tbody tr").length === 3);
  const url = page.url();
  assert.match(url, new RegExp(`runs=${tiny[0].job_id}(%2C|,)${tiny[1].job_id}(%2C|,)${scale[0].job_id}`));
  const sweepsShown = await page.$$eval("table.jobs tbody tr td:nth-child(2)", (tds) => tds.map((td) => td.textContent));
  assert.equal(new Set(sweepsShown).size, 2);
  assert.ok(await inkedPixels(page, ".chart[data-kind=train] canvas") > 1000);
  // The settings that differ among these runs are columns (the model differs between the sweeps).
  const header = await page.$$eval("table.jobs thead th", (ths) => ths.map((th) => th.textContent));
  assert.ok(header.includes("training.max_steps"), header.join("|"));
  await page.screenshot({ path: join(artifacts, "compare-page.png"), fullPage: true });
  // Shared: a fresh page on the same URL shows the same runs.
  const shared = await openPage(new URL(url).hash);
  await shared.waitForFunction(() => document.querySelectorAll("table.jobs tbody tr").length === 3);
  // Untick removes a run from the URL; "add runs" adds a sweep's runs by filter.
  await shared.click(`input.pick[data-run="${tiny[1].job_id}"]`);
  await shared.waitForFunction(() => document.querySelectorAll("table.jobs tbody tr").length === 2);
  assert.ok(!shared.url().includes(`${tiny[1].job_id}%2C`) && !shared.url().endsWith(`runs=${tiny[1].job_id}`));
  await shared.selectOption("select[name=add-sweep]", String(scaleId));
  await shared.fill("input[name=add-filter]", "optimizer.name=muon seed=2 training.batch_tokens=256");
  await shared.click("button.add");
  await shared.waitForFunction(() => document.querySelectorAll("table.jobs tbody tr").length === 7);
  await page.close();
  await shared.close();
});

test("charts download as PNG and SVG, tables as Markdown and LaTeX", async () => {
  // A fresh page per download: Chromium holds back a page's second unprompted download.
  const save = async (selector) => {
    const page = await openPage(`#/sweep/${sweepId}`);
    await page.waitForSelector(".chart[data-kind=lr] canvas");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(selector)]);
    const path = join(artifacts, download.suggestedFilename());
    await download.saveAs(path);
    await page.close();
    return { name: download.suggestedFilename(), bytes: readFileSync(path) };
  };
  const png = await save(".chart[data-kind=train] button.png");
  assert.equal(png.name, `sweep-${sweepId}-train-loss.png`);
  assert.deepEqual([...png.bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  assert.ok(png.bytes.length > 10000, `${png.bytes.length} bytes`);
  const svg = (await save(".chart[data-kind=train] button.svg")).bytes.toString("utf8");
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.ok((svg.match(/<path d="M/g) || []).length >= 3, "one line per label");
  assert.ok(svg.includes("&lt;b&gt;no_wd&lt;/b&gt;") && !svg.includes("<b>"), "labels are escaped");
  const lr = (await save(".chart[data-kind=lr] button.svg")).bytes.toString("utf8");
  assert.ok((lr.match(/<circle/g) || []).length > 3, "points and the chosen lrs");
  const ablation = "section:has(table.ablation)";
  const md = (await save(`${ablation} button.md`)).bytes.toString("utf8").split("\n");
  assert.match(md[0], /^\| label \| lr \| runs \| val PPL/);
  assert.match(md[1], /^\| :--- \| :--- \| :--- \| ---: \|/);
  assert.equal(md.filter((l) => l.startsWith("|")).length, 2 + (await getJson(`/api/sweeps/${sweepId}/results`)).ablation.length);
  const tex = (await save(`${ablation} button.tex`)).bytes.toString("utf8");
  assert.match(tex, /^\\begin\{tabular\}\{lllrrrrr\}/);
  assert.ok(tex.includes("$\\pm$") && tex.includes("\\textless{}b\\textgreater{}no\\_wd"), tex);
});

test("tuning view: what the search tried per row, its choice, compute, and why each job exists", async () => {
  const results = await getJson(`/api/sweeps/${tunedId}/results`);
  const stage = results.tuning.stages[0];
  assert.ok(stage.choice.extensions >= 1 && !stage.choice.at_grid_edge, JSON.stringify(stage.choice));
  const page = await openPage(`#/sweep/${tunedId}`);
  await page.waitForSelector("table.tuning");
  const row = await page.$$eval("table.tuning tbody tr td", (tds) => tds.map((td) => td.textContent));
  assert.equal(row[0], stage.row);
  assert.equal(row[3].split(" ").length, stage.values.length, row.join("|"));
  assert.match(row[4], /bracketed/);
  assert.match(row[4], new RegExp(`${stage.choice.extensions} extensions?`));
  assert.ok(Number(row[8]) > 0, "tuning FLOPs: " + row[8]);
  // The ablation table says which of the chosen lr's runs tuned it and which confirm it.
  const ablation = await page.$$eval("table.ablation tbody tr td", (tds) => tds.map((td) => td.textContent));
  assert.match(ablation[2], /2\/2 ok \(1 tuning \+ 1 confirmation\)/, ablation.join("|"));
  // The lr chart draws loss against lr for the row, and the runs table says why each run exists.
  assert.ok(await inkedPixels(page, ".panel canvas") > 1000);
  // Its log lr axis (from 1e-4) labels every tick with its value, never "0".
  await page.waitForSelector(".chart[data-kind=lr] canvas");
  const ticks = await page.$eval(".chart[data-kind=lr]", (panel) => panel.plot.axes[0]._values);
  assert.ok(ticks.length >= 2 && ticks.every((t) => t === "" || Number(t) > 0), ticks.join("|"));
  const header = await page.$$eval("table.jobs thead th", (ths) => ths.map((th) => th.textContent));
  assert.ok(header.includes("role") && header.includes("why"), header.join("|"));
  const whys = await page.$$eval("table.jobs tbody tr", (trs) => trs.map((tr) => tr.textContent));
  assert.ok(whys.some((t) => /extends row baseline upward: best at edge/.test(t)), whys.join("\n"));
  assert.ok(whys.some((t) => /confirms row baseline at lr/.test(t)), whys.join("\n"));
  await page.screenshot({ path: join(artifacts, "tuning.png"), fullPage: true });
  await page.close();
});

test("a budget ladder's cooldown is drawn as a branch from its trunk's branch point", async () => {
  const detail = await getJson(`/api/sweeps/${ladderId}`);
  const fork = detail.jobs.find((j) => j.fork && Number(j.max_steps) === 40), trunk = detail.jobs.find((j) => !j.fork);
  assert.ok(fork && trunk, "a trunk and its fork");
  assert.equal(Number(fork.fork.parent_job_id), trunk.job_id);
  const branch = Number(fork.fork.branch_step);
  assert.equal(branch, 32);
  const page = await openPage(`#/sweep/${ladderId}`);
  await page.waitForSelector('.chart.panel[data-kind="train"] canvas');
  // Per line of each panel: the first and last x (steps) it draws.
  const spans = (kind) => page.$eval(`.chart.panel[data-kind="${kind}"]`, (panel) => {
    const out = {};
    panel.plot.series.forEach((s, i) => {
      if (i === 0) return;
      const xs = panel.plot.data[0].filter((_, k) => panel.plot.data[i][k] !== null && panel.plot.data[i][k] !== undefined);
      out[s.label] = [xs[0], xs[xs.length - 1]];
    });
    return out;
  });
  // The sweep page draws each label's mean over its seeds (one seed here).
  const line = (j) => `${j.label} (mean of 1)`;
  for (const kind of ["train", "val"]) {
    const drawn = await spans(kind);
    assert.ok(drawn[line(trunk)] && drawn[line(fork)], `${kind}: lines ${JSON.stringify(Object.keys(drawn))}`);
    const [trunkFirst, trunkLast] = drawn[line(trunk)], [forkFirst, forkLast] = drawn[line(fork)];
    assert.ok(trunkFirst <= 10, `${kind}: the trunk is drawn from its start (${trunkFirst})`);
    assert.equal(trunkLast, 80);
    assert.ok(forkFirst >= branch && forkFirst <= branch + 8, `${kind}: the fork starts at its branch point (${forkFirst})`);
    assert.equal(forkLast, 40);
  }
  await page.close();
});

// The ladder's scaling fit drawn over the annealed losses it was fitted to, with its residuals.
test("a budget ladder's scaling fit: the law over its points, and the residuals", async () => {
  const results = await getJson(`/api/sweeps/${ladderId}/results`);
  const fit = results.scaling_fits[0];
  assert.ok(fit, "four budgets of one seed give a fit");
  assert.equal(fit.observations.length, 4);
  const page = await openPage(`#/sweep/${ladderId}`);
  await page.waitForSelector(".chart[data-kind=scaling] canvas");
  await page.waitForSelector(".chart[data-kind=scaling-residuals] canvas");
  assert.ok(await inkedPixels(page, ".chart[data-kind=scaling] canvas") > 500, "the law and its points are drawn");
  // The points are the API's losses, and the residuals are those minus the law at each budget.
  const drawn = await page.$eval(".chart[data-kind=scaling-residuals]", (panel) => [panel.plot.data[0], panel.plot.data[1]]);
  const law = (d) => fit.e + fit.a * Math.pow(d, -fit.alpha);
  fit.observations.forEach((o) => {
    const k = drawn[0].indexOf(Number(o.tokens));
    assert.ok(k >= 0, `budget ${o.tokens} drawn`);
    assert.ok(Math.abs(drawn[1][k] - (o.loss - law(Number(o.tokens)))) < 1e-9, `residual at ${o.tokens}`);
  });
  await page.locator(".chart[data-kind=scaling]").first().screenshot({ path: join(artifacts, "scaling-fit.png") });
  await page.close();
});

test("no page load requests anything that fails", () => {
  assert.deepEqual(failedRequests, []);
});

// A team's coordinator (docs/deploy.md): the page asks for the token once per browser session,
// keeps it in sessionStorage (not localStorage, not the URL, not a cookie), says whose token it
// is, and offers a viewer no action; a worker token is refused with the rule.
test("a viewer's token: asked once, kept for the session only, no actions", async () => {
  const teamDir = join(dir, "team");
  mkdirSync(teamDir, { recursive: true });
  const hash = (token) => execFileSync(COORDINATOR_BINARY, ["hash-token"], { input: token + "\n", encoding: "utf8" }).trim();
  writeFileSync(join(teamDir, "users.yaml"), "users:\n" +
    `  - {name: vic, role: viewer, token_sha256: ${hash("vic-t0ken")}}\n` +
    `  - {name: pool, role: worker, token_sha256: ${hash("pool-t0ken")}}\n`);
  const team = spawn(COORDINATOR_BINARY, ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", join(teamDir, "s.db"),
    "--users-file", join(teamDir, "users.yaml"), "--ports-file", join(teamDir, "ports.json")], { stdio: "ignore" });
  try {
    await until(() => existsSync(join(teamDir, "ports.json")), 20000, "the team's coordinator");
    const teamBase = `http://127.0.0.1:${JSON.parse(readFileSync(join(teamDir, "ports.json"), "utf8")).http}`;
    const context = await browser.newContext();
    const page = await context.newPage();
    const prompts = [];
    let answer = "vic-t0ken";
    page.on("dialog", (d) => { prompts.push(d.message()); d.accept(answer); });
    await page.goto(`${teamBase}/#/workers`);
    await page.waitForSelector("h1");
    await until(async () => (await page.textContent("#status")).includes("vic (viewer)"), 10000, "the header to name the viewer");
    assert.equal(prompts.length, 1);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("sweepToken")), "vic-t0ken");
    assert.equal(await page.evaluate(() => localStorage.getItem("sweepToken")), null);
    assert.equal(await page.evaluate(() => document.cookie), "");
    assert.ok(!page.url().includes("t0ken"));
    // Pages change; the token is not asked again in this session.
    await page.goto(`${teamBase}/#/`);
    await page.waitForSelector("h1");
    await page.goto(`${teamBase}/#/workers`);
    await page.waitForSelector("h1");
    assert.equal(prompts.length, 1);
    // No action for a viewer (nor for anyone: the page only reads).
    const buttons = (await page.locator("button").allTextContents()).map((t) => t.toLowerCase());
    for (const action of ["cancel", "retry", "drain", "submit"]) assert.ok(!buttons.some((b) => b.includes(action)), buttons.join(","));
    await page.screenshot({ path: join(artifacts, "viewer-page.png"), fullPage: true });
    // A new browser session asks again; a worker token is refused with the rule.
    const other = await (await browser.newContext()).newPage();
    answer = "pool-t0ken";
    other.on("dialog", (d) => { prompts.push(d.message()); d.accept(answer); });
    await other.goto(`${teamBase}/#/`);
    await until(async () => (await other.textContent("body")).includes("worker tokens may only use the worker API"), 10000,
      "the worker token's refusal");
    assert.equal(prompts.length, 2);
    await context.close();
  } finally {
    team.kill("SIGTERM");
  }
});

// TLS on the dashboard's door (docs/deploy.md): a coordinator given --tls-cert/--tls-key serves
// the page and its API over HTTPS with HSTS. Chromium is told to accept the test CA's key
// (--ignore-certificate-errors-spki-list, the server sending its chain up to that CA) and no
// other certificate; that the CA really signed the server's certificate is checked by the C++
// test with a verifying client (Orchestration.TlsCoordinatorServesClientsThatTrustItsCa).
test("the dashboard over HTTPS with HSTS", async () => {
  const tlsDir = join(dir, "tls");
  mkdirSync(tlsDir, { recursive: true });
  const sh = (cmd) => execFileSync("bash", ["-c", cmd], { cwd: tlsDir, stdio: ["ignore", "pipe", "ignore"], encoding: "utf8" });
  sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem");
  sh("openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout c.key -out c.csr");
  sh("printf 'subjectAltName=DNS:localhost\\n' > san.ext");
  sh("openssl x509 -req -in c.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out c.pem");
  sh("cat c.pem ca.pem > chain.pem");  // the server presents its chain up to the CA
  const caSpki = sh("openssl x509 -in ca.pem -pubkey -noout | openssl pkey -pubin -outform der | " +
    "openssl dgst -sha256 -binary | base64").trim();
  const secure = spawn(COORDINATOR_BINARY, ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", join(tlsDir, "s.db"),
    "--tls-cert", join(tlsDir, "chain.pem"), "--tls-key", join(tlsDir, "c.key"), "--ports-file", join(tlsDir, "ports.json")],
    { stdio: "ignore" });
  let trusting, plain;
  try {
    trusting = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", `--ignore-certificate-errors-spki-list=${caSpki}`],
    });
    plain = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
    await until(() => existsSync(join(tlsDir, "ports.json")), 20000, "the TLS coordinator");
    const port = JSON.parse(readFileSync(join(tlsDir, "ports.json"), "utf8")).http;
    const page = await trusting.newPage();
    const answer = await page.goto(`https://localhost:${port}/#/`);
    assert.equal(answer.status(), 200);
    assert.equal(answer.headers()["strict-transport-security"], "max-age=31536000");
    await page.waitForSelector("h1");
    assert.equal(await page.evaluate(async () => (await fetch("/api/sweeps")).status), 200);
    await page.screenshot({ path: join(artifacts, "https-page.png") });
    // A browser told nothing about the CA refuses the door.
    await assert.rejects(() => plain.newPage().then((p) => p.goto(`https://localhost:${port}/`)), /CERT_AUTHORITY_INVALID/);
  } finally {
    await trusting?.close();
    await plain?.close();
    secure.kill("SIGTERM");
  }
});
