import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/random.js';
import { decideAbsolute, decideRelative, mean, median, normalQuantile, ratioInterval, studentTQuantile, variance } from '../../src/gate/decide.js';

describe("Student's t quantile", () => {
  // Two-sided 95% critical values from any t table.
  it.each([
    [1, 12.706],
    [2, 4.303],
    [3, 3.182],
    [4, 2.776],
    [5, 2.571],
    [10, 2.228],
    [30, 2.042],
    [100, 1.984],
    [Infinity, 1.96],
  ])('t(0.975, df %d) = %d', (df, t) => {
    expect(studentTQuantile(0.975, df)).toBeCloseTo(t, 3);
  });

  it('is symmetric, 0 at the median, and the 99% values match the table', () => {
    expect(studentTQuantile(0.025, 4)).toBeCloseTo(-2.776, 3);
    expect(studentTQuantile(0.5, 7)).toBe(0);
    expect(studentTQuantile(0.995, 4)).toBeCloseTo(4.604, 3);
    expect(studentTQuantile(0.995, 20)).toBeCloseTo(2.845, 3);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 6);
    expect(normalQuantile(0.01)).toBeCloseTo(-2.326348, 6);
  });

  it('rejects p outside (0, 1) and df ≤ 0', () => {
    expect(() => studentTQuantile(1, 3)).toThrow('p: expected 0 < p < 1, got 1');
    expect(() => studentTQuantile(0.9, 0)).toThrow('df: expected df > 0, got 0');
  });
});

describe('sample statistics', () => {
  it('mean, sample variance (n − 1) and median', () => {
    expect(mean([1, 2, 3, 6])).toBe(3);
    expect(variance([1, 2, 3, 6])).toBe(14 / 3);
    expect(variance([5])).toBe(0);
    expect(median([9, 1, 5])).toBe(5);
    expect(median([9, 1, 5, 3])).toBe(4);
  });
});

/** The interval's ends are where |a − ρb| = t·√(Va + ρ²Vb): check that, independently of the solver. */
function fiellerResidual(rho: number, a: number, b: number, va: number, vb: number, t: number): number {
  return Math.abs(a - rho * b) - t * Math.sqrt(va + rho * rho * vb);
}

describe("ratioInterval: Fieller's interval for mean(current) ÷ mean(baseline)", () => {
  it('Welch: both sides with several runs; the ends solve the Fieller equation', () => {
    const c = [100, 102, 98];
    const b = [100, 101, 99];
    const ci = ratioInterval(c, b)!;
    expect(ci.method).toBe('welch');
    // df = (4/3 + 1/3)² / ((4/3)²/2 + (1/3)²/2) = 50/17
    expect(ci.df).toBeCloseTo(50 / 17, 12);
    expect(ci.ratio).toBe(1);
    const t = studentTQuantile(0.975, 50 / 17);
    expect(fiellerResidual(ci.lo, 100, 100, 4 / 3, 1 / 3, t)).toBeCloseTo(0, 9);
    expect(fiellerResidual(ci.hi, 100, 100, 4 / 3, 1 / 3, t)).toBeCloseTo(0, 9);
    expect(ci.lo).toBeCloseTo(0.95878, 4);
    expect(ci.hi).toBeCloseTo(1.04191, 4);
  });

  it('pooled: one current run against five baseline runs borrows the baseline noise (df 4)', () => {
    const ci = ratioInterval([100], [100, 101, 99, 102, 98])!;
    expect(ci.method).toBe('pooled');
    expect(ci.df).toBe(4);
    // s² = 2.5; Va = 2.5, Vb = 0.5; t = 2.776
    const t = studentTQuantile(0.975, 4);
    expect(fiellerResidual(ci.lo, 100, 100, 2.5, 0.5, t)).toBeCloseTo(0, 9);
    expect(fiellerResidual(ci.hi, 100, 100, 2.5, 0.5, t)).toBeCloseTo(0, 9);
  });

  it('single runs on both sides: the assumed noise (5% per run) gives ×1 → 0.870–1.149', () => {
    const ci = ratioInterval([100], [100])!;
    expect(ci.method).toBe('assumed-noise');
    expect(ci.df).toBe(Infinity);
    // Va = Vb = 25, z = 1.95996: A = 10000 − z²·25, roots (10000 ± √(z²(2·250000 − z²·625))) / A
    const z2 = 1.959963984540054 ** 2;
    const A = 10000 - z2 * 25;
    const root = Math.sqrt(z2 * (500000 - z2 * 625));
    expect(ci.lo).toBeCloseTo((10000 - root) / A, 6);
    expect(ci.hi).toBeCloseTo((10000 + root) / A, 6);
    expect(ci.lo).toBeCloseTo(0.8701, 4);
    expect(ci.hi).toBeCloseTo(1.1493, 4);
  });

  it('noise 0 makes single runs a point comparison', () => {
    expect(ratioInterval([110], [100], { confidence: 0.95, noiseCv: 0 })).toEqual({ ratio: 1.1, lo: 1.1, hi: 1.1, method: 'assumed-noise', df: Infinity });
  });

  it('zeros: both 0 is ×1; a 0 baseline with a non-zero current has no ratio; a noisy baseline near 0 is unbounded', () => {
    expect(ratioInterval([0, 0], [0, 0, 0])).toEqual({ ratio: 1, lo: 1, hi: 1, method: 'both-zero', df: Infinity });
    expect(ratioInterval([0, 3], [0, 0])).toBeNull();
    expect(ratioInterval([0, 1, 0], [0, 2, 0])).toBeNull();
    // A current of 0 against a steady baseline is a ratio of exactly 0.
    const zero = ratioInterval([0, 0, 0], [10, 11, 9])!;
    expect([zero.ratio, zero.lo, zero.hi]).toEqual([0, 0, 0]);
  });

  it('rejects empty or non-finite samples', () => {
    expect(() => ratioInterval([], [1])).toThrow('current: expected at least one value');
    expect(() => ratioInterval([1], [NaN])).toThrow('baseline: expected finite numbers, got NaN');
  });
});

