import { describe, expect, it } from 'vitest';
import { boundVerdict, CI_REPLICATES, p50RatioCi, type SampleBlock } from '../../src/analysis/ratio-ci.js';
import { Rng } from '../../src/core/random.js';
import { createLatencyHistogram, recordedCounts, recordUs } from '../../src/metrics/histogram.js';

/** `seconds` blocks of `perSecond` samples each from `draw` (µs), each block through an HDR histogram, as the runner builds them. */
function blocks(seconds: number, perSecond: number, draw: (second: number) => number): SampleBlock[] {
  const out: SampleBlock[] = [];
  for (let s = 0; s < seconds; s++) {
    const h = createLatencyHistogram();
    for (let i = 0; i < perSecond; i++) recordUs(h, draw(s));
    out.push(recordedCounts(h));
  }
  return out;
}

/** Exponential latencies (mean `meanUs`, plus a 1 ms floor) times `factor`, from their own seed. */
const expo = (seed: string, meanUs: number, factor = 1) => {
  const rng = new Rng(seed);
  return () => (1000 + rng.exponential(meanUs)) * factor;
};

describe('recordedCounts', () => {
  it("each bucket's value and count, ascending, whose nearest-rank percentiles are the histogram's own", () => {
    const h = createLatencyHistogram();
    const draw = expo('rc', 50_000);
    for (let i = 0; i < 5000; i++) recordUs(h, draw());
    const rc = recordedCounts(h);
    expect(rc.counts.reduce((a, n) => a + n, 0)).toBe(5000);
    expect(rc.valuesUs.every((v, i) => i === 0 || v > rc.valuesUs[i - 1]!)).toBe(true);
    for (const q of [1, 50, 90, 99]) {
      const target = Math.ceil((q / 100) * 5000);
      let acc = 0;
      const at = rc.valuesUs.find((_, i) => (acc += rc.counts[i]!) >= target);
      expect(at).toBe(h.getValueAtPercentile(q));
    }
    expect(recordedCounts(createLatencyHistogram())).toEqual({ valuesUs: [], counts: [] });
  });
});

