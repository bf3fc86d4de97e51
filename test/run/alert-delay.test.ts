import { describe, expect, it } from 'vitest';
import { alertDelay, alertDelayPerSecond, compareLatency } from '../../src/run/alert-delay.js';
import { FaultRunner, type FaultTarget } from '../../src/run/faults.js';
import { createLatencyHistogram, recordUs } from '../../src/metrics/histogram.js';
import { Rng } from '../../src/core/random.js';
import type { AlertTiming } from '../../src/stack/analytics/analytics-store.js';
import type { ScenarioFault } from '../../src/scenario/types.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** Alerts [id, sentMs, createdMs] with the given delays, frames sent 100 ms apart from `fromMs`. */
function alerts(fromMs: number, delaysMs: number[], firstId = 1): AlertTiming[] {
  return delaysMs.map((d, i) => [firstId + i, fromMs + i * 100, fromMs + i * 100 + d]);
}

describe('alertDelayPerSecond', () => {
  it('groups alerts by the second their frame was sent, from the run start; seconds without alerts left out', () => {
    const start = 1_000_000;
    // Second 0: 10 frames at 10..100 ms; second 3: 4 frames at 1,000..1,600 ms of delay; one before the start.
    const a = [...alerts(start, Array.from({ length: 10 }, (_, i) => (i + 1) * 10)), ...alerts(start + 3000, [1000, 1200, 1600, 1400], 50), [99, start - 5, start + 10] as AlertTiming];
    expect(alertDelayPerSecond(a, start)).toEqual([
      { tSec: 0, alerts: 10, p50Ms: 50, p99Ms: 100 },
      { tSec: 3, alerts: 4, p50Ms: 1200, p99Ms: 1600 },
    ]);
    expect(alertDelayPerSecond([], start)).toEqual([]);
  });
});

describe('alertDelay', () => {
  it('nearest-rank p50/p99 and max of created − sent, ms', () => {
    // 1..100 ms: p50 is the 50th, p99 the 99th.
    const a = alerts(0, Array.from({ length: 100 }, (_, i) => i + 1));
    expect(alertDelay(a)).toEqual({ alerts: 100, p50Ms: 50, p99Ms: 99, maxMs: 100 });
    expect(alertDelay(alerts(0, [7]))).toEqual({ alerts: 1, p50Ms: 7, p99Ms: 7, maxMs: 7 });
  });

  it('only frames sent inside `within` and outside every `without` span; none: null', () => {
    const a = [...alerts(0, [10, 10, 10]), ...alerts(1000, [500, 700], 10), ...alerts(5000, [20], 20)];
    expect(alertDelay(a, { fromMs: 1000, toMs: 2000 })).toEqual({ alerts: 2, p50Ms: 500, p99Ms: 700, maxMs: 700 });
    expect(alertDelay(a, undefined, [{ fromMs: 1000, toMs: 2000 }])).toEqual({ alerts: 4, p50Ms: 10, p99Ms: 20, maxMs: 20 });
    expect(alertDelay(a, { fromMs: 9000, toMs: 9999 })).toBeNull();
    expect(alertDelay([])).toBeNull();
  });

  it('a negative delay (a clock step) counts as 0, not below', () => {
    expect(alertDelay([[1, 1000, 990]])).toEqual({ alerts: 1, p50Ms: 0, p99Ms: 0, maxMs: 0 });
  });
});

describe('compareLatency', () => {
  it('each op on either side, fault ÷ clean, null where a side has no sample', () => {
    const h = (...us: number[]) => {
      const x = createLatencyHistogram();
      for (const v of us) recordUs(x, v);
      return x;
    };
    const rows = compareLatency(new Map([['ws-ping', h(1000, 1000, 1000)], ['ws-connect', h(5000)]]), new Map([['ws-ping', h(2000, 2000)], ['user-session', h(40_000)]]));
    expect(rows.map((r) => r.op)).toEqual(['user-session', 'ws-connect', 'ws-ping']);
    expect(rows[2]).toMatchObject({ op: 'ws-ping', cleanCount: 3, faultCount: 2, cleanP50Ms: 1, faultP50Ms: 2, p50Ratio: 2 });
    expect(rows[0]).toMatchObject({ cleanCount: 0, cleanP50Ms: null, faultP50Ms: expect.closeTo(40, 0), p50Ratio: null });
    expect(rows[1]).toMatchObject({ faultCount: 0, faultP50Ms: null, p99Ratio: null });
  });

  it('keeps a sub-millisecond op at the histogram\'s precision: a tunnel ping\'s ratio is not taken from p50s rounded to 0.01 ms', () => {
    const h = (us: number, n: number) => {
      const x = createLatencyHistogram();
      for (let i = 0; i < n; i++) recordUs(x, us);
      return x;
    };
    // 145 µs clean, 255 µs during: 1.76×. Rounded to 0.01 ms first, 0.14 and 0.26 said 1.86×.
    const [row] = compareLatency(new Map([['ws-ping', h(145, 100)]]), new Map([['ws-ping', h(255, 100)]]));
    expect(row).toMatchObject({ cleanP50Ms: 0.145, faultP50Ms: 0.255, p50Ratio: 1.759 });
  });
});


