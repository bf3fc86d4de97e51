import { describe, expect, it } from 'vitest';
import { FleetSchedule, planFleet } from '../../src/swarm/fleet-schedule.js';
import {
  agentsAt,
  buildProfile,
  cyclesAt,
  firstCycleAtOrAfter,
  periodicFireMs,
  phaseOf,
  rateAtPerSec,
  steadyProfile,
  timeAtCycles,
} from '../../src/swarm/schedule.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const PER_MIN_30 = 0.3 / 60_000; // 30%/min → check-ins per agent per ms

describe('steady periodic schedule', () => {
  it('20,000 agents at 30%/min give 6,000 check-ins in a minute, to within 2 agents', () => {
    const p = steadyProfile(20_000, PER_MIN_30, 60_000);
    const fires = planFleet(p, 'rmmscale', 20_000, 0, 60_000);
    expect(Math.abs(fires.length - 6000)).toBeLessThanOrEqual(2);
    expect(rateAtPerSec(p, 30_000)).toBeCloseTo(100, 10);
  });

  it('is drift-free: the k-th fire is (k + u) · period from the start, for any k', () => {
    const p = steadyProfile(1, 1 / 200_000, 1e12); // period 200 s
    expect(periodicFireMs(p, 0.25, 0)).toBeCloseTo(50_000, 6);
    expect(periodicFireMs(p, 0.25, 1)).toBeCloseTo(250_000, 6);
    expect(periodicFireMs(p, 0.25, 1000)).toBeCloseTo(200_050_000, 3);
    // 100,000 cycles later the grid has not moved by a microsecond.
    expect(periodicFireMs(p, 0.25, 100_000) - 100_000 * 200_000).toBeCloseTo(50_000, 3);
  });

  it('spreads phases evenly: no gap between neighbouring phases exceeds 2/N', () => {
    const n = 10_000;
    const phases = range(n)
      .map((i) => phaseOf('seed-a', i))
      .sort((a, b) => a - b);
    let maxGap = phases[0] + (1 - phases[n - 1]);
    for (let i = 1; i < n; i++) maxGap = Math.max(maxGap, phases[i] - phases[i - 1]);
    expect(maxGap).toBeLessThan(2 / n);
    expect(phases[0]).toBeGreaterThanOrEqual(0);
    expect(phases[n - 1]).toBeLessThan(1);
  });

  it('gives the same fleet schedule for the same seed, and another for another seed', () => {
    expect(phaseOf('a', 7)).toBe(phaseOf('a', 7));
    expect(phaseOf('a', 7)).not.toBe(phaseOf('b', 7));
  });

  it('every 1 s window of a steady run carries the mean rate to within ±3 fires (random phases: σ ≈ 13)', () => {
    const p = steadyProfile(50_000, 1 / 300_000, 20_000); // every 5 min → 166.67/s
    const fires = planFleet(p, 'w', 50_000, 0, 20_000);
    const perSec = new Array(20).fill(0);
    for (const f of fires) perSec[Math.floor(f.atMs / 1000)]++;
    for (const c of perSec) expect(Math.abs(c - 166.67)).toBeLessThanOrEqual(3);
    expect(perSec.reduce((a, b) => a + b, 0)).toBe(fires.length);
    expect(Math.abs(fires.length - 3333)).toBeLessThanOrEqual(2);
  });
});