describe('decideRelative: pass, fail, inconclusive', () => {
  it.each([
    // [name, current, baseline, op, bound, verdict]
    ['steady, within +10%', [100, 101, 99, 100, 100], [100, 99, 101, 100, 100], '<=', 1.1, 'pass'],
    ['30% slower, beyond +10%', [130, 131, 129], [100, 101, 99], '<=', 1.1, 'fail'],
    ['noisy current straddles +10%', [100, 140, 110], [100, 101, 99], '<=', 1.1, 'inconclusive'],
    ['8% slower but steady: within +10%', [108, 108.5, 107.5], [100, 100.5, 99.5], '<=', 1.1, 'pass'],
    ['12% slower but steady: beyond +10%', [112, 112.5, 111.5], [100, 100.5, 99.5], '<=', 1.1, 'fail'],
    ['ceiling held: ≥ −5%', [40000, 40000, 40000], [40000, 40000, 40000], '>=', 0.95, 'pass'],
    ['ceiling dropped 25%: below −5%', [30000, 30500, 29500], [40000, 40500, 39500], '>=', 0.95, 'fail'],
    ['ceiling −4% ± noise: inconclusive', [38400, 40400, 36400], [40000, 40400, 39600], '>=', 0.95, 'inconclusive'],
    ['single runs, identical: 5% noise cannot confirm +10%', [100], [100], '<=', 1.1, 'inconclusive'],
    ['single runs, 40% slower: beyond +10% even with 5% noise', [140], [100], '<=', 1.1, 'fail'],
    ['single runs, 20% faster: within +10%', [80], [100], '<=', 1.1, 'pass'],
    ['one run against five steady baselines', [101], [100, 101, 99, 102, 98], '<=', 1.1, 'pass'],
    ['one slow run against five steady baselines', [125], [100, 101, 99, 102, 98], '<=', 1.1, 'fail'],
    ['errors: 0 now and 0 before', [0, 0], [0, 0], '<=', 1.1, 'pass'],
    ['errors: some now, 0 before: no ratio', [0, 4], [0, 0], '<=', 1.1, 'inconclusive'],
    ['errors: 0 now, steady before', [0, 0, 0], [10, 11, 9], '<=', 1.1, 'pass'],
  ] as const)('%s', (_name, c, b, op, bound, verdict) => {
    expect(decideRelative(c, b, op, bound).verdict).toBe(verdict);
  });

  it('strict and non-strict bounds differ exactly at the bound (noise 0: a point comparison)', () => {
    const o = { confidence: 0.95, noiseCv: 0 };
    expect(decideRelative([110], [100], '<=', 1.1, o).verdict).toBe('pass');
    expect(decideRelative([110], [100], '<', 1.1, o).verdict).toBe('fail');
    expect(decideRelative([95], [100], '>=', 0.95, o).verdict).toBe('pass');
    expect(decideRelative([95], [100], '>', 0.95, o).verdict).toBe('fail');
  });

  it('says what it did in one line', () => {
    expect(decideRelative([130, 131, 129], [100, 101, 99], '<=', 1.1).note).toBe('×1.3 (95% CI 1.27–1.33; Welch t, df 3.75; 3 vs 3 runs): beyond 1.1');
    expect(decideRelative([100], [100], '<=', 1.1).note).toBe(
      '×1 (95% CI 0.87–1.15; single runs, no noise estimate: assumed 5% per run; 1 vs 1 run): the interval straddles 1.1',
    );
    expect(decideRelative([101], [100, 101, 99, 102, 98], '<=', 1.1).note).toBe('×1.01 (95% CI 0.962–1.06; t, df 4, noise from the baseline runs; 1 vs 5 runs): within 1.1');
    expect(decideRelative([0, 4], [0, 0], '<=', 1.1).note).toBe('the baseline is 0, so a change relative to it is undefined (use an absolute threshold); 2 vs 2 runs');
    expect(decideRelative([0, 1, 0], [0, 2, 0], '<=', 1.1)).toMatchObject({ verdict: 'inconclusive', method: 'unbounded', ratio: 0.5, ci: null });
  });

  // The decision's error rates, by simulation (seeded, so exact on every machine): at a true ratio
  // equal to the bound, each wrong call is bounded by (1 − 0.95)/2 = 2.5%.
  function simulate(trueRatio: number, n: number, cv: number, trials: number, seed: string): Record<string, number> {
    const rng = new Rng(seed);
    const counts: Record<string, number> = { pass: 0, fail: 0, inconclusive: 0 };
    const draw = (mu: number, k: number): number[] => Array.from({ length: k }, () => mu * (1 + cv * rng.normal()));
    for (let i = 0; i < trials; i++) counts[decideRelative(draw(100 * trueRatio, n), draw(100, n), '<=', 1.1).verdict]++;
    return counts;
  }

  it('at a true ratio on the bound, fails and passes each stay near 2.5% (5 vs 5 runs, 5% noise)', () => {
    const r = simulate(1.1, 5, 0.05, 2000, 'gate-coverage');
    expect(r.fail / 2000).toBeGreaterThan(0.01);
    expect(r.fail / 2000).toBeLessThan(0.045);
    expect(r.pass / 2000).toBeGreaterThan(0.01);
    expect(r.pass / 2000).toBeLessThan(0.045);
  });

  it('no change passes two times in three and never fails; a 25% regression fails mostly and never passes (5 vs 5, 5% noise)', () => {
    const same = simulate(1.0, 5, 0.05, 1000, 'gate-same');
    expect(same.fail).toBe(0);
    expect(same.pass / 1000).toBeGreaterThan(0.65);
    const worse = simulate(1.25, 5, 0.05, 1000, 'gate-worse');
    expect(worse.pass).toBe(0);
    expect(worse.fail / 1000).toBeGreaterThan(0.75);
  });
});

describe('decideAbsolute: the median of the current runs', () => {
  it.each([
    [[412], '<', 500, 'pass', 412],
    [[612], '<', 500, 'fail', 612],
    [[100, 900, 120], '<', 500, 'pass', 120],
    [[100, 900, 800], '<', 500, 'fail', 800],
    [[100, 200, 600, 900], '<=', 400, 'pass', 400],
    [[0], '==', 0, 'pass', 0],
    [[1], '!=', 0, 'pass', 1],
    [[40000], '>=', 40000, 'pass', 40000],
    [[39999], '>', 40000, 'fail', 39999],
  ] as const)('%j %s %d → %s', (values, op, limit, verdict, value) => {
    expect(decideAbsolute(values, op, limit)).toEqual({ verdict, value });
  });
});
