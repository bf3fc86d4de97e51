import { describe, expect, it, vi } from 'vitest';
import { erlangC } from '../../src/analysis/erlang-c.js';
import { Rng } from '../../src/core/random.js';
import { CapacityLimiter, lognormalSigma, QueueFullError, serviceSampler } from '../../src/stack/capacity.js';
import { idealFifoMeanResponseMs, poissonArrivalsMs } from '../helpers/fifo-queue.js';

describe('service-time samplers: exact values for a fixed seed', () => {
  it.each([
    [{ dist: 'constant', meanMs: 7 }, [7, 7, 7, 7]],
    [{ dist: 'exponential', meanMs: 20 }, [37.09034569271922, 0.7142028603950046, 6.439392495066318, 3.694088192153594]],
    [{ dist: 'lognormal', meanMs: 50, p99Ms: 200 }, [146.14428318037156, 51.48336617494398, 27.0469187260279, 51.384876510197856]],
    // p99 defaults to 3 × mean.
    [{ dist: 'lognormal', meanMs: 50 }, [118.17620901144146, 53.47131059354635, 32.782164912250565, 53.39354084113723]],
  ] as const)('%j with seed "table" → %j', (service, expected) => {
    const f = serviceSampler(service, new Rng('table'));
    for (const e of expected) expect(f()).toBeCloseTo(e, 10);
  });

  it('lognormal σ from mean and p99, and its bounds', () => {
    expect(lognormalSigma(50, 200)).toBeCloseTo(0.7017538605055951, 12); // z − √(z² − 2·ln 4)
    expect(lognormalSigma(20, 60)).toBeCloseTo(0.5333978318706414, 12);
    expect(() => lognormalSigma(50, 40)).toThrow('lognormal service time: p99Ms must be above meanMs and at most 748.4 ms, got 40');
    expect(() => lognormalSigma(50, 800)).toThrow(RangeError);
  });
});

describe('service-time samplers: long-run moments', () => {
  it('have the requested means (and the lognormal its p99), deterministically per seed', () => {
    const n = 200_000;
    const mean = (f: () => number): number => {
      let s = 0;
      for (let i = 0; i < n; i++) s += f();
      return s / n;
    };
    expect(mean(serviceSampler({ dist: 'constant', meanMs: 7 }, new Rng('a')))).toBe(7);
    expect(mean(serviceSampler({ dist: 'exponential', meanMs: 20 }, new Rng('a')))).toBeCloseTo(20, 0);
    const ln = serviceSampler({ dist: 'lognormal', meanMs: 50, p99Ms: 200 }, new Rng('b'));
    const xs = Array.from({ length: n }, ln).sort((a, b) => a - b);
    expect(xs.reduce((a, b) => a + b, 0) / n).toBeCloseTo(50, 0);
    expect(xs[Math.floor(n * 0.99)] / 200).toBeGreaterThan(0.97);
    expect(xs[Math.floor(n * 0.99)] / 200).toBeLessThan(1.03);
    expect(lognormalSigma(50, 200)).toBeCloseTo(0.7018, 3); // z − √(z² − 2·ln 4)
    expect(serviceSampler({ dist: 'exponential', meanMs: 20 }, new Rng('s'))()).toBe(serviceSampler({ dist: 'exponential', meanMs: 20 }, new Rng('s'))());
  });
});

describe('the capacity limiter', () => {
  it('holds `workers` at once, queues FIFO up to `queue`, then refuses', async () => {
    const limiter = new CapacityLimiter({ workers: 2, queue: 1, service: { dist: 'constant', meanMs: 30 } });
    const order: number[] = [];
    const jobs = [1, 2, 3].map((i) => limiter.run(() => order.push(i)));
    expect(limiter.busy).toBe(2);
    expect(limiter.queued).toBe(1);
    await expect(limiter.run(() => 4)).rejects.toBeInstanceOf(QueueFullError);
    expect(limiter.rejected).toBe(1);
    await Promise.all(jobs);
    expect(order).toEqual([1, 2, 3]);
    expect(limiter.busy).toBe(0);
  });

  it('takeUtilization: busy-worker time over worker time since the previous call', async () => {
    const limiter = new CapacityLimiter({ workers: 4, queue: 0, service: { dist: 'constant', meanMs: 0 } });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const t0 = performance.now();
    limiter.takeUtilization(t0); // start a window with 0 busy
    const job = limiter.run(() => held); // 1 of 4 workers busy from now until release
    expect(limiter.busy).toBe(1);
    await new Promise((r) => setTimeout(r, 40));
    const now = performance.now();
    // One worker busy for (almost) the whole window: the share is ≈ 1/4, and never above it.
    const u = limiter.takeUtilization(now);
    expect(u).toBeLessThanOrEqual(0.25 + 1e-9);
    expect(u).toBeGreaterThan(0.2);
    release();
    await job;
    expect(limiter.takeUtilization(performance.now() + 1000)).toBeLessThan(0.25 * 0.1); // idle window
  });

  it('workers 4, exponential 20 ms, Poisson 150/s on a fake clock: the ideal FIFO queue to within 1%, and Erlang C to within 10%', async () => {
    // The model's arithmetic, with no host in it: timers and performance.now() on vitest's fake
    // clock, so every service lasts exactly its sample. (The same model on a real node process,
    // over HTTP and real timers, is a measurement: `rmmscale run` reports it per node as `erlang`.)
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const service = { dist: 'exponential', meanMs: 20 } as const;
      const arrivalsMs = poissonArrivalsMs('poisson-150', 150, 3000);
      const seed = 'mm4-29\0gate';
      const limiter = new CapacityLimiter({ workers: 4, queue: 10_000, service }, { seed });
      const t0 = performance.now();
      const responses: Array<Promise<number>> = [];
      for (const at of arrivalsMs) {
        await vi.advanceTimersByTimeAsync(t0 + at - performance.now());
        const from = performance.now();
        responses.push(limiter.run(() => performance.now() - from));
      }
      await vi.runAllTimersAsync();
      const times = await Promise.all(responses);
      const mean = times.reduce((a, b) => a + b, 0) / times.length;
      const ideal = idealFifoMeanResponseMs(arrivalsMs, service, seed, 4);
      const predicted = erlangC(150, 4, 20).meanResponseMs; // 30.19 ms
      // Not to the microsecond: fake timers round each service to whole ms, and the limiter's timer
      // debt repays that rounding, as it repays real timers' error. Deterministic: the same every run.
      expect(Math.abs(mean - ideal) / ideal).toBeLessThan(0.01);
      expect(Math.abs(mean - predicted) / predicted).toBeLessThan(0.1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('rejects bad profiles at construction', () => {
    expect(() => new CapacityLimiter({ workers: 0, queue: 1, service: { dist: 'constant', meanMs: 1 } })).toThrow('workers must be at least 1, got 0');
  });

  // The M/M/c check of the whole model (limiter inside a real node process, driven over HTTP) is in
  // runtime.test.ts: 'the capacity model on a real node process'.
});