describe('ramps', () => {
  it('integrates a linear frequency ramp exactly: F(t) = s/2·t²', () => {
    // 0 → 2 check-ins/s per agent over 10 s: s = 2e-3/1e4 per ms².
    const p = buildProfile({ agents: 10, freqPerMs: 0 }, [{ durationMs: 10_000, agents: 10, freqPerMs: 2e-3 }]);
    expect(cyclesAt(p, 10_000)).toBeCloseTo(10, 12);
    expect(cyclesAt(p, 5_000)).toBeCloseTo(2.5, 12);
    expect(timeAtCycles(p, 2.5)).toBeCloseTo(5_000, 9);
    expect(timeAtCycles(p, 10)).toBeCloseTo(10_000, 9);
    expect(timeAtCycles(p, 10.0001)).toBe(Infinity);
    // Each of the 10 agents crosses k + u for k = 0..9: exactly 100 fires.
    expect(planFleet(p, 's', 10, 0, 10_001)).toHaveLength(100);
  });

  it('ramps agents 0 → 100 over 10 s at 1/s each: about 500 fires, none from inactive agents', () => {
    const p = buildProfile({ agents: 0, freqPerMs: 1e-3 }, [{ durationMs: 10_000, agents: 100, freqPerMs: 1e-3 }]);
    const fires = planFleet(p, 's', 100, 0, 10_000);
    expect(Math.abs(fires.length - 500)).toBeLessThanOrEqual(10);
    for (const f of fires) expect(f.agent).toBeLessThan(Math.floor(agentsAt(p, f.atMs) + 1e-9));
  });

  it('holds between stages and interpolates within them', () => {
    const p = buildProfile({ agents: 0, freqPerMs: 1e-3 }, [
      { durationMs: 1000, agents: 100, freqPerMs: 1e-3 },
      { durationMs: 2000, agents: 100, freqPerMs: 1e-3 },
      { durationMs: 1000, agents: 0, freqPerMs: 1e-3 },
    ]);
    expect(p.durationMs).toBe(4000);
    expect(agentsAt(p, 500)).toBe(50);
    expect(agentsAt(p, 2000)).toBe(100);
    expect(agentsAt(p, 3500)).toBe(50);
    expect(rateAtPerSec(p, 2000)).toBeCloseTo(100, 10);
  });

  it('finds the first cycle at or after a time (an agent joining mid-run)', () => {
    const p = steadyProfile(1, 1e-3, 1e9); // period 1 s
    expect(firstCycleAtOrAfter(p, 0.5, 0)).toBe(0); // fires at 0.5 s
    expect(firstCycleAtOrAfter(p, 0.5, 600)).toBe(1); // next at 1.5 s
    expect(firstCycleAtOrAfter(p, 0.5, 1500)).toBe(1); // exactly on the grid counts
  });
});

