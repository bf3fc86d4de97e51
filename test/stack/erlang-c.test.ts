import { describe, expect, it } from 'vitest';
import { erlangC, maxArrivalForSlo } from '../../src/analysis/erlang-c.js';

/** Erlang C by the Erlang B recursion (an independent route to the same number). */
function erlangCViaB(servers: number, offered: number): number {
  let b = 1;
  for (let k = 1; k <= servers; k++) b = (offered * b) / (k + offered * b);
  return (servers * b) / (servers - offered * (1 - b));
}

describe('Erlang C (M/M/c)', () => {
  it.each([
    // λ/s, c, 1/μ ms, P(wait), mean wait ms, mean response ms
    [150, 4, 20, 27 / 53, (27 / 53 / 50) * 1000, (27 / 53 / 50) * 1000 + 20], // a = 3: C = 13.5/26.5
    [1, 1, 500, 0.5, 500, 1000], // M/M/1: C = ρ, W = 1/(μ − λ)
    [1, 2, 1000, 1 / 3, 1000 / 3, 4000 / 3], // M/M/2: C = 2ρ²/(1 + ρ)
    [0.5, 1, 1000, 0.5, 1000, 2000],
  ])('λ=%s/s c=%s mean %s ms: P(wait) %s, Wq %s ms, W %s ms', (rate, c, svc, pw, wq, w) => {
    const q = erlangC(rate, c, svc);
    expect(q.probWait).toBeCloseTo(pw, 12);
    expect(q.meanWaitMs).toBeCloseTo(wq, 9);
    expect(q.meanResponseMs).toBeCloseTo(w, 9);
    expect(q.utilization).toBeCloseTo((rate * svc) / 1000 / c, 12);
  });

  it.each([
    [10, 8],
    [25, 20],
    [100, 90],
    [300, 280],
  ])('agrees with the Erlang B recursion for c=%s, a=%s', (c, a) => {
    expect(erlangC(a, c, 1000).probWait).toBeCloseTo(erlangCViaB(c, a), 12);
  });

  it('is unstable (Infinity) at and above ρ = 1', () => {
    const q = erlangC(200, 4, 20);
    expect(q.utilization).toBe(1);
    expect(q.meanResponseMs).toBe(Infinity);
    expect(q.responsePercentileMs(0.99)).toBe(Infinity);
    expect(erlangC(300, 4, 20).meanWaitMs).toBe(Infinity);
  });

  it('wait percentiles: 0 below 1 − C, then C·e^{−θt}', () => {
    const q = erlangC(150, 4, 20); // C = 27/53, θ = 50/s
    expect(q.waitPercentileMs(0.4)).toBe(0);
    expect(q.waitPercentileMs(0.99)).toBeCloseTo((Math.log((27 / 53) / 0.01) / 50) * 1000, 9); // 78.62 ms
  });

  it('response percentiles solve the closed-form tail exactly', () => {
    // M/M/1: the response time is Exp(μ − λ): p99 = ln(100)/(μ − λ).
    expect(erlangC(1, 1, 500).responsePercentileMs(0.99)).toBeCloseTo(Math.log(100) * 1000, 6);
    // M/M/2 with θ = μ (the equal-rates branch): P(T > t) = e^{−t}(1 + t/3), t in seconds.
    const t = erlangC(1, 2, 1000).responsePercentileMs(0.99) / 1000;
    expect(Math.exp(-t) * (1 + t / 3)).toBeCloseTo(0.01, 9);
    // c = 4, λ = 150, 20 ms: check against the tail formula.
    const p99 = erlangC(150, 4, 20).responsePercentileMs(0.99) / 1000;
    const C = 27 / 53;
    // θ = 200 − 150 = 50 = μ here as well: P(T > t) = (1 − C)e^{−μt} + C(1 + μt)e^{−μt}.
    expect((1 - C) * Math.exp(-50 * p99) + C * (1 + 50 * p99) * Math.exp(-50 * p99)).toBeCloseTo(0.01, 9);
    // θ ≠ μ: c = 10, λ = 400/s, 20 ms (μ = 50, θ = 100).
    const q = erlangC(400, 10, 20);
    const s = q.responsePercentileMs(0.999) / 1000;
    const tail10 = (1 - q.probWait) * Math.exp(-50 * s) + q.probWait * ((100 * Math.exp(-50 * s) - 50 * Math.exp(-100 * s)) / 50);
    expect(tail10).toBeCloseTo(0.001, 9);
    expect(q.responsePercentileMs(0.5)).toBeLessThan(q.responsePercentileMs(0.99));
  });

  it('maxArrivalForSlo: M/M/1 p99 ≤ 1 s with 100 ms service allows λ = μ − ln(100)/1 s', () => {
    expect(maxArrivalForSlo(1, 100, 0.99, 1000)).toBeCloseTo(10 - Math.log(100), 6); // 5.395/s, ρ = 0.54
    expect(maxArrivalForSlo(1, 100, 0.99, 400)).toBe(0); // a lone request's p99 is 460 ms
    const rate = maxArrivalForSlo(16, 50, 0.99, 500);
    expect(erlangC(rate, 16, 50).responsePercentileMs(0.99)).toBeCloseTo(500, 3);
  });
});
