// The dashboard's own charts rendered in headless Chromium for the reproduction reports: each
// sweep's page, curves against tokens (so that batch sizes compare at equal data), one PNG per
// chart kind. Shared by reproduction_report.mjs and reproduction_ladder_report.mjs.
//   renderPlots(args, [[name, sweepId, ["ratio", "val", ...]], ...]) -> { "name-kind": path }
// args: base (the coordinator's HTTP address), plots (the folder), out (the report, whose folder
// the returned paths are relative to).
import { mkdirSync } from "node:fs";
import { join, relative, dirname } from "node:path";
import { chromium } from "playwright-core";

export async function renderPlots(args, sweeps) {
  mkdirSync(args.plots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  const files = {};
  for (const [name, id, kinds] of sweeps) {
    const page = await browser.newPage({ viewport: { width: 1450, height: 1000 }, deviceScaleFactor: 1.5 });
    await page.goto(`${args.base}/#/sweep/${id}`);
    await page.waitForSelector(".controls select");
    await page.selectOption(".controls label:nth-child(1) select", "tokens");
    await page.waitForLoadState("networkidle");  // the page re-renders with the new axis
    for (const kind of kinds) {
      const selector = `.chart[data-kind=${kind}]`;
      const file = join(args.plots, `${name}-${kind}.png`);
      for (let attempt = 1; ; attempt++) {  // a re-render may replace the chart under us
        try {
          await page.waitForSelector(`${selector} canvas`, { timeout: 60000 });
          await page.locator(selector).first().screenshot({ path: file });
          break;
        } catch (e) {
          // The page draws no chart of a kind its results lack (the ratio chart needs an R_L(B)
          // that is not missing): say so instead of a bare timeout.
          if (attempt === 3 && (await page.locator(selector).count()) === 0)
            throw new Error(`sweep ${id}'s page has no ${kind} chart: its results have nothing to draw there ` +
                            `(for the ratio chart: every R_L(B) is missing, e.g. runs failed or did not finish; ` +
                            `sweepctl results ${id} says which)`);
          if (attempt === 3) throw e;
          await page.waitForTimeout(1000);
        }
      }
      files[`${name}-${kind}`] = relative(dirname(args.out), file);
    }
    await page.close();
  }
  await browser.close();
  return files;
}
