import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { chartData } from '../../src/report/chart-data.js';
import { CHARTS_CLIENT_JS } from '../../src/report/charts-client.js';
import { buildResult } from './fixtures.js';
import type { RunResult } from '../../src/run/result-types.js';

/**
 * The page's chart script run for real, without a browser: in a VM context with just the DOM and
 * Chart.js surface it touches (the figures, their holders, a Chart constructor that keeps each
 * configuration). html-browser.test.ts draws the same script in Chromium where one is installed;
 * this one runs everywhere and checks what each chart is given.
 */

interface Built {
  configs: Map<string, ChartConfig>;
  notes: Map<string, string>;
  errors: string[];
  done: boolean;
}

interface ChartConfig {
  type: string;
  data: { labels?: string[]; datasets: Array<{ label: string; data: unknown[]; alerts?: number[] }> };
  options: { scales: Record<string, unknown>; plugins?: { tooltip?: { callbacks?: { label?: (it: unknown) => string } } } };
  plugins?: Array<{ id: string }>;
}

function runClient(r: RunResult, charts: string[]): Built {
  const configs = new Map<string, ChartConfig>();
  const notes = new Map<string, string>();
  const errors: string[] = [];
  let done = false;
  const el = (tag: string): Record<string, unknown> => ({ tag, attrs: {} as Record<string, string>, textContent: '', className: '', setAttribute(k: string, v: string) { (this.attrs as Record<string, string>)[k] = v; } });
  const figures = charts.map((name) => {
    const holder = {
      children: [] as Array<Record<string, unknown>>,
      classList: { add: () => undefined },
      appendChild(c: Record<string, unknown>) {
        this.children.push(c);
        if (c.tag === 'p') notes.set(name, String(c.textContent));
        if (c.tag === 'canvas') c.figure = name;
      },
    };
    return {
      getAttribute: () => name,
      querySelector: (sel: string) => (sel === '.chart' ? holder : { textContent: name }),
    };
  });
  function Chart(canvas: { figure: string }, cfg: ChartConfig): void {
    configs.set(canvas.figure, cfg);
  }
  Chart.defaults = { font: {}, plugins: { legend: { labels: {} } } };
  const document = {
    getElementById: () => ({ textContent: JSON.stringify(chartData(r)) }),
    querySelectorAll: () => figures,
    createElement: el,
    body: { setAttribute: (k: string, v: string) => (done = k === 'data-charts' && v === 'done') },
  };
  runInNewContext(CHARTS_CLIENT_JS, { document, Chart, console: { error: (m: string) => errors.push(m) } });
  return { configs, notes, errors, done };
}

describe('the page script: alert-delay charts', () => {
  it('per fault: p50 and p99 during it and in the clean part, with the alert counts in the tooltip', () => {
    const r = buildResult({ alertDelays: true });
    const b = runClient(r, ['rate', 'alert-delay', 'alert-delay-timeline']);
    expect(b.errors).toEqual([]);
    expect(b.done).toBe(true);
    const cfg = b.configs.get('alert-delay')!;
    expect(cfg.type).toBe('bar');
    expect(cfg.data.labels).toEqual(['slow analytics ×10 30 s at 51.2 s', 'kill relay-2 at 120.4 s']);
    const [slow, kill] = r.faults;
    const series = Object.fromEntries(cfg.data.datasets.map((d) => [d.label, d.data]));
    expect(series).toEqual({
      'p50 during the fault': [slow!.alertDelayMs!.p50Ms, kill!.alertDelayMs!.p50Ms],
      'p50 clean (same stage)': [slow!.alertDelayCleanMs!.p50Ms, kill!.alertDelayCleanMs!.p50Ms],
      'p99 during the fault': [slow!.alertDelayMs!.p99Ms, kill!.alertDelayMs!.p99Ms],
      'p99 clean (same stage)': [slow!.alertDelayCleanMs!.p99Ms, kill!.alertDelayCleanMs!.p99Ms],
    });
    const label = cfg.options.plugins!.tooltip!.callbacks!.label!;
    expect(label({ dataset: cfg.data.datasets[0], parsed: { y: slow!.alertDelayMs!.p50Ms }, dataIndex: 0 })).toBe(
      `p50 during the fault: ${slow!.alertDelayMs!.p50Ms.toLocaleString('en-US', { maximumFractionDigits: 1 })} ms (${slow!.alertDelayMs!.alerts} alerts)`,
    );
  });

  it('the timeline: p50 and p99 per second, on the time axis with the window bands and fault markers', () => {
    const r = buildResult({ alertDelays: true });
    const cfg = runClient(r, ['alert-delay-timeline']).configs.get('alert-delay-timeline')!;
    expect(cfg.data.datasets.map((d) => [d.label, d.data.length])).toEqual([
      ['p50', r.alertDelayTimeline!.length],
      ['p99', r.alertDelayTimeline!.length],
    ]);
    expect(cfg.data.datasets[1]!.data[0]).toEqual({ x: r.alertDelayTimeline![0]!.tSec, y: r.alertDelayTimeline![0]!.p99Ms });
    // The same plugin as the other timelines: window bands and a dashed line per fault.
    expect(cfg.plugins!.map((p) => p.id)).toEqual(['rmmWindowBands']);
  });

  it('a result without alert delays: a figure asked for anyway says "no data", it does not fail', () => {
    const b = runClient(buildResult(), ['alert-delay', 'alert-delay-timeline']);
    expect(b.errors).toEqual([]);
    expect([...b.configs.keys()]).toEqual([]);
    expect(b.notes.get('alert-delay')).toBe('No data: no alert delay measured (a stack without an analytics node, or no alert raised).');
    expect(b.notes.get('alert-delay-timeline')).toBe('No data: no alert delay per second in this result.');
  });
});
