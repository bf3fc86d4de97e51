import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createLatencyHistogram, cumulativeCountsAtUs, recordUs, type LatencyHistogram } from '../../src/metrics/histogram.js';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/metrics-server.js';
import { LiveMetrics } from '../../src/swarm/live-metrics.js';
import type { SeriesPoint, SwarmResult } from '../../src/swarm/result.js';
import { startAgentServer, type TestAgentServer } from '../helpers/agent-server.js';
import { parsePromStrict, sampleValue } from '../helpers/prom-strict.js';
import { runCli } from '../helpers/spawn-cli.js';

/**
 * The generator's live view (--metrics-port): exact counters and HDR-derived buckets from merged
 * seconds (unit), and a real swarm's /metrics scraped while it runs and read as strict Prometheus
 * text (integration).
 */

function point(over: Partial<SeriesPoint>): SeriesPoint {
  return {
    tSec: 1, warmup: false, targetRatePerSec: 0, achievedRatePerSec: 0, target: 0, attempted: 0, completed: 0, failed: 0, late: 0, dropped: 0, connected: 0, connects: 0,
    activeAgents: 0, p50Us: 0, p99Us: 0, workersReported: 1, generatorCpuMax: 0, generatorCpuSum: 0, generatorCpuUs: 0, coordinatorCpuUs: 0, generatorRssBytes: 0,
    eldP99MsMax: 0, lagP99Us: 0, hostCpu: null, hostSteal: null, ...over,
  };
}

function hist(valuesUs: number[]): LatencyHistogram {
  const h = createLatencyHistogram();
  for (const v of valuesUs) recordUs(h, v);
  return h;
}

describe('cumulativeCountsAtUs: Prometheus buckets from an HDR histogram', () => {
  it('counts values at or below each bound', () => {
    expect(cumulativeCountsAtUs(hist([500, 1000, 1500, 2_600_000]), [1000, 2000, 2_500_000, 3_000_000])).toEqual([2, 3, 3, 4]);
    expect(cumulativeCountsAtUs(hist([]), [1000, 2000])).toEqual([0, 0]);
    // Past the largest value, every count is in: the +Inf bucket equals the total.
    expect(cumulativeCountsAtUs(hist([10, 20, 30]), [5, 60_000_000])).toEqual([0, 3]);
  });
});

describe('LiveMetrics', () => {
  it('accumulates merged seconds into exact counters, buckets and gauges', () => {
    const live = new LiveMetrics();
    live.setRunning(true);
    live.interval(point({ target: 100, attempted: 99, completed: 97, failed: 2, late: 3, dropped: 1, connects: 5, connected: 40, generatorCpuUs: 250_000, coordinatorCpuUs: 50_000 }), new Map([['checkin', hist([2000, 2000, 40_000])]]), true);
    live.interval(
      point({ target: 50, attempted: 50, completed: 50, connected: 42, activeAgents: 1200, targetRatePerSec: 50, achievedRatePerSec: 49.5, lagP99Us: 1500, eldP99MsMax: 12, generatorCpuMax: 0.35, generatorRssBytes: 64e6, hostCpu: 0.5, hostSteal: 0.01, workersReported: 2, generatorCpuUs: 100_000 }),
      new Map([['checkin', hist([700])], ['ws-connect', hist([3_000_000])]]),
      false,
    );
    live.judged('breach-holds', true);
    live.judged('could-flip', false);
    const f = parsePromStrict(live.render());
    const v = (name: string, labels?: Record<string, string>, family?: string): number => sampleValue(f, name, labels, family);
    expect([v('rmmscale_generator_offered_total'), v('rmmscale_generator_sent_total'), v('rmmscale_generator_completed_total'), v('rmmscale_generator_failed_total')]).toEqual([150, 149, 147, 2]);
    expect([v('rmmscale_generator_late_total'), v('rmmscale_generator_dropped_total'), v('rmmscale_generator_connects_total')]).toEqual([3, 1, 5]);
    const H = 'rmmscale_generator_latency_seconds';
    const bucket = (op: string, le: string): number => v(`${H}_bucket`, { op, le }, H);
    expect([bucket('checkin', '0.001'), bucket('checkin', '0.0025'), bucket('checkin', '0.025'), bucket('checkin', '0.05'), bucket('checkin', '+Inf')]).toEqual([1, 3, 3, 4, 4]);
    expect(v(`${H}_count`, { op: 'checkin' }, H)).toBe(4);
    expect(v(`${H}_sum`, { op: 'checkin' }, H)).toBeCloseTo(0.0447, 4);
    expect([bucket('ws-connect', '2.5'), bucket('ws-connect', '5'), v(`${H}_count`, { op: 'ws-connect' }, H)]).toEqual([0, 1, 1]);
    expect(v('rmmscale_generator_connected_tunnels')).toBe(42);
    expect(v('rmmscale_generator_active_agents')).toBe(1200);
    expect(v('rmmscale_generator_offered_rate_per_second')).toBe(50);
    expect(v('rmmscale_generator_achieved_rate_per_second')).toBe(49.5);
    expect(v('rmmscale_generator_scheduling_lag_p99_seconds')).toBe(0.0015);
    expect(v('rmmscale_generator_event_loop_delay_p99_seconds')).toBe(0.012);
    expect(v('rmmscale_generator_worker_cpu_max_ratio')).toBe(0.35);
    expect(v('rmmscale_generator_cpu_seconds_total')).toBeCloseTo(0.4, 9);
    expect(v('rmmscale_generator_resident_memory_bytes')).toBe(64e6);
    expect([v('rmmscale_generator_host_cpu_ratio'), v('rmmscale_generator_host_steal_ratio'), v('rmmscale_generator_workers')]).toEqual([0.5, 0.01, 2]);
    expect(v('rmmscale_generator_within_limits')).toBe(0);
    expect(v('rmmscale_generator_running')).toBe(1);
    expect(v('rmmscale_generator_trust', { basis: 'could-flip' })).toBe(1);
    expect(f.get('rmmscale_generator_trust')!.samples.filter((s) => s.value === 1)).toHaveLength(1);
    expect(f.get('rmmscale_generator_trust')!.samples).toHaveLength(8);
    expect([v('rmmscale_generator_judged_total', { trustworthy: 'true' }), v('rmmscale_generator_judged_total', { trustworthy: 'false' })]).toEqual([1, 1]);
  });

  it('before any second: zeros, unknown host figures as NaN, and still valid text', () => {
    const f = parsePromStrict(new LiveMetrics().render());
    expect(sampleValue(f, 'rmmscale_generator_completed_total')).toBe(0);
    expect(sampleValue(f, 'rmmscale_generator_host_cpu_ratio')).toBeNaN();
    expect(f.get('rmmscale_generator_latency_seconds')!.samples).toEqual([]);
  });
});

