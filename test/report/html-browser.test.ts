import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReports } from '../../src/report/index.js';
import type { RunResult } from '../../src/run/result-types.js';
import { buildResult } from './fixtures.js';

/**
 * The HTML report, opened for real in the system's headless Chromium (Debian `chromium`, driven by
 * playwright-core; no Playwright browser download). Missing locally: skipped with the reason
 * printed; missing under CI: a failure (.ci/run installs it). The reports and screenshots stay in
 * reports/report-test/ (git-ignored) to be looked at.
 */
function findChromium(): { path: string | null; reason: string } {
  const candidates = [process.env.RMMSCALE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p);
  for (const p of candidates) if (existsSync(p)) return { path: p, reason: '' };
  const which = spawnSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return { path: which.stdout.trim(), reason: '' };
  if (process.env.CI) throw new Error('chromium is not installed under CI: the HTML report browser tests must run there (.ci/run installs the Debian package)');
  const reason = 'chromium is not installed: HTML report browser tests skipped (apt-get install chromium to run them)';
  process.stderr.write(`${reason}\n`);
  return { path: null, reason };
}

const found = findChromium();
const OUT = fileURLToPath(new URL('../../reports/report-test/', import.meta.url));

interface Opened {
  page: Page;
  errors: string[];
  foreignRequests: string[];
  dialogs: string[];
  htmlFile: string;
}

interface CanvasInfo {
  chart: string;
  width: number;
  height: number;
  painted: number;
  colored: number;
  datasets: number;
  points: number;
}

