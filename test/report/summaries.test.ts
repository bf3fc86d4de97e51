import { describe, expect, it } from 'vitest';
import { createLatencyHistogram, decodeHistogram, recordUs } from '../../src/metrics/histogram.js';
import { chartData, spectrumPoints } from '../../src/report/chart-data.js';
import { fmtUs } from '../../src/core/format.js';
import { latencySection } from '../../src/report/html-sections.js';
import { renderMarkdown, terminalSummary, verdictOf } from '../../src/report/index.js';
import { buildResult, withoutP95 } from './fixtures.js';

/** The fields of a fault entry these tests do not vary: a fault of stage 2 that clients saw no errors from. */
const FAULT_BASE = { stage: 2, bySec: null, fraction: null, error: null, errorsSec: 0, errors: 0, dropped: null, reconnect: null, relayPeakConnectsPerSec: null, reconnectCurve: null } as const;

const search = buildResult();
const staged = buildResult({ search: false, nodes: false, plan: false, fit: false });
const untrusted = buildResult({ untrustworthy: true });

describe('verdict', () => {
  it.each([
    ['a ceiling search that found one', search, 'pass', /^Ceiling found: 6,500 agents \(325 req\/s\), limited by web-agent; the first load over the SLO was 7,000 agents\. Plan for 20,000 agents: not feasible, app saturates first at 14,000 agents$/],
    ['a staged run within its SLO', staged, 'pass', /^SLO met at 5,000 agents \(250 req\/s achieved\)$/],
    ['a search stopped by the generator', untrusted, 'untrustworthy', /^No ceiling: the load generator or host saturated before the stack did \(last good 6,500 agents\)/],
  ] as const)('%s', (_name, r, status, headline) => {
    const v = verdictOf(r);
    expect(v.status).toBe(status);
    expect(v.headline).toMatch(headline);
  });

  it('a staged run that broke its SLO fails with the breaches', () => {
    const r = buildResult({ search: false, plan: false, fit: false });
    r.windows[1].verdict = { ok: false, breaches: ['p99 250.0 ms > 200.0 ms'] };
    r.summary.limitingTier = 'web-agent';
    expect(verdictOf(r)).toMatchObject({ status: 'fail', headline: 'SLO breached at 5,000 agents: p99 250.0 ms > 200.0 ms, limited by web-agent' });
  });

  it('generator-bound windows become warnings, each once, after the summary warnings', () => {
    expect(verdictOf(untrusted).warnings).toEqual([
      'generator-bound from 7000 agents: the load generator, not the stack, limited the search',
      'window 2 (step 8000 agents): generator-bound: 4.0% of sends left more than 50 ms after their intended time (limit 1%); scheduling lag p99 61.0 ms',
      'window 4 (bisect 7000 agents): generator-bound: 4.0% of sends left more than 50 ms after their intended time (limit 1%); scheduling lag p99 61.0 ms',
    ]);
  });

  it('with GeneratorTrust recorded: an untrusted window says how it was judged; a trusted one with rig trouble says why its verdict holds', () => {
    const r = buildResult({ untrustworthy: true });
    const judged = (trustworthy: boolean, judgedAs: 'could-flip' | 'breach-holds', why: string) =>
      ({ trustworthy, judgedAs, why, error: {} as never, bounds: null });
    // Windows 2 and 4 of the fixture are generator-bound.
    r.windows[2].generator.trust = judged(false, 'could-flip', 'the SLO broke (p99 1,010 ms > 1,000 ms) but within the rig\'s error it could have held');
    r.windows[4].generator.trustworthy = true;
    r.windows[4].generator.trust = judged(true, 'breach-holds', 'the breach holds with the rig\'s error removed: p99 2,692 ms > 1,000 ms');
    const w = verdictOf(r).warnings;
    expect(w).toContain("window 2 (step 8000 agents): not trustworthy (could-flip; generator-bound): the SLO broke (p99 1,010 ms > 1,000 ms) but within the rig's error it could have held");
    expect(w).toContain(
      "window 4 (bisect 7000 agents): generator-bound (4.0% of sends left more than 50 ms after their intended time (limit 1%); scheduling lag p99 61.0 ms), but the verdict holds (breach-holds): the breach holds with the rig's error removed: p99 2,692 ms > 1,000 ms",
    );
  });

  it('does not repeat a window reason the summary already quotes; says when no load was good', () => {
    const r = buildResult({ untrustworthy: true });
    r.summary.warnings = [`step 3: not trustworthy: ${r.windows[2].generator.reasons[0]}`];
    r.search!.lastGood = null;
    const v = verdictOf(r);
    expect(v.warnings).toEqual([r.summary.warnings[0]]);
    expect(v.headline).toMatch(/^No ceiling: the load generator or host saturated before the stack did \(no load met the SLO before that\)/);
  });
});

