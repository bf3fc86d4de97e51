import { describe, expect, it } from 'vitest';
import { embedJson, renderHtml } from '../../src/report/html.js';
import { buildResult } from './fixtures.js';

/** The HTML as text: self-contained, escaped, data embedded. (html-browser.test.ts renders it.) */
describe('HTML report (as a file)', () => {
  it('is self-contained: Chart.js inlined, no remote script, stylesheet, image or source map', async () => {
    const html = await renderHtml(buildResult());
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('Chart.js v4');
    // No element loads anything: no src= or href= pointing outside, no <link>, no source map.
    expect(html).not.toMatch(/<(script|img|iframe|link)\b[^>]*\b(src|href)\s*=/i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toMatch(/sourceMappingURL/);
    expect(html).toContain(`content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html.match(/<script\b/g)).toHaveLength(3);
  });

  it('embeds the chart data as JSON that parses back', async () => {
    const html = await renderHtml(buildResult());
    const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
    const data = JSON.parse(m![1]) as { ceiling: { ceilingLoad: number }; rate: unknown[] };
    expect(data.ceiling.ceilingLoad).toBe(6500);
    expect(data.rate).toHaveLength(6);
  });

  it('escapes every piece of user text, in the markup and in the embedded JSON', async () => {
    const html = await renderHtml(buildResult({ hostileText: true }));
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<b>bold</b>');
    expect(html).toContain('split3 &lt;img src=x onerror=alert(1)&gt; &quot;ceiling&quot;');
    expect(html).toContain('&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;');
    // Window labels reach the JSON: `<` is \u003c there, so no `</script>` closes the data early.
    expect(html).toContain('step 2000 agents \\u003cb>bold\\u003c/b> | pipe');
    expect(embedJson({ s: '</script><!--' })).toBe('{"s":"\\u003c/script>\\u003c!--"}');
  });

  it('adds the alert-delay charts, with their data, only to a run with alert delays', async () => {
    const r = buildResult({ alertDelays: true });
    const html = await renderHtml(r);
    expect(html).toContain('<figure data-chart="alert-delay"><figcaption>Alert delay per fault: during it against the clean part of its stage</figcaption>');
    expect(html).toContain('<figure data-chart="alert-delay-timeline"><figcaption>Alert delay over time</figcaption>');
    const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
    const data = JSON.parse(m![1]) as { alertDelay: Array<{ label: string; during: { p50Ms: number } | null; clean: { p50Ms: number } | null }>; alertDelayTimeline: Array<{ label: string; points: unknown[] }> };
    // Each fault's p50 during it and in the clean part, as the run computed them.
    const [slow, kill] = r.faults;
    expect(data.alertDelay.map((b) => [b.label, b.during?.p50Ms, b.clean?.p50Ms])).toEqual([
      ['slow analytics ×10 30 s at 51.2 s', slow!.alertDelayMs!.p50Ms, slow!.alertDelayCleanMs!.p50Ms],
      ['kill relay-2 at 120.4 s', kill!.alertDelayMs!.p50Ms, kill!.alertDelayCleanMs!.p50Ms],
    ]);
    // The simulated slowdown shows: the slowed analytics node's p50 is above its clean part's.
    expect(slow!.alertDelayMs!.p50Ms).toBeGreaterThan(1.5 * slow!.alertDelayCleanMs!.p50Ms);
    expect(data.alertDelayTimeline.map((s) => [s.label, s.points.length])).toEqual([
      ['p50', r.alertDelayTimeline!.length],
      ['p99', r.alertDelayTimeline!.length],
    ]);
    // Without them, the page is as before: no figure, empty data.
    const plain = await renderHtml(buildResult());
    expect(plain).not.toContain('data-chart="alert-delay');
    const pm = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(plain);
    expect((JSON.parse(pm![1]) as { alertDelay: unknown[] }).alertDelay).toEqual([]);
  });

  it('renders a result with no windows, no headline, no nodes, no search, no fit, no plan', async () => {
    const r = buildResult({ search: false, nodes: false, plan: false, fit: false });
    r.windows = [];
    r.headline = null;
    r.timeline = {};
    const html = await renderHtml(r);
    expect(html).toContain('No plan in this result');
    expect(html).toContain('No headline window');
    expect(html).toContain('<span class="badge">INCOMPLETE</span>');
  });
});
