// Drives the system Chromium through playwright-core (no browser download) over
// the report pages listed in a manifest, and prints one JSON document of what it
// measured; spec/report_browser_spec.lua makes the assertions.
//   node spec/browser/check_report.js MANIFEST.json
// Manifest: { chromium, out_dir, widths: [1200, 390], cases: [{ name, file, vin }] }.
// Per case and width: cells narrower than 4 characters, the visible chart's date
// labels and their rendered size, whether the queried VIN and the findings section
// are there, horizontal overflow; a full-page screenshot; per case, a print-to-PDF.
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

function measure(vin) {
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const narrow = [];
  let cells = 0;
  for (const cell of document.querySelectorAll('table td, table th')) {
    if (!visible(cell)) continue;
    cells += 1;
    const cs = getComputedStyle(cell);
    const width = cell.getBoundingClientRect().width - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight)
      - parseFloat(cs.borderLeftWidth) - parseFloat(cs.borderRightWidth);
    const font = parseFloat(cs.fontSize);
    if (width < 4 * font - 0.5) narrow.push({ text: cell.textContent.slice(0, 20), width, font });
  }
  const charts = [...document.querySelectorAll('svg.mileage-chart')].filter(visible);
  const labels = [];
  let minLabelPx = null;
  for (const svg of charts) {
    for (const t of svg.querySelectorAll('text.x-label, text.y-label')) {
      const h = t.getBoundingClientRect().height;
      minLabelPx = minLabelPx === null ? h : Math.min(minLabelPx, h);
      if (t.classList.contains('x-label')) labels.push(t.textContent);
    }
  }
  const findings = document.querySelector('section.findings');
  const doc = document.documentElement;
  return {
    cells, narrow, charts: charts.length, dateLabels: labels.filter((l) => /^\d{4}(-\d{2}){0,2}$/.test(l)),
    minLabelPx, vinPresent: document.body.innerText.includes(vin),
    findings: !!findings && visible(findings),
    scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth,
    cardRows: [...document.querySelectorAll('table.records-table tr')].filter((tr) => visible(tr)
      && getComputedStyle(tr).display === 'block').length,
  };
}

(async () => {
  const manifest = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const started = Date.now();
  const browser = await chromium.launch({
    executablePath: manifest.chromium,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const result = { cases: {} };
  try {
    for (const c of manifest.cases) {
      const out = { widths: {} };
      const url = 'file://' + path.resolve(c.file);
      for (const width of manifest.widths) {
        const page = await browser.newPage({ viewport: { width, height: 900 }, deviceScaleFactor: 1 });
        await page.goto(url);
        out.widths[width] = await page.evaluate(measure, c.vin);
        const shot = path.join(manifest.out_dir, `${c.name}-${width}.png`);
        await page.screenshot({ path: shot, fullPage: true });
        out.widths[width].screenshot = shot;
        await page.close();
      }
      const page = await browser.newPage();
      await page.goto(url);
      const pdf = path.join(manifest.out_dir, `${c.name}.pdf`);
      await page.pdf({ path: pdf, preferCSSPageSize: true, printBackground: true });
      out.pdf = pdf;
      await page.close();
      result.cases[c.name] = out;
    }
  } finally {
    await browser.close();
  }
  result.seconds = (Date.now() - started) / 1000;
  process.stdout.write(JSON.stringify(result) + '\n');
})().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