describe('the schedule the engine runs (FleetSchedule)', () => {
  const ramp = buildProfile({ agents: 200, freqPerMs: 1e-3 }, [
    { durationMs: 3000, agents: 1000, freqPerMs: 1e-3 },
    { durationMs: 2000, agents: 1000, freqPerMs: 2e-3 },
  ]);

  it('gives the same fleet schedule whatever the number of workers', () => {
    const whole = planFleet(ramp, 'w', 1000, 0, ramp.durationMs);
    expect(whole.length).toBeGreaterThan(4000);
    for (const workerCount of [2, 3, 7]) {
      const parts = Array.from({ length: workerCount }, (_, workerIndex) => planFleet(ramp, 'w', 1000, 0, ramp.durationMs, { first: workerIndex, stride: workerCount })).flat();
      parts.sort((a, b) => a.atMs - b.atMs || a.agent - b.agent);
      expect(parts).toEqual(whole);
    }
  });

  it('fires the same sends when drained in small steps, as the send loop does, as all at once', () => {
    const steps = new FleetSchedule(ramp, 'w', 334, { first: 1, stride: 3 }, { arrival: 'periodic', fromMs: 0, untilMs: ramp.durationMs, jitterMs: 0 });
    const fired: Array<{ agent: number; atMs: number; k: number }> = [];
    let previous = -Infinity;
    for (let now = 0; steps.nextDueMs() !== Infinity; now += 0.7) {
      steps.fireDue(now + 0.5, (s, atMs, k) => {
        expect(atMs).toBeGreaterThanOrEqual(previous); // in time order
        expect(atMs).toBeLessThanOrEqual(now + 0.5); // never beyond the horizon asked for
        previous = atMs;
        fired.push({ agent: 1 + 3 * s, atMs, k });
      });
    }
    fired.sort((a, b) => a.atMs - b.atMs || a.agent - b.agent);
    expect(fired).toEqual(planFleet(ramp, 'w', 1000, 0, ramp.durationMs, { first: 1, stride: 3 }));
  });

  it('stops at untilMs, and starts an agent at its first cycle at or after fromMs', () => {
    const p = steadyProfile(1, 1e-3, 10_000); // period 1 s
    const u = phaseOf('f', 0);
    const times = planFleet(p, 'f', 1, 2500, 6000).map((f) => f.atMs);
    const expected = [2, 3, 4, 5, 6].map((k) => (k + u) * 1000).filter((t) => t >= 2500 && t < 6000);
    expect(times).toHaveLength(expected.length);
    times.forEach((t, i) => expect(t).toBeCloseTo(expected[i], 6));
  });

  it('jitters each fire within ±jitter of the grid, never moving the grid itself', () => {
    const p = steadyProfile(500, 1e-3, 20_000);
    const grid = planFleet(p, 'j', 500, 0, 20_000);
    const moved = planFleet(p, 'j', 500, 0, 20_000, undefined, { jitterMs: 50 });
    // The same fires (one per agent and cycle), each within 50 ms of its grid time.
    const key = (f: { agent: number; atMs: number }): string => `${f.agent}`;
    const byAgent = (fs: typeof grid): Map<string, number[]> => {
      const m = new Map<string, number[]>();
      for (const f of fs) m.set(key(f), [...(m.get(key(f)) ?? []), f.atMs]);
      return m;
    };
    const g = byAgent(grid);
    const j = byAgent(moved);
    let compared = 0;
    for (const [agent, times] of j) {
      const ref = g.get(agent)!;
      // Jitter at the run's edges can add or drop a first or last fire; the middle ones pair up.
      for (let k = 1; k < Math.min(times.length, ref.length) - 1; k++) {
        expect(Math.abs(times[k] - ref[k])).toBeLessThanOrEqual(50);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(500 * 15);
  });
});

describe('jitter', () => {
  it('moves single fires within ±jitter, symmetrically, without moving the grid', () => {
    const p = steadyProfile(1000, 1e-3, 1_000_000); // period 1 s
    const grid = planFleet(p, 'j', 1000, 10_000, 11_000);
    const moved = planFleet(p, 'j', 1000, 0, 20_000, undefined, { jitterMs: 200 });
    const at = new Map(moved.map((f) => [`${f.agent}:${f.k}`, f.atMs]));
    const offsets = grid.map((f) => at.get(`${f.agent}:${f.k}`)! - f.atMs);
    expect(offsets).toHaveLength(1000);
    expect(Math.max(...offsets)).toBeLessThanOrEqual(200);
    expect(Math.min(...offsets)).toBeGreaterThanOrEqual(-200);
    const mean = offsets.reduce((a, b) => a + b, 0) / offsets.length;
    expect(Math.abs(mean)).toBeLessThan(15); // symmetric: 1000 samples, σ_mean ≈ 3.7 ms
  });
});

describe('poisson arrivals (each agent its own memoryless clock)', () => {
  it('hits the mean rate and has exponential gaps (coefficient of variation ≈ 1)', () => {
    const p = steadyProfile(1000, 1e-3, 100_000); // 1000/s for 100 s
    const times = planFleet(p, 'poisson', 1000, 0, 100_000, undefined, { arrival: 'poisson' }).map((f) => f.atMs);
    // Expected 100,000 ± 316 (σ = √λT); 3σ bound.
    expect(Math.abs(times.length - 100_000)).toBeLessThan(950);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length);
    expect(sd / mean).toBeGreaterThan(0.97);
    expect(sd / mean).toBeLessThan(1.03);
  });

  it('follows a ramp: the second half of a 0 → max ramp gets 3× the first', () => {
    const p = buildProfile({ agents: 0, freqPerMs: 1e-3 }, [{ durationMs: 100_000, agents: 2000, freqPerMs: 1e-3 }]);
    const fires = planFleet(p, 'ramp', 2000, 0, 100_000, undefined, { arrival: 'poisson' });
    const first = fires.filter((f) => f.atMs < 50_000).length;
    const second = fires.length - first;
    // ∫ rate: first half 25,000, second 75,000 (less one agent's rate while the count is fractional).
    expect(Math.abs(first - 25_000)).toBeLessThan(500);
    expect(Math.abs(second - 75_000)).toBeLessThan(850);
  });

  it('splits by share: half the fleet gets half the arrivals', () => {
    const p = steadyProfile(1000, 1e-3, 20_000);
    const n = planFleet(p, 'share', 1000, 0, 20_000, { first: 0, stride: 2 }, { arrival: 'poisson' }).length;
    expect(Math.abs(n - 10_000)).toBeLessThan(300);
  });
});
