import { describe, expect, it } from 'vitest';
import { judgeStep, searchCeiling, type SearchOptions, type StepMeasurement } from '../../src/analysis/ceiling-search.js';

const SLO = { p99Us: 500_000, errorRate: 0.01, minAchievedRatio: 0.97 };
const OPTS: SearchOptions = { startLoad: 1000, maxLoad: 100_000, stepFactor: 2, precision: 0.05, slo: SLO, maxMeasurements: 30, grain: 100 };

/** A system whose p99 jumps past the SLO at a known knee (in agents). */
function kneeSystem(knee: number, calls: number[]) {
  return async (load: number): Promise<StepMeasurement> => {
    calls.push(load);
    const offered = load * 0.005; // 30%/min
    return load <= knee
      ? { offeredRatePerSec: offered, achievedRatePerSec: offered, p99Us: 80_000, errorRate: 0, trustworthy: true }
      : { offeredRatePerSec: offered, achievedRatePerSec: offered * 0.9, p99Us: 2_000_000, errorRate: 0.002, trustworthy: true };
  };
}

describe('ceiling search: step up, then bisect', () => {
  it('finds a knee at 20,000 agents to within 5%, with the exact probe sequence', async () => {
    const calls: number[] = [];
    const r = await searchCeiling(kneeSystem(20_000, calls), OPTS);
    expect(r.outcome).toBe('found');
    // Steps 1k, 2k, 4k, 8k, 16k ok; 32k bad; bisect 24k ✗, 20k ✓, 22k ✗, 21k ✗.
    expect(calls).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 24_000, 20_000, 22_000, 21_000]);
    expect(r.ceilingLoad).toBe(20_000);
    expect(r.firstBad).toBe(21_000);
    expect((r.firstBad! - r.lastGood!) / r.lastGood!).toBeLessThanOrEqual(0.05);
    expect(r.steps.filter((s) => s.phase === 'bisect')).toHaveLength(4);
  });

  it.each([3_300, 17_777, 41_000, 49_999])('lands within precision of any knee (%d)', async (knee) => {
    const r = await searchCeiling(kneeSystem(knee, []), OPTS);
    expect(r.ceilingLoad).not.toBeNull();
    expect(r.ceilingLoad!).toBeLessThanOrEqual(knee);
    expect(r.ceilingLoad!).toBeGreaterThanOrEqual(knee * 0.95 - 100);
  });

  it('says when the first step already breaks the SLO, and when the max held', async () => {
    expect((await searchCeiling(kneeSystem(500, []), OPTS)).outcome).toBe('below-start');
    const high = await searchCeiling(kneeSystem(1e9, []), { ...OPTS, maxLoad: 10_000 });
    expect(high.outcome).toBe('above-max');
    expect(high.ceilingLoad).toBe(10_000);
  });

  it('refuses to call a saturated generator a ceiling', async () => {
    const r = await searchCeiling(
      async (load) => ({ offeredRatePerSec: load, achievedRatePerSec: load, p99Us: 1000, errorRate: 0, trustworthy: load < 8000 }),
      OPTS,
    );
    expect(r.outcome).toBe('untrustworthy');
    expect(r.ceilingLoad).toBeNull();
  });

  it('is bounded: stops at maxMeasurements', async () => {
    const calls: number[] = [];
    const r = await searchCeiling(kneeSystem(20_000, calls), { ...OPTS, maxMeasurements: 3 });
    expect(r.outcome).toBe('budget');
    expect(calls).toHaveLength(3);
  });

  it('judges each SLO clause separately, with the numbers in the reason', () => {
    const v = judgeStep({ offeredRatePerSec: 100, achievedRatePerSec: 90, p99Us: 750_000, errorRate: 0.02, trustworthy: true }, SLO);
    expect(v).toEqual({ ok: false, breaches: ['p99 750.0 ms > 500.0 ms', 'errors 2.00% > 1.00%', 'achieved 90.0/s < 97% of offered 100.0/s'] });
    expect(judgeStep({ offeredRatePerSec: 100, achievedRatePerSec: 99, p99Us: 1, errorRate: 0, trustworthy: true }, SLO).ok).toBe(true);
  });
});