describe.skipIf(!found.path)('HTML report in headless Chromium', () => {
  let browser: Browser;
  const pages: Page[] = [];

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    browser = await chromium.launch({ executablePath: found.path!, headless: true });
  });
  afterAll(async () => {
    for (const p of pages) await p.close().catch(() => undefined);
    await browser?.close();
  });

  async function open(name: string, result: RunResult): Promise<Opened> {
    const htmlFile = join(OUT, `${name}.html`);
    await writeReports(result, { htmlFile });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    pages.push(page);
    const errors: string[] = [];
    const foreignRequests: string[] = [];
    const dialogs: string[] = [];
    const self = pathToFileURL(htmlFile).href;
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('request', (r) => {
      if (r.url() !== self) foreignRequests.push(r.url());
    });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(self);
    await page.waitForSelector('body[data-charts="done"]', { timeout: 15_000 });
    return { page, errors, foreignRequests, dialogs, htmlFile };
  }

  /** Every canvas: how many pixels are painted, how many in colour (data, not grey axes). */
  function canvases(page: Page): Promise<CanvasInfo[]> {
    return page.evaluate(() => {
      const w = globalThis as unknown as { document: any; Chart: any };
      return [...w.document.querySelectorAll('figure[data-chart] canvas')].map((c: any) => {
        const img = c.getContext('2d').getImageData(0, 0, c.width, c.height).data as Uint8ClampedArray;
        let painted = 0;
        let colored = 0;
        for (let i = 0; i < img.length; i += 4) {
          if (img[i + 3] === 0) continue;
          painted++;
          if (Math.max(img[i], img[i + 1], img[i + 2]) - Math.min(img[i], img[i + 1], img[i + 2]) > 60) colored++;
        }
        const chart = w.Chart.getChart(c);
        const datasets = chart.data.datasets as Array<{ data: unknown[] }>;
        return {
          chart: c.closest('figure').getAttribute('data-chart') as string,
          width: c.width as number,
          height: c.height as number,
          painted,
          colored,
          datasets: datasets.length,
          points: datasets.reduce((a, d) => a + d.data.length, 0),
        };
      });
    });
  }

  async function screenshot(o: Opened, name: string): Promise<string> {
    const png = join(OUT, `${name}.png`);
    await o.page.screenshot({ path: png, fullPage: true });
    process.stderr.write(`HTML report ${o.htmlFile}\n  screenshot ${png}\n`);
    return png;
  }

  it('draws every chart of a ceiling search, logs no errors and requests nothing but itself', async () => {
    const o = await open('report-search', buildResult());
    const info = await canvases(o.page);
    expect(info.map((c) => c.chart)).toEqual(['ceiling-throughput', 'ceiling-p99', 'rate', 'spectrum-ops', 'spectrum-nodes', 'utilization', 'queue', 'generator']);
    for (const c of info) {
      // Axes and labels alone paint ~2% of a canvas in grey; the data lines and fills add colour.
      expect(c.painted / (c.width * c.height), `${c.chart} painted`).toBeGreaterThan(0.03);
      expect(c.colored, `${c.chart} coloured pixels`).toBeGreaterThan(1500);
      expect(c.points, `${c.chart} points`).toBeGreaterThan(5);
    }
    expect(await o.page.locator('.nodata').count()).toBe(0);
    expect(o.errors).toEqual([]);
    expect(o.foreignRequests).toEqual([]);
    expect(await o.page.locator('.verdict').innerText()).toContain('Ceiling found: 6,500 agents');
    await screenshot(o, 'report-search');
  });

  it('shows "no data" notes, not failures, for a staged run on an external target without fit or plan', async () => {
    const o = await open('report-external', buildResult({ search: false, nodes: false, plan: false, fit: false }));
    const info = await canvases(o.page);
    // Client-side charts still draw; node charts say why they are empty.
    expect(info.map((c) => c.chart)).toEqual(['ceiling-throughput', 'ceiling-p99', 'spectrum-ops', 'generator']);
    for (const c of info) expect(c.colored, c.chart).toBeGreaterThan(500);
    const notes = await o.page.locator('figure .nodata').allInnerTexts();
    expect(notes).toEqual([
      'No data: no per-node timeline (an external target, or no node was scraped).',
      'No data: no nodes were scraped (an external target).',
      'No data: no utilization gauges (nodes without a capacity profile, or an external target).',
      'No data: no queue-depth gauges (nodes without a capacity profile, or an external target).',
    ]);
    expect(await o.page.locator('#plan .nodata').count()).toBe(1);
    expect(o.errors).toEqual([]);
    expect(o.foreignRequests).toEqual([]);
    await screenshot(o, 'report-external');
  });

  it('survives a run that ended before any window, with every chart a "no data" note', async () => {
    const r = buildResult({ search: false, nodes: false, plan: false, fit: false });
    r.windows = [];
    r.headline = null;
    r.complete = false;
    r.interrupted = true;
    r.error = 'interrupted by SIGINT';
    const o = await open('report-empty', r);
    expect(await canvases(o.page)).toEqual([]);
    expect(await o.page.locator('figure .nodata').count()).toBe(8);
    expect(await o.page.locator('.verdict').innerText()).toContain('Run ended early (interrupted by SIGINT)');
    expect(o.errors).toEqual([]);
  });

  it('puts an untrustworthy run\'s warning first, in the alert box', async () => {
    const o = await open('report-untrustworthy', buildResult({ untrustworthy: true }));
    const alert = o.page.locator('#summary .alert');
    expect(await alert.count()).toBe(1);
    const text = await alert.innerText();
    expect(text).toContain('Not trustworthy');
    expect(text).toContain('generator-bound from 7000 agents');
    expect(text).toMatch(/window #?4 \(bisect 7000 agents\): generator-bound: 4\.0% of sends/);
    expect(await o.page.locator('.verdict .badge').innerText()).toBe('UNTRUSTWORTHY');
    expect(o.errors).toEqual([]);
    await screenshot(o, 'report-untrustworthy');
  });

  it('draws the alert-delay charts for a run with an analytics node\'s alerts, after the others', async () => {
    const o = await open('report-alert-delay', buildResult({ alertDelays: true }));
    const info = await canvases(o.page);
    expect(info.map((c) => c.chart)).toEqual(['ceiling-throughput', 'ceiling-p99', 'rate', 'spectrum-ops', 'spectrum-nodes', 'utilization', 'queue', 'generator', 'alert-delay', 'alert-delay-timeline']);
    const bars = info.find((c) => c.chart === 'alert-delay')!;
    expect([bars.datasets, bars.points]).toEqual([4, 8]);
    expect(bars.colored).toBeGreaterThan(500);
    const line = info.find((c) => c.chart === 'alert-delay-timeline')!;
    expect(line.datasets).toBe(2);
    expect(line.colored).toBeGreaterThan(1500);
    expect(o.errors).toEqual([]);
    expect(o.foreignRequests).toEqual([]);
    await screenshot(o, 'report-alert-delay');
  });

  it('escapes hostile text: no injected element runs or renders', async () => {
    const o = await open('report-hostile', buildResult({ hostileText: true }));
    expect(o.dialogs).toEqual([]);
    expect(await o.page.locator('img').count()).toBe(0);
    expect(await o.page.locator('b').count()).toBe(0);
    expect(await o.page.locator('h1').innerText()).toBe('rmmscale report: split3 <img src=x onerror=alert(1)> "ceiling"');
    expect(await o.page.locator('#warnings').innerText()).toContain('<script>alert("warning")</script> & a | pipe');
    // Scripts: the JSON data, Chart.js and the chart code, nothing injected.
    expect(await o.page.locator('script').count()).toBe(3);
    expect((await canvases(o.page)).length).toBe(8);
    expect(o.errors).toEqual([]);
  });
});
