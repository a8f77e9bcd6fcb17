// Draws `trainer coord-check --json` results as one PNG (docs/science/coord-check.png): a panel
// per file, RMS(ΔW·x) of every projection against width on log-log axes, the logits in black.
// Flat lines are muP's promise; rising ones are the standard parametrization's.
//   node scripts/coord_check_plot.mjs OUT.png A.json B.json ...
// Renders an SVG in headless Chromium (the same browser the dashboard tests use).
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [out, ...inputs] = process.argv.slice(2);
if (!out || inputs.length === 0) {
  console.error("usage: node scripts/coord_check_plot.mjs OUT.png A.json [B.json ...]");
  process.exit(2);
}
const results = inputs.map((f) => JSON.parse(readFileSync(f, "utf8")));

const W = 420, H = 320, M = { l: 58, r: 12, t: 34, b: 42 };
const colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];

function panel(r, x0) {
  const series = r.series.filter((s) => s.figure === "update");
  const all = series.flatMap((s) => s.rms).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...all))), hi = Math.ceil(Math.log10(Math.max(...all)));
  const wx = (w) => x0 + M.l + (Math.log(w / r.widths[0]) / Math.log(r.widths.at(-1) / r.widths[0])) * (W - M.l - M.r);
  const wy = (v) => M.t + (1 - (Math.log10(v) - lo) / (hi - lo)) * (H - M.t - M.b);
  let svg = `<text x="${x0 + W / 2}" y="18" text-anchor="middle" font-size="14">${r.label}</text>`;
  svg += `<rect x="${x0 + M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" fill="none" stroke="#999"/>`;
  for (let e = lo; e <= hi; e++)
    svg += `<text x="${x0 + M.l - 6}" y="${wy(10 ** e) + 4}" text-anchor="end" font-size="11">1e${e}</text>`;
  for (const w of r.widths)
    svg += `<text x="${wx(w)}" y="${H - M.b + 16}" text-anchor="middle" font-size="11">${w}</text>`;
  svg += `<text x="${x0 + W / 2}" y="${H - 6}" text-anchor="middle" font-size="12">width</text>`;
  series.forEach((s, i) => {
    const logits = s.projection === "logits";
    const points = s.rms.map((v, k) => `${wx(r.widths[k])},${wy(v)}`).join(" ");
    svg += `<polyline points="${points}" fill="none" stroke="${logits ? "#000" : colours[i % colours.length]}" stroke-width="${logits ? 2.5 : 1.2}"/>`;
  });
  const worst = Math.max(...r.series.map((s) => Math.abs(s.slope)));
  svg += `<text x="${x0 + M.l + 6}" y="${M.t + 14}" font-size="11">largest |slope| ${worst.toFixed(2)}</text>`;
  return svg;
}

const width = W * results.length;
const body = results.map((r, i) => panel(r, i * W)).join("");
const html = `<html><body style="margin:0;background:#fff;font-family:sans-serif">
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H + 20}">${body}
<text x="8" y="${H + 14}" font-size="11">RMS(ΔW·x) of every projection (colours) and of the logits' change (black), mean over seeds, against width</text></svg></body></html>`;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = await browser.newPage({ viewport: { width, height: H + 20 }, deviceScaleFactor: 1.5 });
await page.setContent(html);
await page.screenshot({ path: out, fullPage: true });
await browser.close();
console.log(`wrote ${out}`);