describe('Markdown summary', () => {
  const md = renderMarkdown(search);

  it('has the verdict, the ceiling per tier with the fixture numbers, and the limiting tier', () => {
    expect(md).toContain('## rmmscale: split3-ceiling: PASS');
    expect(md).toContain('**Ceiling:** 6,500 agents, 325 req/s · **Limiting tier:** web-agent');
    const rows = md.split('\n').filter((l) => /^\| (proxy|web-agent|web-user|app|db)\b/.test(l));
    expect(rows.slice(0, 5)).toEqual([
      '| proxy | – | – | unknown: no capacity model |',
      '| web-agent (limiting) | 6,500 | 325 req/s | limiting: utilization 0.96, queue growing |',
      '| web-user | – | 120 req/s | estimated: utilization 0.13 at the ceiling |',
      '| app | 14,000 | 420 req/s | estimated: utilization 0.46 at the ceiling |',
      '| db | 21,400 | 900 req/s | estimated: utilization 0.30 at the ceiling |',
    ]);
    // The same numbers as the result's summary, whatever the fixture's noise.
    for (const t of search.summary.tiers) if (t.ceilingAgents) expect(md).toContain(`| ${t.ceilingAgents.toLocaleString('en-US')} |`);
  });

  it('has the key latencies of the headline window', () => {
    const ops = search.headline!.client.ops;
    expect(md).toContain('### Key latencies at 6,500 agents (window #5, bisect 6500 agents)');
    for (const op of ['checkin', 'heartbeat', 'inventory']) {
      const p99Ms = ops[op].latency.p99Us / 1000;
      expect(md).toMatch(new RegExp(`^\\| ${op} \\| [\\d,]+ \\| 0\\.00% \\|.*\\| ${p99Ms >= 100 ? Math.round(p99Ms) : p99Ms.toFixed(1)} ms \\|`, 'm'));
    }
  });

  it('has the plan, with the single-instance tier that cannot carry the fleet', () => {
    expect(md).toContain('### Plan for 20,000 agents: not feasible');
    expect(md).toContain('| app | 1 | 600 req/s | 420 req/s | -42.9% | 14,000 | no spare node |');
  });

  it('opens an untrustworthy run with a caution and every warning', () => {
    const u = renderMarkdown(untrusted);
    expect(u).toContain('## rmmscale: split3-ceiling: UNTRUSTWORTHY');
    expect(u).toMatch(/> \[!CAUTION\]\n> \*\*Not trustworthy:\*\*.*\n> - generator-bound from 7000 agents/);
    expect(u.indexOf('[!CAUTION]')).toBeLessThan(u.indexOf('Key latencies'));
  });

  it('keeps user text from breaking tables or injecting HTML', () => {
    const h = renderMarkdown(buildResult({ hostileText: true }));
    expect(h).toContain('## rmmscale: split3 &lt;img src=x onerror=alert(1)> "ceiling": PASS');
    expect(h).toContain('> - &lt;script>alert("warning")&lt;/script> & a \\| pipe');
    expect(h).not.toMatch(/<(img|script|b)\b/);
  });

  it('says plainly that a staged run on an external target has no ceiling, fit or plan', () => {
    const s = renderMarkdown(staged);
    expect(s).toContain('**Ceiling:** none measured (a staged run does not search for one) · **Limiting tier:** –');
    expect(s).not.toContain('### Plan');
    expect(s).toContain('external target http://127.0.0.1:8080');
  });
});

