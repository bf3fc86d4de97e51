import { describe, expect, it } from 'vitest';
import { parseThreshold } from '../../src/gate/grammar.js';
import { loadRun } from '../../src/gate/gate.js';
import { resolveMetric } from '../../src/gate/resolve-metric.js';
import { histogramOf, latenciesWithP99, runResult } from './fixtures.js';

const F = 'cur.json';
const resolve = (r: ReturnType<typeof runResult>, text: string) => resolveMetric(r, F, parseThreshold(text, '--threshold'));

describe('resolveMetric against a fixture result.json', () => {
  const checkin = latenciesWithP99(400);
  const heartbeat = latenciesWithP99(100);
  const r = runResult({
    ops: { checkin, heartbeat },
    failed: 4,
    achievedRatePerSec: 99.5,
    offeredRatePerSec: 100,
    schedulingLagP99Us: 1500,
    nodes: [
      { node: 'web-agent-1', tier: 'web-agent', utilization: 0.62, queue: 1.5, cpu: 0.8, rate: 60, routes: { 'POST /agent/checkin': latenciesWithP99(20), 'POST /agent/heartbeat': latenciesWithP99(5) } },
      { node: 'db-1', tier: 'db', utilization: null, queue: null, cpu: 0.3, rate: 40 },
    ],
  });
  const hc = histogramOf(checkin).summary;
  const all = histogramOf([...checkin, ...heartbeat]).summary;

  it.each([
    ['checkin.p50 < 1s', hc.p50Us / 1000],
    ['checkin.p90 < 1s', hc.p90Us / 1000],
    ['checkin.p99 < 1s', hc.p99Us / 1000],
    ['checkin.p95 < 1s', hc.p95Us! / 1000],
    ['checkin.p(95) < 1s', hc.p95Us! / 1000],
    ['checkin.p99.9 < 1s', hc.p999Us / 1000],
    ['checkin.p(99.9) < 1s', hc.p999Us / 1000],
    ['checkin.p999 < 1s', hc.p999Us / 1000],
    ['latency.p95 < 1s', all.p95Us! / 1000],
    ['latency.p(99.9) < 1s', all.p999Us / 1000],
    ['checkin.max < 1s', hc.maxUs / 1000],
    ['checkin.mean < 1s', hc.meanUs / 1000],
    ['heartbeat.p99 < 1s', histogramOf(heartbeat).summary.p99Us / 1000],
    ['latency.p99 < 1s', all.p99Us / 1000],
    ['errors.rate < 1%', 4 / 204],
    ['errors.count == 0', 4],
    ['throughput.achieved > 0', 99.5],
    ['throughput.offered > 0', 100],
    ['node[web-agent-1].utilization < 0.8', 0.62],
    ['node[web-agent-1].queue < 5', 1.5],
    ['node[web-agent-1].cpu < 2', 0.8],
    ['node[web-agent-1].rate > 0', 60],
    ['node[web-agent-1].p99 < 1s', histogramOf([...latenciesWithP99(20), ...latenciesWithP99(5)]).summary.p99Us / 1000],
    ['node[db-1].cpu < 2', 0.3],
    ['generator.lagP99 < 2ms', 1.5],
  ])('%s → %d', (text, value) => {
    expect(resolve(r, text)).toEqual({ value, note: null });
  });

  it('reads latencies from the real histograms: the p99 is the constructed one within HDR precision (0.1%)', () => {
    expect(Math.abs(resolve(r, 'checkin.p99 < 1s').value! - 400) / 400).toBeLessThan(0.001);
    // The 95th of 100 values: 400 × 95/99 ms.
    expect(Math.abs(resolve(r, 'checkin.p95 < 1s').value! - (400 * 95) / 99) / ((400 * 95) / 99)).toBeLessThan(0.001);
    // Two routes merged exactly: 200 requests, the p99 is the third-slowest (19.8 ms of the 20 ms route).
    expect(Math.abs(resolve(r, 'node[web-agent-1].p99 < 1s').value! - (20 * 98) / 99) / 19.8).toBeLessThan(0.001);
  });

  it.each([
    ['chekin.p99 < 5ms', 'no operation "chekin" in cur.json (headline.client.ops: checkin, heartbeat); did you mean "checkin"?'],
    ['inventory.p99 < 5ms', 'no operation "inventory" in cur.json (headline.client.ops: checkin, heartbeat)'],
    ['node[web-agent-9].cpu < 1', 'no node "web-agent-9" in cur.json (nodes: web-agent-1, db-1); did you mean "web-agent-1"?'],
    ['node[db-1].utilization < 0.8', 'node db-1 reports no utilization in cur.json (only nodes with a capacity profile do)'],
    ['node[db-1].queue < 5', 'node db-1 reports no queue depth in cur.json (only nodes with a capacity profile do)'],
    ['ceiling.agents >= 1000', 'cur.json is a staged run with no ceiling search; ceiling metrics need a scenario with a ceiling'],
    ['tier[db].ceiling.rps >= 1000', 'cur.json is a staged run with no ceiling search; ceiling metrics need a scenario with a ceiling'],
  ])('%s: bad input, one line', (text, detail) => {
    expect(() => resolve(r, text)).toThrow(`--threshold ${JSON.stringify(text)}: ${detail}`);
  });

  it('an external target has no nodes, and says so', () => {
    expect(() => resolve(runResult({ nodes: [] }), 'node[web-1].cpu < 1')).toThrow('no node "web-1" in cur.json (this run scraped no nodes)');
  });
});

