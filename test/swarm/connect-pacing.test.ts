import { describe, expect, it } from 'vitest';
import { ConnectPlan, PacedFirstConnects } from '../../src/swarm/connect-plan.js';
import { buildProfile, steadyProfile } from '../../src/swarm/schedule.js';
import { workerShare } from '../../src/swarm/shard.js';

/**
 * A worker that starts late (a shard ready after --start-at) opens the tunnels already due at its
 * share of the connect rate, not in one storm; on time, it follows the connect plan exactly.
 */

const RATE = 5000;
const AGENTS = 20_000;
const SHARDS = 4;
const WORKERS = 2;
/** One worker's share of the fleet's rate, as a gap: 1000 · W · n / rate = 1.6 ms. */
const GAP_MS = (1000 * WORKERS * SHARDS) / RATE;

function slots(share: { first: number; stride: number }): number {
  return Math.max(0, Math.ceil((AGENTS - share.first) / share.stride));
}

describe('PacedFirstConnects', () => {
  const profile = steadyProfile(AGENTS, 1 / 300_000, 60_000);

  it('on time, is the connect plan exactly, for every worker of every shard', () => {
    for (let i = 0; i < SHARDS; i++)
      for (let w = 0; w < WORKERS; w++) {
        const share = workerShare({ index: i, count: SHARDS }, w, WORKERS);
        const plan = new ConnectPlan(profile, RATE, share);
        const paced = new PacedFirstConnects(new ConnectPlan(profile, RATE, share), -400, GAP_MS);
        for (let s = 0; s < slots(share); s++) expect(Math.abs(paced.atMs(s) - plan.atMs(s))).toBeLessThan(1e-6);
      }
  });

  it('started 3 s late, opens one connect at the start, then one per gap: no burst of the 1,875 already due', () => {
    const share = workerShare({ index: 1, count: SHARDS }, 1, WORKERS);
    const plan = new ConnectPlan(profile, RATE, share);
    const paced = new PacedFirstConnects(new ConnectPlan(profile, RATE, share), 3000, GAP_MS);
    let dueAtStart = 0;
    let planDueAtStart = 0;
    for (let s = 0; s < slots(share); s++) {
      const at = paced.atMs(s);
      expect(Math.abs(at - (3000 + s * GAP_MS))).toBeLessThan(1e-6);
      if (at <= 3000) dueAtStart++;
      if (plan.atMs(s) <= 3000) planDueAtStart++;
    }
    expect(planDueAtStart).toBe(1875);
    expect(dueAtStart).toBe(1);
  });

  it('late on a ramp, paces the backlog and then rejoins the plan', () => {
    // 0 → 1,000 agents over 10 s: the plan opens one every 10 ms, slower than the rate allows.
    const ramp = buildProfile({ agents: 0, freqPerMs: 1 / 300_000 }, [{ durationMs: 10_000, agents: 1000, freqPerMs: 1 / 300_000 }]);
    const plan = new ConnectPlan(ramp, 1000, { first: 0, stride: 1 });
    const paced = new PacedFirstConnects(new ConnectPlan(ramp, 1000, { first: 0, stride: 1 }), 2000, 1);
    const out = Array.from({ length: 1000 }, (_, s) => paced.atMs(s));
    // The 200 due by 2 s open 1 ms apart, after which the plan's own times take over, unchanged.
    expect(out[0]).toBe(2000);
    expect(out[199]).toBe(2199);
    for (let s = 1; s < 1000; s++) expect(out[s] - out[s - 1]).toBeGreaterThanOrEqual(1 - 1e-9);
    // Agent s is active at (s + 1)·10 ms, first ≥ 2000 + s at s = 222.
    const rejoined = out.findIndex((t, s) => s > 0 && t === plan.atMs(s));
    expect(rejoined).toBe(222);
    expect(out[221]).toBe(2221);
    for (let s = rejoined; s < 1000; s++) expect(out[s]).toBe(plan.atMs(s));
  });

  it('refuses a slot asked out of order', () => {
    const paced = new PacedFirstConnects({ atMs: (s) => s }, 0, 1);
    paced.atMs(5);
    expect(() => paced.atMs(4)).toThrow(/slot 4 asked after 5/);
  });
});