describe('FaultRunner: what a slow fault measured', () => {
  it('per fault: alert delay and latency during its span against the clean part (settling and warm-up excluded); the factor reaches the target', async () => {
    const clock = new ManualClock();
    const slowed: string[] = [];
    const target: FaultTarget = {
      kill: () => undefined,
      restart: async () => undefined,
      slow: async (node, byMs, forMs, factor) => void slowed.push(`${node} ${byMs} ${forMs} ${factor}`),
      disconnect: async () => 0,
    };
    const fault: ScenarioFault = { atMs: 10_000, stageIndex: 0, atInStageMs: 10_000, action: 'slow', node: 'analytics', forMs: 5_000, byMs: null, byFactor: 10, fraction: null };
    const t0 = clock.now();
    const runner = new FaultRunner([fault], target, t0, 10_000, clock);
    runner.stageStarted(0, t0);
    const ping = (us: number) => {
      const h = createLatencyHistogram();
      recordUs(h, us);
      return new Map([['ws-ping', h]]);
    };
    // A warm-up second (excluded), then 30 s: 1 ms pings, 3 ms while the fault lasts (10–15 s), 9 ms while it settles (15–20 s).
    runner.recordSecond(t0, 0, ping(50_000), true);
    for (let s = 1; s <= 30; s++) {
      await clock.advance(1000);
      const endMs = t0 + s * 1000;
      const us = s > 10 && s <= 15 ? 3000 : s > 15 && s <= 20 ? 9000 : 1000;
      runner.recordSecond(endMs, 0, ping(us));
      runner.recordOp('user-session', endMs - 500, s > 10 && s <= 15 ? 40_000 : 20_000);
    }
    expect(slowed).toEqual(['analytics 0 5000 10']);
    // Alerts from frames sent before (delay 100 ms), during (800 ms), settling (300 ms, in neither), after (120 ms).
    const a = [...alerts(t0 + 2000, [100, 100]), ...alerts(t0 + 11_000, [800, 900], 10), ...alerts(t0 + 16_000, [300], 20), ...alerts(t0 + 25_000, [120], 30)];
    const [r] = runner.records(undefined, clock.now(), a);
    expect(r).toMatchObject({ action: 'slow', node: 'analytics', byFactor: 10, bySec: null, outcome: 'done' });
    expect(r!.alertDelayMs).toEqual({ alerts: 2, p50Ms: 800, p99Ms: 900, maxMs: 900 });
    expect(r!.alertDelayCleanMs).toEqual({ alerts: 3, p50Ms: 100, p99Ms: 120, maxMs: 120 });
    const ping2 = r!.latencyVsClean!.find((x) => x.op === 'ws-ping')!;
    // Seconds 11–15 overlap the span (and second 10 ends at its start: not in it); 16–20 settle; the rest (20) are clean.
    // (Percentiles at the histogram's precision, HDR's highest equivalent value: 3 ms recorded reads 3.001.)
    expect(ping2).toMatchObject({ faultCount: 5, cleanCount: 20, cleanP50Ms: 1, faultP50Ms: 3.001, p50Ratio: 3.001 });
    // 5 samples during the fault: too few for an interval, so 3× is not called broken.
    expect(ping2).toMatchObject({ p50RatioCi: null, within10pct: 'unresolved' });
    expect(r!.latencyVsClean!.find((x) => x.op === 'user-session')).toMatchObject({ faultCount: 5, cleanCount: 20, faultP50Ms: expect.closeTo(40, 0), cleanP50Ms: expect.closeTo(20, 0), p50Ratio: expect.closeTo(2, 2) });
    // Without an analytics node (no alerts read): null, not zero.
    expect(runner.records(undefined, clock.now())[0]).toMatchObject({ alertDelayMs: null, alertDelayCleanMs: null });
  });

  it("a fault is compared with its own stage's clean part, not with an earlier stage (a ramp)", async () => {
    const clock = new ManualClock();
    const target: FaultTarget = { kill: () => undefined, restart: async () => undefined, slow: async () => undefined, disconnect: async () => 0 };
    const fault: ScenarioFault = { atMs: 13_000, stageIndex: 1, atInStageMs: 3_000, action: 'slow', node: 'analytics', forMs: 2_000, byMs: 100, byFactor: null, fraction: null };
    const t0 = clock.now();
    const runner = new FaultRunner([fault], target, t0, 10_000, clock);
    const ping = (us: number) => {
      const h = createLatencyHistogram();
      recordUs(h, us);
      return new Map([['ws-ping', h]]);
    };
    runner.stageStarted(0, t0);
    // Stage 1 (index 0): a ramp, 20 ms pings for 10 s.
    for (let s = 1; s <= 10; s++) {
      await clock.advance(1000);
      runner.recordSecond(t0 + s * 1000, 0, ping(20_000));
    }
    runner.stageStarted(1, clock.now());
    // Stage 2 (index 1): 1 ms pings, 2 ms during the fault (3–5 s in), for 20 s.
    for (let s = 1; s <= 20; s++) {
      await clock.advance(1000);
      runner.recordSecond(t0 + 10_000 + s * 1000, 0, ping(s > 3 && s <= 5 ? 2000 : 1000));
    }
    const alertsSent = [...alerts(t0 + 1000, [900, 900, 900]), ...alerts(t0 + 22_000, [100, 120], 10), ...alerts(t0 + 13_500, [400], 20)];
    const [r] = runner.records(undefined, clock.now(), alertsSent);
    // Clean: stage 2's 13 seconds outside the span (2 s) and settling (5 s); stage 1's 20 ms are not in it.
    expect(r!.latencyVsClean!.find((x) => x.op === 'ws-ping')).toMatchObject({ faultCount: 2, cleanCount: 13, cleanP50Ms: expect.closeTo(1, 1), faultP50Ms: expect.closeTo(2, 1) });
    expect(r!.alertDelayCleanMs).toEqual({ alerts: 2, p50Ms: 100, p99Ms: 120, maxMs: 120 });
    expect(r!.alertDelayMs).toEqual({ alerts: 1, p50Ms: 400, p99Ms: 400, maxMs: 400 });
  });

  it('within 10%: each op gets an interval from its seconds, and a verdict from the interval', async () => {
    const clock = new ManualClock();
    const target: FaultTarget = { kill: () => undefined, restart: async () => undefined, slow: async () => undefined, disconnect: async () => 0 };
    const fault: ScenarioFault = { atMs: 20_000, stageIndex: 0, atInStageMs: 20_000, action: 'slow', node: 'analytics', forMs: 20_000, byMs: null, byFactor: 10, fraction: null };
    const t0 = clock.now();
    const runner = new FaultRunner([fault], target, t0, 10_000, clock);
    runner.stageStarted(0, t0);
    const rng = new Rng('within');
    // 70 s: 50 acks a second, exponential (mean 100 ms), 1.5× slower during the fault (20–40 s);
    // 20 sessions a second, 20 ms ± 2 ms whether or not the fault lasts.
    for (let s = 1; s <= 70; s++) {
      await clock.advance(1000);
      const endMs = t0 + s * 1000;
      const during = s > 20 && s <= 40;
      const h = createLatencyHistogram();
      for (let i = 0; i < 50; i++) recordUs(h, (1000 + rng.exponential(100_000)) * (during ? 1.5 : 1));
      runner.recordSecond(endMs, 0, new Map([['ws-rtt', h]]));
      for (let i = 0; i < 20; i++) runner.recordOp('user-session', endMs - 1000 + i * 50, 18_000 + rng.next() * 4000);
    }
    const [r] = runner.records(undefined, clock.now());
    const rtt = r!.latencyVsClean!.find((x) => x.op === 'ws-rtt')!;
    const session = r!.latencyVsClean!.find((x) => x.op === 'user-session')!;
    // Clean: 1–20 and 46–70 (45 s); during: 21–40 (20 s).
    expect(rtt.p50RatioCi).toMatchObject({ cleanBlocks: 45, faultBlocks: 20 });
    expect(rtt.p50RatioCi!.low).toBeLessThanOrEqual(rtt.p50Ratio!);
    expect(rtt.p50RatioCi!.high).toBeGreaterThanOrEqual(rtt.p50Ratio!);
    expect(rtt.within10pct).toBe('broken');
    expect(session.p50RatioCi).toMatchObject({ cleanBlocks: 45, faultBlocks: 20 });
    expect(session.p50RatioCi!.high).toBeLessThanOrEqual(1.1);
    expect(session.within10pct).toBe('held');
  });
});
