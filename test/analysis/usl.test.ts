import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/random.js';
import { fitUsl, uslPeak, uslThroughput, type LoadPoint } from '../../src/analysis/usl.js';

const KNOWN = { lambda: 1000, sigma: 0.05, kappa: 0.0002 };
const loads = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128];

describe('Universal Scalability Law', () => {
  it('has the closed-form peak N* = √((1−σ)/κ)', () => {
    const { nMax, xMax } = uslPeak(KNOWN);
    expect(nMax).toBeCloseTo(Math.sqrt(0.95 / 0.0002), 10); // 68.9202…
    expect(nMax).toBeCloseTo(68.9202, 4);
    expect(xMax).toBeCloseTo(uslThroughput(KNOWN, nMax), 10);
    expect(xMax).toBeCloseTo(12_925.22, 1); // 68,920.2 / (1 + 3.396 + 0.9362)
    expect(uslPeak({ lambda: 100, sigma: 0.1, kappa: 0 })).toEqual({ nMax: Infinity, xMax: 1000 });
  });

  it('recovers σ, κ and λ exactly from noiseless synthetic data', () => {
    const pts: LoadPoint[] = loads.map((n) => ({ load: n, throughput: uslThroughput(KNOWN, n) }));
    const f = fitUsl(pts);
    expect(f.lambda).toBeCloseTo(1000, 4);
    expect(f.sigma).toBeCloseTo(0.05, 7);
    expect(f.kappa).toBeCloseTo(0.0002, 9);
    expect(f.nMax).toBeCloseTo(68.9202, 2);
    expect(f.r2).toBeCloseTo(1, 12);
  });

  it('stays close under 2% multiplicative noise (seeded), with R² near 1', () => {
    const rng = new Rng('usl-noise');
    const pts: LoadPoint[] = loads.map((n) => ({ load: n, throughput: uslThroughput(KNOWN, n) * (1 + (rng.next() * 2 - 1) * 0.02) }));
    const f = fitUsl(pts);
    expect(Math.abs(f.sigma - 0.05)).toBeLessThan(0.01);
    expect(Math.abs(f.kappa - 0.0002) / 0.0002).toBeLessThan(0.2);
    expect(Math.abs(f.lambda - 1000) / 1000).toBeLessThan(0.03);
    expect(f.r2).toBeGreaterThan(0.99);
  });

  it('fits pure contention (κ = 0): throughput flattens at λ/σ, no peak', () => {
    const p = { lambda: 50, sigma: 0.2, kappa: 0 };
    const f = fitUsl(loads.map((n) => ({ load: n, throughput: uslThroughput(p, n) })));
    expect(f.kappa).toBeLessThan(1e-9);
    expect(f.sigma).toBeCloseTo(0.2, 6);
    expect(f.xMax).toBeCloseTo(250, 2);
  });

  it('refuses fewer than 3 usable points', () => {
    expect(() => fitUsl([{ load: 1, throughput: 10 }, { load: 0, throughput: 0 }, { load: 2, throughput: 19 }])).toThrow(
      'the USL fit needs at least 3 points with load > 0, got 2',
    );
  });
});
