// What the section reports (reproduction_tuning_report.mjs, reproduction_transfer_report.mjs,
// reproduction_ladder_report.mjs) share: their flags, the sweeps they read from the coordinator's
// HTTP API, a part's run-info, its results tables, and writing one section between its markers.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";

// "--base URL --sweeps '1 2'" -> { base: "URL", sweeps: "1 2" }
export const parseArgs = (argv = process.argv.slice(2)) =>
  Object.fromEntries(argv.reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []));

export const getJson = async (base, path) => (await fetch(base + path)).json();

// Each sweep's detail (GET /api/sweeps/ID) and results, by id, with the words a report says of them.
export async function loadSweeps(base, ids) {
  const sweeps = {};
  for (const id of ids)
    sweeps[id] = { detail: await getJson(base, `/api/sweeps/${id}`), results: await getJson(base, `/api/sweeps/${id}/results`) };
  return {
    sweeps,
    results: (id) => sweeps[id].results,
    jobs: (id) => sweeps[id].detail.jobs.length,
    states: (id) => Object.entries(sweeps[id].detail.sweep.jobs_by_state).map(([k, v]) => `${v} ${k}`).join(", "),
    // Every job that failed for good, with its message: a failed tuning run ranks its lr after
    // the others, so a reader must see it beside the choices it may have moved.
    failures: () => Object.entries(sweeps).flatMap(([id, s]) => s.detail.jobs.filter((j) => j.state === "FAILED")
      .map((j) => `sweep ${id} job ${j.job_id} (${j.label}, seed ${j.seed}): ${j.message.trim().replace(/:$/, "") || "no message"}`)),
  };
}

// A part's run-info: key=value words (started, commit, seconds) that reproduce.sh writes.
export const readRunInfo = (file) => Object.fromEntries((file && existsSync(file) ? readFileSync(file, "utf8") : "")
  .split(/\s+/).filter((w) => w.includes("=")).map((kv) => kv.split("=")));

// `sweepctl results --format md` of a sweep, its headings one level down.
export const resultsMd = (dir, id) => readFileSync(join(dir, `results-${id}.md`), "utf8").replace(/^### /gm, "#### ");

// Writes `section` (BEGIN ... END) into `out` in place of the last one; a file without one gets
// it from place(text, section), by default at its end.
export function writeSection(out, BEGIN, END, section, what,
                             place = (old, s) => old.trimEnd() + "\n\n" + s) {
  const old = existsSync(out) ? readFileSync(out, "utf8") : "";
  const begin = old.indexOf(BEGIN), end = old.indexOf(END);
  writeFileSync(out, begin >= 0 && end > begin ? old.slice(0, begin) + section + old.slice(end + END.length + 1) : place(old, section));
  console.log(`wrote the ${what} section of ${out}`);
}