describe('terminal summary', () => {
  it('is a compact aligned table: verdict, tiers, latencies, plan', () => {
    const t = terminalSummary(search).split('\n');
    expect(t[0]).toMatch(/^PASS: Ceiling found: 6,500 agents/);
    expect(t.slice(2, 9)).toEqual([
      '  tier         agents  req/s  why it stops there',
      '  proxy             –      –  unknown: no capacity model',
      '  web-agent *   6,500    325  limiting: utilization 0.96, queue growing',
      '  web-user          –    120  estimated: utilization 0.13 at the ceiling',
      '  app          14,000    420  estimated: utilization 0.46 at the ceiling',
      '  db           21,400    900  estimated: utilization 0.30 at the ceiling',
      '  * limiting tier: web-agent',
    ]);
    expect(t).toContain('  op         requests  errors      p50      p90     p95     p99   p99.9     max');
    expect(t).toContain('plan for 20,000 agents: NOT feasible; web-agent ×9, app ×1, db ×1');
  });

  it('shouts when the run is not trustworthy, and lists why', () => {
    const t = terminalSummary(untrusted);
    expect(t).toMatch(/^UNTRUSTWORTHY: /);
    expect(t).toContain('!! NOT TRUSTWORTHY: the load generator or the host saturated');
    expect(t).toContain('  - window 4 (bisect 7000 agents): generator-bound: 4.0% of sends');
  });
});

describe('latency tables: p50, p90, p95, p99, p99.9 and max, in every report', () => {
  // The headline window of the search fixture (seeded: the same numbers every run).
  const checkin = search.headline!.client.ops.checkin;
  /** A percentile straight from the operation's stored histogram, as the tables print it. */
  const fromHistogram = (op: string, p: number): string => fmtUs(decodeHistogram(search.headline!.client.ops[op].histograms.corrected).getValueAtPercentile(p));

  it('the p95 column is the histogram\'s p95: between p90 and p99, a value of its own', () => {
    expect(checkin.latency.p95Us).toBe(102_143);
    for (const op of ['checkin', 'heartbeat', 'inventory']) {
      const l = search.headline!.client.ops[op].latency;
      expect(fmtUs(l.p95Us)).toBe(fromHistogram(op, 95));
      expect(l.p95Us).toBeGreaterThan(l.p90Us);
      expect(l.p95Us).toBeLessThan(l.p99Us);
    }
  });

  it('terminal: the columns in order, aligned, with the fixture\'s values', () => {
    const t = terminalSummary(search).split('\n');
    const head = t.indexOf('  op         requests  errors      p50      p90     p95     p99   p99.9     max');
    expect(head).toBeGreaterThan(0);
    expect(t.slice(head + 1, head + 5)).toEqual([
      '  all           1,950   0.00%  27.9 ms  82.7 ms  103 ms  158 ms  252 ms  267 ms',
      '  checkin       1,170   0.00%  26.9 ms  81.3 ms  102 ms  162 ms  225 ms  252 ms',
      '  heartbeat       585   0.00%  27.5 ms  82.9 ms  102 ms  160 ms  267 ms  267 ms',
      '  inventory       195   0.00%  33.0 ms  85.7 ms  108 ms  135 ms  154 ms  154 ms',
    ]);
    expect(t[head + 2].split(/\s{2,}/).slice(4, 10)).toEqual([50, 90, 95, 99, 99.9, 100].map((p) => fromHistogram('checkin', p)));
  });

  it('Markdown: a p95 column between p90 and p99', () => {
    const md = renderMarkdown(search);
    expect(md).toContain('| Operation | Requests | Errors | p50 | p90 | p95 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    expect(md).toContain('| checkin | 1,170 | 0.00% | 26.9 ms | 81.3 ms | 102 ms | 162 ms | 225 ms | 252 ms |');
    expect(md).toContain('| inventory | 195 | 0.00% | 33.0 ms | 85.7 ms | 108 ms | 135 ms | 154 ms | 154 ms |');
  });

  it('HTML: a p95 column between p90 and p99, before the service-time p99', () => {
    const html = latencySection(search);
    expect(html).toContain('<th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>service p99</th>');
    const cells = (row: string): string[] => [...row.matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]);
    const checkinRow = html.split('<tr>').find((r) => r.startsWith('<td>checkin</td>'))!;
    expect(cells(checkinRow)).toEqual(['checkin', '1,170', '0.00%', '26.9 ms', '81.3 ms', '102 ms', '162 ms', '225 ms', '252 ms', fmtUs(checkin.serviceTime.p99Us)]);
  });

  it('a result.json from before p95 was recorded: "–" in the p95 column, everything else as before', () => {
    const old = withoutP95(search);
    expect(old.headline!.client.ops.checkin.latency).not.toHaveProperty('p95Us');
    expect(terminalSummary(old)).toContain('  checkin       1,170   0.00%  26.9 ms  81.3 ms    –  162 ms  225 ms  252 ms');
    expect(renderMarkdown(old)).toContain('| checkin | 1,170 | 0.00% | 26.9 ms | 81.3 ms | – | 162 ms | 225 ms | 252 ms |');
    expect(latencySection(old)).toContain('<td class="num">81.3 ms</td><td>–</td><td class="num">162 ms</td>');
  });
});