describe('resolveMetric: ceilings of a search', () => {
  it('found: the summary ceiling and the tier ceilings', () => {
    const r = runResult({
      search: { outcome: 'found', ceilingAgents: 42000, ceilingRps: 210, lastGood: 42000, firstBad: 44000 },
      tiers: [{ tier: 'web-agent', ceilingAgents: 42000, ceilingRps: 210 }, { tier: 'db', ceilingAgents: 90000, ceilingRps: 450 }, { tier: 'app', ceilingAgents: null, ceilingRps: null, limitedBy: 'unknown: no capacity model' }],
    });
    expect(resolve(r, 'ceiling.agents >= 40000')).toEqual({ value: 42000, note: null });
    expect(resolve(r, 'ceiling.rps >= 200')).toEqual({ value: 210, note: null });
    expect(resolve(r, 'tier[db].ceiling.agents >= 1')).toEqual({ value: 90000, note: null });
    expect(resolve(r, 'tier[web-agent].ceiling.rps >= 1')).toEqual({ value: 210, note: null });
    expect(resolve(r, 'tier[app].ceiling.rps >= 1')).toEqual({ value: null, note: 'cur.json: tier app has no ceiling (unknown: no capacity model)' });
    expect(() => resolve(r, 'tier[relay].ceiling.rps >= 1')).toThrow('no tier "relay" in cur.json (summary.tiers: web-agent, db, app)');
  });

  it('below-start counts as 0: not even the first step met the SLO', () => {
    const r = runResult({ search: { outcome: 'below-start', firstBad: 20000 } });
    expect(resolve(r, 'ceiling.agents >= 40000')).toEqual({ value: 0, note: 'cur.json: the first step already broke the SLO (search outcome below-start): counted as 0' });
  });

  it('above-max is a lower bound, usable by > and >= only', () => {
    const r = runResult({ search: { outcome: 'above-max', lastGood: 50000 } });
    expect(resolve(r, 'ceiling.agents >= 40000')).toEqual({ value: 50000, note: 'cur.json: the search held its maximum, so the ceiling is at least 50000' });
    expect(resolve(r, 'ceiling.agents <= 90000')).toEqual({ value: null, note: 'cur.json: no ceiling (search outcome above-max)' });
    expect(resolve(r, 'ceiling.rps >= 100')).toEqual({ value: null, note: 'cur.json: no ceiling (search outcome above-max)' });
  });

  it('budget and untrustworthy searches have no ceiling', () => {
    expect(resolve(runResult({ search: { outcome: 'budget' } }), 'ceiling.agents >= 1')).toEqual({ value: null, note: 'cur.json: no ceiling (search outcome budget)' });
  });
});

describe('resolveMetric: what a run did not measure', () => {
  it('no headline window', () => {
    expect(resolve(runResult({ headline: false }), 'checkin.p99 < 1s')).toEqual({ value: null, note: 'cur.json: no headline window (the run measured nothing)' });
  });

  it('an operation with no completed requests', () => {
    expect(resolve(runResult({ ops: { checkin: [], heartbeat: [5] } }), 'checkin.p99 < 1s')).toEqual({ value: null, note: 'cur.json: no checkin requests completed in the headline window' });
  });

  it('generator lag without a headline window index: the worst window', () => {
    const r = runResult({ schedulingLagP99Us: 2500 });
    r.headline!.windowIndex = null;
    expect(resolve(r, 'generator.lagP99 < 2ms')).toEqual({ value: 2.5, note: "cur.json: the worst window's lag (no single headline window)" });
  });
});

describe('resolveMetric: a result.json written before p95 was recorded', () => {
  // The committed CI baseline predates p95: its latency summaries have no p95Us.
  const old = loadRun('baselines/ci-gate/run-1/result.json');
  const file = 'baselines/ci-gate/run-1/result.json';
  const resolveOld = (text: string) => resolveMetric(old.result, file, parseThreshold(text, '--threshold'));

  it('has no p95Us (the premise)', () => {
    expect(old.result.headline!.client.ops.checkin.latency).not.toHaveProperty('p95Us');
  });

  it.each([
    ['checkin.p95 < 800ms', `${file} has no p95 (headline.client.ops.checkin.latency.p95Us is missing: an older rmmscale wrote it); rerun to gate on p95, or use p90 or p99`],
    ['checkin.p(95) < 800ms', `${file} has no p95 (headline.client.ops.checkin.latency.p95Us is missing: an older rmmscale wrote it); rerun to gate on p95, or use p90 or p99`],
    ['latency.p95 <= +10%', `${file} has no p95 (headline.client.latency.p95Us is missing: an older rmmscale wrote it); rerun to gate on p95, or use p90 or p99`],
  ])('%s: bad input, one line', (text, detail) => {
    expect(() => resolveOld(text)).toThrow(`--threshold ${JSON.stringify(text)}: ${detail}`);
  });

  it('still answers every stat it has, in any spelling', () => {
    expect(resolveOld('checkin.p99 < 1s')).toEqual({ value: 508.927, note: null });
    expect(resolveOld('checkin.p(99) < 1s')).toEqual({ value: 508.927, note: null });
    expect(resolveOld('checkin.p(99.9) < 1s')).toEqual({ value: 641.023, note: null });
    expect(resolveOld('checkin.p90 < 1s')).toEqual({ value: 319.743, note: null });
  });
});
