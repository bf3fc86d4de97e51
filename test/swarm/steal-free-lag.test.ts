import { describe, expect, it } from 'vitest';
import { createLatencyHistogram, type LatencyHistogram } from '../../src/metrics/histogram.js';
import { StealFreeLagAccumulator } from '../../src/swarm/steal-free-lag.js';

function second(valueUs: number, count: number): LatencyHistogram {
  const h = createLatencyHistogram();
  h.recordValueWithCount(valueUs, count);
  return h;
}

describe('scheduling lag over the seconds free of steal', () => {
  it('keeps the seconds at or under 1% steal, drops the stolen ones, and ignores unsampled ones', () => {
    const acc = new StealFreeLagAccumulator();
    acc.add(second(1000, 100), 0); // quiet
    acc.add(second(50_000, 100), 0.2); // a stolen second: 50 ms of lag, the neighbours'
    acc.add(second(2000, 100), 0.01); // exactly 1%: still quiet
    acc.add(second(90_000, 100), null); // no sample: counted nowhere
    const r = acc.result()!;
    expect(r.seconds).toBe(2);
    expect(r.ofSeconds).toBe(3);
    expect(r.lag.count).toBe(200);
    expect(r.lag.p50Us).toBe(1000);
    expect(r.lag.p99Us).toBe(2000);
    expect(r.lag.maxUs).toBe(2000);
  });

  it('is null on a host that reports no steal, and empty when every second was stolen', () => {
    const none = new StealFreeLagAccumulator();
    none.add(second(1000, 10), null);
    expect(none.result()).toBeNull();
    const all = new StealFreeLagAccumulator();
    all.add(second(1000, 10), 0.3);
    expect(all.result()).toEqual({ seconds: 0, ofSeconds: 1, lag: { count: 0, minUs: 0, meanUs: 0, p50Us: 0, p90Us: 0, p95Us: 0, p99Us: 0, p999Us: 0, maxUs: 0 } });
  });
});