describe('chart data', () => {
  it('HDR spectrum: x = 1/(1−p), ten points a decade up to the sample count, then the max', () => {
    const h = createLatencyHistogram();
    for (let us = 10; us <= 1000; us += 10) recordUs(h, us); // 100 values, exact below 2048 µs
    const pts = spectrumPoints(h);
    expect(pts.length).toBe(22);
    expect(pts[0]).toEqual([1, 0.01]); // p0: the minimum
    expect(pts[10]).toEqual([10, 0.9]); // p90
    expect(pts[20]).toEqual([100, 0.99]); // p99
    expect(pts[21]).toEqual([100, 1]); // the maximum, at the sample's resolution
    expect(spectrumPoints(createLatencyHistogram())).toEqual([]);
  });

  it('a search on split3: nodes in tier order, stacked by tier; windows sorted by load; the USL curve', () => {
    const d = chartData(search);
    expect(d.rate.map((s) => `${s.label}/${s.group}`)).toEqual(['proxy/proxy', 'web-agent-1/web-agent', 'web-agent-2/web-agent', 'web-user-1/web-user', 'app/app', 'db/db']);
    expect(d.rate[1].points.length).toBe(240);
    expect(d.spectrum.window).toBe('window #5 (bisect 6500 agents)');
    expect(d.spectrum.nodes.map((s) => s.label)).toEqual(['db', 'app', 'web-agent-1', 'web-agent-2', 'web-user-1', 'proxy']);
    expect(d.spectrum.ops.map((s) => s.label)).toEqual(['checkin', 'heartbeat', 'inventory']);
    expect(d.ceiling.loadAxis).toBe('agents');
    expect(d.ceiling.points.map((p) => [p.load, p.ok])).toEqual([[2000, true], [4000, true], [6000, true], [6500, true], [7000, false], [8000, false]]);
    expect(d.ceiling.ceilingLoad).toBe(6500);
    expect(d.ceiling.usl?.curve.length).toBe(80);
    expect(d.utilization.map((s) => s.label)).toEqual(['web-agent', 'web-user', 'app', 'db (db queries)']);
    expect(d.queue.map((s) => s.label)).toEqual(['web-agent', 'web-user', 'app', 'db (db queries)']);
    expect(d.generator.map((g) => g.label)).toEqual(['#0 step 2000 agents', '#1 step 4000 agents', '#2 step 8000 agents', '#3 bisect 6000 agents', '#4 bisect 7000 agents', '#5 bisect 6500 agents']);
    expect(d.bands[0]).toEqual({ label: 'step 2000 agents', fromSec: 10, toSec: 40, ok: true });
    expect(d.faults).toEqual([]);
  });

  it('marks each fault that ran on the time charts; a failed or skipped one is not drawn', () => {
    const r = structuredClone(search);
    const base = { stage: 1, forSec: null, bySec: null, fraction: null, error: null, errorsSec: 0, errors: 0, dropped: null, reconnect: null, relayPeakConnectsPerSec: null, reconnectCurve: null } as const;
    r.faults = [
      { ...base, at: 10, action: 'kill', node: 'web-agent-1', firedAtSec: 12.5, outcome: 'done' },
      { ...base, at: 20, action: 'slow', node: 'db', bySec: 0.2, forSec: 30, firedAtSec: 22.5, outcome: 'done' },
      { ...base, at: 30, action: 'disconnect', node: null, fraction: 0.1, firedAtSec: 32.5, outcome: 'done', dropped: 100 },
      { ...base, at: 40, action: 'restart', node: 'relay-9', firedAtSec: 42.5, outcome: 'failed', error: 'no such node', errorsSec: null, errors: null },
      { ...base, at: 50, action: 'stop', node: 'db', forSec: 5, firedAtSec: null, outcome: 'skipped', errorsSec: null, errors: null },
    ];
    expect(chartData(r).faults).toEqual([
      { label: 'kill web-agent-1', atSec: 12.5 },
      { label: 'slow db +200 ms 30 s', atSec: 22.5 },
      { label: 'disconnect 10%', atSec: 32.5 },
    ]);
    // summary.md lists every fault, with its outcome and how long clients saw errors.
    const md = renderMarkdown(r);
    expect(md).toContain('| 10 s (stage 1) | kill web-agent-1 | 12.5 s | done | none |');
    expect(md).toContain('| 20 s (stage 1) | slow db +200 ms for 30 s | 22.5 s | done | none |');
    expect(md).toContain('| 30 s (stage 1) | disconnect 10% (100 tunnels) | 32.5 s | done | none |');
    expect(md).toContain('| 40 s (stage 1) | restart relay-9 | 42.5 s | failed: no such node | – |');
    expect(md).toContain('| 50 s (stage 1) | stop db for 5 s | – | skipped | – |');
    // A result written before faults existed has none.
    delete (r as Partial<typeof r>).faults;
    expect(chartData(r).faults).toEqual([]);
    expect(renderMarkdown(r)).not.toContain('### Faults');
    expect(chartData(r).reconnect).toEqual([]);
  });

  it("a slow by a factor, and the analytics node's alert delay: a column when measured, and the run's line", () => {
    const r = structuredClone(search);
    r.faults = [
      { ...FAULT_BASE, at: 20, action: 'slow', node: 'analytics', byFactor: 10, forSec: 30, firedAtSec: 51.2, outcome: 'done', alertDelayMs: { alerts: 286, p50Ms: 317, p99Ms: 1260, maxMs: 1372 }, alertDelayCleanMs: { alerts: 332, p50Ms: 156, p99Ms: 387, maxMs: 1138 }, latencyVsClean: [] },
      { ...FAULT_BASE, at: 60, action: 'kill', node: 'relay-2', forSec: null, firedAtSec: 91.2, outcome: 'done', alertDelayMs: null, alertDelayCleanMs: { alerts: 332, p50Ms: 156, p99Ms: 387, maxMs: 1138 }, latencyVsClean: [] },
    ];
    r.alertDelayMs = { alerts: 795, p50Ms: 207, p99Ms: 1053, maxMs: 1807 };
    expect(chartData(r).faults[0]).toEqual({ label: 'slow analytics ×10 30 s', atSec: 51.2 });
    const md = renderMarkdown(r);
    expect(md).toContain('| At | Fault | Ran at | Outcome | Clients saw errors | Alert delay p50 |');
    expect(md).toContain('| 20 s (stage 2) | slow analytics ×10 for 30 s | 51.2 s | done | none | 317 ms (clean 156 ms) |');
    expect(md).toContain('| 60 s (stage 2) | kill relay-2 | 91.2 s | done | none | – (clean 156 ms) |');
    expect(md).toContain('**Alert delay** (the analytics node\'s alerts, from the agent\'s send to the alert): 795 alerts, p50 207 ms, p99 1,053 ms, max 1,807 ms');
    const term = terminalSummary(r);
    expect(term).toContain('alert delay (analytics node, agent send → alert): 795 alerts, p50 207 ms, p99 1,053 ms, max 1,807 ms');
    expect(term).toContain('  during slow analytics at 20 s: p50 317 ms (clean 156 ms), p99 1,260 ms, 286 alerts');
    expect(term).not.toContain('during kill');
    // No fault compared any latency: no latency section.
    expect(term).not.toContain('latency during each fault');
    expect(md).not.toContain('**Latency during each fault**');
  });

  it("each fault's latency against clean: the p50 ratio, its 95% interval and the within-10% verdict", () => {
    const r = structuredClone(search);
    const ci = (low: number, high: number) => ({ level: 0.95, low, high, replicates: 2000, runSeconds: 5, cleanBlocks: 55, faultBlocks: 60 });
    const row = { cleanP99Ms: 900, faultP99Ms: 950, p99Ratio: 1.056 };
    r.faults = [
      {
        ...FAULT_BASE,
        at: 30,
        action: 'slow',
        node: 'analytics',
        byFactor: 10,
        forSec: 60,
        firedAtSec: 51.2,
        outcome: 'done',
        latencyVsClean: [
          { op: 'user-session', cleanCount: 1100, faultCount: 1200, cleanP50Ms: 190.4, faultP50Ms: 185.5, p50Ratio: 0.974, p50RatioCi: ci(0.93, 1.021), within10pct: 'held', ...row },
          { op: 'ws-command', cleanCount: 1000, faultCount: 1150, cleanP50Ms: 137, faultP50Ms: 152, p50Ratio: 1.109, p50RatioCi: ci(1.01, 1.22), within10pct: 'unresolved', ...row },
          { op: 'ws-rtt', cleanCount: 9000, faultCount: 9500, cleanP50Ms: 156, faultP50Ms: 292, p50Ratio: 1.874, p50RatioCi: ci(1.79, 1.95), within10pct: 'broken', ...row },
          // Written before the interval existed.
          { op: 'ws-ping', cleanCount: 9000, faultCount: 9500, cleanP50Ms: 0.14, faultP50Ms: 0.12, p50Ratio: 0.857, ...row },
        ],
      },
    ];
    const md = renderMarkdown(r);
    expect(md).toContain('| Fault | Op | p50 clean | p50 during | Ratio | 95% interval | Within 10% | Samples clean / during |');
    expect(md).toContain('| slow analytics ×10 for 60 s at 30 s | user-session | 190 ms | 186 ms | 0.97× | 0.93×–1.02× | held | 1,100 / 1,200 |');
    expect(md).toContain('| slow analytics ×10 for 60 s at 30 s | ws-rtt | 156 ms | 292 ms | 1.87× | 1.79×–1.95× | broken | 9,000 / 9,500 |');
    expect(md).toContain('| slow analytics ×10 for 60 s at 30 s | ws-ping | 140 µs | 120 µs | 0.86× | – | – | 9,000 / 9,500 |');
    const term = terminalSummary(r);
    expect(term).toContain('latency during each fault');
    expect(term).toContain('  slow analytics at 30 s:');
    expect(term).toMatch(/ws-command +137 ms → 152 ms +1\.11× +1\.01×–1\.22× +unresolved +1,000 \/ 1,150/);
  });

  it("a fault on the DBAgent's leader: its takeover, in a column of its own and a terminal line; none without", () => {
    const r = structuredClone(search);
    const base = { stage: 2, forSec: null, bySec: null, fraction: null, error: null, errorsSec: 0, errors: 0, dropped: null, reconnect: null, relayPeakConnectsPerSec: null, reconnectCurve: null } as const;
    r.faults = [
      { ...base, at: 30, action: 'kill', node: 'web-agent-1', firedAtSec: 50.1, outcome: 'done', takeover: null },
      { ...base, at: 90, action: 'kill', node: 'app', firedAtSec: 110.2, outcome: 'done', takeover: { node: 'app-standby', takeoverMs: 14_612, leaseTtlMs: 15_000, afterLapseMs: 112, withinTtl: true, term: 2, previousTerm: 1, reason: null } },
      { ...base, at: 100, action: 'kill', node: 'app-standby', firedAtSec: 120.2, outcome: 'done', takeover: { node: null, takeoverMs: null, leaseTtlMs: 15_000, afterLapseMs: null, withinTtl: null, term: null, previousTerm: 1, reason: 'no standby app node: nothing could take the lease from app-standby' } },
    ];
    const md = renderMarkdown(r);
    expect(md).toContain('| At | Fault | Ran at | Outcome | Clients saw errors | DBAgent takeover |');
    expect(md).toContain('| 30 s (stage 2) | kill web-agent-1 | 50.1 s | done | none | – |');
    expect(md).toContain('| 90 s (stage 2) | kill app | 110.2 s | done | none | app-standby led 14,612 ms after (term 2; TTL 15,000 ms, within it; 112 ms after the old lease lapsed) |');
    expect(md).toContain('| 100 s (stage 2) | kill app-standby | 120.2 s | done | none | none: no standby app node: nothing could take the lease from app-standby |');
    const term = terminalSummary(r);
    expect(term).toContain("DBAgent takeover (from the fault to the new leader's own lease stamp):\n  after kill app at 90 s: app-standby led 14,612 ms after (term 2; TTL 15,000 ms, within it; 112 ms after the old lease lapsed)\n  after kill app-standby at 100 s: none:");
    expect(term).not.toContain('after kill web-agent-1');
    // A takeover past the TTL says so.
    r.faults[1]!.takeover = { ...r.faults[1]!.takeover!, takeoverMs: 15_090, withinTtl: false };
    expect(renderMarkdown(r)).toContain('app-standby led 15,090 ms after (term 2; TTL 15,000 ms, NOT within it;');
    // No fault on an app node (and results from before the field): no column, no line.
    for (const f of r.faults) delete f.takeover;
    expect(renderMarkdown(r)).toContain('| At | Fault | Ran at | Outcome | Clients saw errors |\n');
    expect(terminalSummary(r)).not.toContain('DBAgent takeover');
  });

  it('an alert-delay chart per fault (during against clean) and a per-second timeline, only for a run that measured them', () => {
    const r = structuredClone(search);
    r.faults = [
      { ...FAULT_BASE, at: 20, action: 'slow', node: 'analytics', byFactor: 10, forSec: 30, firedAtSec: 51.2, outcome: 'done', alertDelayMs: { alerts: 286, p50Ms: 317, p99Ms: 1260, maxMs: 1372 }, alertDelayCleanMs: { alerts: 332, p50Ms: 156, p99Ms: 387, maxMs: 1138 }, latencyVsClean: [] },
      { ...FAULT_BASE, at: 60, action: 'kill', node: 'relay-2', forSec: null, firedAtSec: 91.2, outcome: 'done', alertDelayMs: null, alertDelayCleanMs: { alerts: 332, p50Ms: 156, p99Ms: 387, maxMs: 1138 }, latencyVsClean: [] },
      // Skipped, and one without alerts either side: no bars.
      { ...FAULT_BASE, at: 90, action: 'stop', node: 'db', forSec: 5, firedAtSec: null, outcome: 'skipped', alertDelayMs: null, alertDelayCleanMs: null, latencyVsClean: [] },
      { ...FAULT_BASE, at: 70, action: 'kill', node: 'web-agent-1', forSec: null, firedAtSec: 101.2, outcome: 'done', alertDelayMs: null, alertDelayCleanMs: null, latencyVsClean: [] },
    ];
    r.alertDelayMs = { alerts: 795, p50Ms: 207, p99Ms: 1053, maxMs: 1807 };
    r.alertDelayTimeline = [
      { tSec: 50, alerts: 11, p50Ms: 150, p99Ms: 380 },
      { tSec: 52, alerts: 9, p50Ms: 330, p99Ms: 1250 },
    ];
    const d = chartData(r);
    expect(d.alertDelay).toEqual([
      { label: 'slow analytics ×10 30 s at 51.2 s', during: { alerts: 286, p50Ms: 317, p99Ms: 1260 }, clean: { alerts: 332, p50Ms: 156, p99Ms: 387 } },
      { label: 'kill relay-2 at 91.2 s', during: null, clean: { alerts: 332, p50Ms: 156, p99Ms: 387 } },
    ]);
    expect(d.alertDelayTimeline).toEqual([
      { label: 'p50', group: 'p50', points: [[50, 150], [52, 330]] },
      { label: 'p99', group: 'p99', points: [[50, 380], [52, 1250]] },
    ]);
    // A run without an analytics node (and a result from before these fields): none.
    const plain = chartData(search);
    expect([plain.alertDelay, plain.alertDelayTimeline]).toEqual([[], []]);
    for (const f of r.faults) delete f.alertDelayMs;
    delete r.alertDelayTimeline;
    expect(chartData(r).alertDelay.map((b) => b.during)).toEqual([null, null]);
    expect(chartData(r).alertDelayTimeline).toEqual([]);
  });

  it('draws a reconnect curve per tunnel fault: share of its agents back, and connects per second', () => {
    const r = structuredClone(search);
    const base = { stage: 1, forSec: null, bySec: null, fraction: null, error: null, errorsSec: 1, errors: 5, dropped: null, relayPeakConnectsPerSec: 6 } as const;
    r.faults = [
      { ...base, at: 10, action: 'kill', node: 'relay-2', firedAtSec: 12.5, outcome: 'done', reconnect: { agents: 4, t50Ms: 400, t90Ms: 700, t99Ms: 700, peakConnectsPerSec: 4, returnedHome: 0 }, reconnectCurve: { stepMs: 250, back: [1, 2, 4], connects: [1, 1, 2] } },
      { ...base, at: 20, action: 'slow', node: 'db', bySec: 0.2, forSec: 5, firedAtSec: 22.5, outcome: 'done', reconnect: null, reconnectCurve: null },
    ];
    expect(chartData(r).reconnect).toEqual([
      {
        label: 'kill relay-2 at 12.5 s',
        agents: 4,
        share: [
          [0.25, 0.25],
          [0.5, 0.5],
          [0.75, 1],
        ],
        connectsPerSec: [
          [0.25, 4],
          [0.5, 4],
          [0.75, 8],
        ],
      },
    ]);
  });

  it('draws the USL curve only over the axis it was fitted on: rate on a rate axis, and a note otherwise', () => {
    const byRate = structuredClone(search);
    byRate.search!.unit = 'rate';
    byRate.fits.usl = { ...byRate.fits.usl!, loadUnit: 'rate', points: byRate.windows.map((w) => ({ load: w.client.offeredRatePerSec, throughput: w.client.achievedRatePerSec })) };
    const d = chartData(byRate);
    expect(d.ceiling.loadAxis).toBe('offered req/s');
    expect(d.ceiling.usl?.curve.length).toBe(80);
    expect(d.ceiling.usl?.caption).toMatch(/offered req\/s; R²|no peak/);
    // A fit over agents (as every result said before loadUnit was set) is not drawn on a rate axis.
    byRate.fits.usl = { ...byRate.fits.usl!, loadUnit: 'agents' };
    const old = chartData(byRate);
    expect(old.ceiling.usl).toBeNull();
    expect(old.ceiling.uslNote).toMatch(/^The USL fit is over agents, not this chart's load axis \(offered req\/s\)/);
  });

  it('an external target: no node series, client charts only; a corrupt histogram is a note, not a crash', () => {
    const r = buildResult({ search: false, nodes: false, plan: false, fit: false });
    r.headline!.client.ops.checkin.histograms.corrected = 'not-a-histogram';
    const d = chartData(r);
    expect([d.rate, d.spectrum.nodes, d.utilization, d.queue]).toEqual([[], [], [], []]);
    expect(d.spectrum.ops.map((s) => s.label)).toEqual(['heartbeat', 'inventory']);
    expect(d.spectrum.problems).toHaveLength(1);
    expect(d.spectrum.problems[0]).toMatch(/^operation checkin: the histogram could not be decoded/);
    expect(d.ceiling.loadAxis).toBe('agents');
    expect(d.ceiling.usl).toBeNull();
    expect(d.ceiling.uslNote).toBe('No USL fit: the USL fit needs at least 3 points with load > 0, got 2');
  });
});