describe('the metrics endpoint', () => {
  let server: MetricsServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  it('serves /metrics on 127.0.0.1 only, as Prometheus text', async () => {
    server = await startMetricsServer('--metrics-port', 0, () => '# HELP x y\n# TYPE x gauge\nx 1\n');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);
    const r = await fetch(server.url);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await r.text()).toBe('# HELP x y\n# TYPE x gauge\nx 1\n');
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
  });

  it('a port in use is bad input, naming the flag', async () => {
    server = await startMetricsServer('--metrics-port', 0, () => '');
    await expect(startMetricsServer('--metrics-port', server.port, () => '')).rejects.toThrow(`--metrics-port: expected a free port on 127.0.0.1 (EADDRINUSE), got ${server.port}`);
  });
});

describe('rmmscale swarm --metrics-port (a real swarm, scraped while it runs)', () => {
  let target: TestAgentServer | null = null;
  let dir: string | null = null;
  afterEach(async () => {
    await target?.close();
    target = null;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  it('serves the live view as strict Prometheus text, with counts that only grow', async () => {
    const SECRET = 'live-view-test-secret';
    target = await startAgentServer(SECRET);
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-live-'));
    const json = join(dir, 'run.json');
    const scrapes: string[] = [];
    let scraping: Promise<void> = Promise.resolve();
    const r = await runCli(['swarm', '--target', target.url, '--secret', SECRET, '--agents', '300', '--rate', '100/s', '--duration', '5s', '--workers', '2', '--metrics-port', '0', '--json', json], {
      timeoutMs: 60_000,
      onStart: (child: ChildProcess) => {
        let err = '';
        child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        // Scrape every 500 ms while the child lives (at most 30 times), once it said where.
        scraping = (async () => {
          for (let i = 0; i < 30 && child.exitCode === null; i++) {
            await new Promise((res) => setTimeout(res, 500));
            const m = /metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(err);
            if (!m) continue;
            try {
              scrapes.push(await (await fetch(m[1])).text());
            } catch {
              // the swarm ended between the check and the fetch
            }
          }
        })();
      },
    });
    await scraping;
    // 4: a bare swarm is strict about its rig, and this host is shared; the live view is what is tested.
    expect([0, 4], r.stderr).toContain(r.code);
    expect(r.stderr).toMatch(/^metrics: http:\/\/127\.0\.0\.1:\d+\/metrics \(Prometheus text, while this runs\)$/m);
    const parsed = scrapes.map((s) => parsePromStrict(s));
    const completed = parsed.map((f) => sampleValue(f, 'rmmscale_generator_completed_total'));
    expect(completed.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < completed.length; i++) expect(completed[i]).toBeGreaterThanOrEqual(completed[i - 1]);
    const last = parsed[parsed.length - 1];
    const result = JSON.parse(readFileSync(json, 'utf8')) as SwarmResult;
    // The live counters cover every merged second (no warm-up here), so they never pass the result's.
    expect(completed[completed.length - 1]).toBeGreaterThan(0);
    expect(completed[completed.length - 1]).toBeLessThanOrEqual(result.summary.completed);
    expect(sampleValue(last, 'rmmscale_generator_offered_total')).toBeGreaterThanOrEqual(completed[completed.length - 1]);
    const H = 'rmmscale_generator_latency_seconds';
    // Every answered send is in the latency histograms, once (all operations together).
    const counted = last.get(H)!.samples.filter((x) => x.name === `${H}_count`).reduce((n, x) => n + x.value, 0);
    expect(counted).toBe(completed[completed.length - 1] + sampleValue(last, 'rmmscale_generator_failed_total'));
    expect(sampleValue(last, 'rmmscale_generator_workers')).toBe(2);
    expect(sampleValue(last, 'rmmscale_generator_connected_tunnels')).toBe(0);
    expect(parsed.some((f) => sampleValue(f, 'rmmscale_generator_running') === 1)).toBe(true);
  });
});