describe('p50RatioCi and boundVerdict (within 10%)', () => {
  it('the same distribution with thousands of samples a side: an interval around 1, inside 1.10: held', () => {
    const ci = p50RatioCi(blocks(60, 100, expo('clean', 100_000)), blocks(40, 100, expo('fault', 100_000)), 'same');
    expect(ci).not.toBeNull();
    expect(ci!.low).toBeLessThan(1);
    expect(ci!.high).toBeGreaterThan(1);
    expect(ci!.high).toBeLessThanOrEqual(1.1);
    expect(ci).toMatchObject({ level: 0.95, replicates: CI_REPLICATES, runSeconds: 5, cleanBlocks: 60, faultBlocks: 40 });
    expect(boundVerdict(ci)).toBe('held');
  });

  it('a fault that makes every sample 1.5× slower: the interval lies above 1.10: broken', () => {
    const ci = p50RatioCi(blocks(60, 100, expo('clean', 100_000)), blocks(40, 100, expo('fault', 100_000, 1.5)), 'slower');
    expect(ci!.low).toBeGreaterThan(1.1);
    expect(ci!.low).toBeLessThan(1.5);
    expect(ci!.high).toBeGreaterThan(1.5);
    expect(boundVerdict(ci)).toBe('broken');
  });

  it('130 sessions a side (the old scenario): a true 1.0 cannot be told from 1.1: unresolved', () => {
    const ci = p50RatioCi(blocks(26, 5, expo('clean', 200_000)), blocks(26, 5, expo('fault', 200_000)), 'few');
    expect(ci!.high - ci!.low).toBeGreaterThan(0.2);
    expect(boundVerdict(ci)).toBe('unresolved');
  });

  it('seconds are resampled, not samples: 100 identical samples a second count as one draw, not a hundred', () => {
    // The same per-second values, spread: every sample its own draw (iid) ...
    const iid = p50RatioCi(blocks(20, 100, expo('c', 100_000)), blocks(20, 100, expo('f', 100_000)), 'iid');
    // ... and lumped: all 100 samples of a second share one draw (a stalled second hits them all).
    const c = expo('c', 100_000);
    const f = expo('f', 100_000);
    const perSecond = (draw: () => number) => {
      const v: number[] = [];
      return (s: number) => (v[s] ??= draw());
    };
    const lumped = p50RatioCi(blocks(20, 100, perSecond(c)), blocks(20, 100, perSecond(f)), 'lumped');
    expect(boundVerdict(iid)).toBe('held');
    expect(lumped!.high - lumped!.low).toBeGreaterThan(3 * (iid!.high - iid!.low));
    expect(boundVerdict(lumped)).toBe('unresolved');
  });

  it('runs of seconds: a regime that holds for several seconds (a relay spooling its audit) widens the interval, as it should', () => {
    // Each side: 10-second regimes, fast (mean 100 ms) or slow (mean 200 ms) by a coin per regime;
    // within a regime the seconds are independent. 60 seconds a side, 30 samples a second.
    const regimes = (seed: string) => {
      const coin = new Rng(`${seed}:coin`);
      const slow: boolean[] = [];
      const draw = expo(seed, 100_000);
      return (s: number) => {
        slow[Math.floor(s / 10)] ??= coin.next() < 0.5;
        return draw() * (slow[Math.floor(s / 10)] ? 2 : 1);
      };
    };
    const c = blocks(60, 30, regimes('c'));
    const f = blocks(60, 30, regimes('f'));
    const bySecond = p50RatioCi(c, f, 'regimes', { runSeconds: 1 })!;
    const byRuns = p50RatioCi(c, f, 'regimes')!;
    expect(byRuns.runSeconds).toBe(5);
    expect(bySecond.runSeconds).toBe(1);
    expect(byRuns.high - byRuns.low).toBeGreaterThan(1.2 * (bySecond.high - bySecond.low));
    // A short side: runs of at most half its seconds.
    expect(p50RatioCi(blocks(6, 30, expo('c', 1000)), f, 'short')!.runSeconds).toBe(3);
  });

  it('seeded: the same samples give the same interval; another seed a close one', () => {
    const c = blocks(30, 20, expo('c', 80_000));
    const f = blocks(30, 20, expo('f', 80_000));
    expect(p50RatioCi(c, f, 'user-session')).toEqual(p50RatioCi(c, f, 'user-session'));
    const other = p50RatioCi(c, f, 'ws-command')!;
    const one = p50RatioCi(c, f, 'user-session')!;
    expect(other).not.toEqual(one);
    expect(Math.abs(other.high - one.high)).toBeLessThan(0.05);
  });

  it('fewer than 5 seconds or 20 samples on a side: no interval, unresolved', () => {
    const many = blocks(30, 50, expo('c', 1000));
    expect(p50RatioCi(many, blocks(4, 50, expo('f', 1000)), 'x')).toBeNull();
    expect(p50RatioCi(blocks(10, 1, expo('c', 1000)), many, 'x')).toBeNull();
    expect(p50RatioCi(many, [...blocks(5, 3, expo('f', 1000)), { valuesUs: [], counts: [] }], 'x')).toBeNull();
    expect(boundVerdict(null)).toBe('unresolved');
  });

  it('the bound: high ≤ 1.10 held, low > 1.10 broken, straddling unresolved', () => {
    const ci = (low: number, high: number) => ({ level: 0.95, low, high, replicates: 2000, runSeconds: 5, cleanBlocks: 10, faultBlocks: 10 });
    expect(boundVerdict(ci(0.5, 1.1))).toBe('held');
    expect(boundVerdict(ci(1.1, 1.3))).toBe('unresolved');
    expect(boundVerdict(ci(1.101, 1.3))).toBe('broken');
    expect(boundVerdict(ci(0.9, 1.2))).toBe('unresolved');
    expect(boundVerdict(ci(0.9, 1.2), 1.25)).toBe('held');
  });
});
