import { describe, expect, it } from 'vitest';
import { planCapacity, type TierCapacity } from '../../src/analysis/plan.js';

// 30%/min = 0.005 check-ins/s per agent. Article-shaped ceilings: a web node ~110/s, the db ~275/s.
const TIERS: TierCapacity[] = [
  { tier: 'web-agent', perNodeCeilingRps: 110, demandPerAgentRps: 0.005, scalable: true },
  { tier: 'app', perNodeCeilingRps: 400, demandPerAgentRps: 0.001, scalable: false },
  { tier: 'db', perNodeCeilingRps: 275, demandPerAgentRps: 0.0055, scalable: false },
];

describe('capacity plan arithmetic', () => {
  it('sizes 42,000 agents: 210/s of check-ins over 110/s nodes at ≤ 80% → 3 web nodes', () => {
    const p = planCapacity(TIERS, { agents: 42_000, maxUtilization: 0.8, redundancy: 'none' });
    const web = p.tiers[0];
    expect(web.demandRps).toBeCloseTo(210, 10);
    expect(web.nodes).toBe(3); // ⌈210 / 88⌉
    expect(web.capacityRps).toBe(330);
    expect(web.headroom).toBeCloseTo(1 - 210 / 330, 12);
    expect(web.maxAgents).toBe(66_000);
    expect(web.oneDown.capacityRps).toBe(220);
    expect(web.oneDown.headroom).toBeCloseTo(1 - 210 / 220, 12);
    expect(web.oneDown.ok).toBe(true);
    const db = p.tiers[2];
    expect(db.nodes).toBe(1);
    expect(db.demandRps).toBeCloseTo(231, 10);
    expect(db.maxAgents).toBe(50_000);
    expect(db.note).toBe('single instance at 84% of its ceiling, over the 80% planned: scale it up, not out');
    expect(p.firstToSaturate).toEqual({ tier: 'db', atAgents: 50_000 });
    expect(p.feasible).toBe(false); // the db would run at 84% > 80%
  });

  it('adds a node per scalable tier with n+1, and never to single-instance tiers', () => {
    const p = planCapacity(TIERS, { agents: 20_000, maxUtilization: 0.8, redundancy: 'n+1' });
    expect(p.tiers.map((t) => t.nodes)).toEqual([3, 1, 1]); // ⌈100/88⌉ + 1 = 3
    expect(p.tiers[0].oneDown.ok).toBe(true);
    expect(p.tiers[2].oneDown.ok).toBe(false); // losing the only db loses the stack
    expect(p.feasible).toBe(true);
  });

  it('reports negative headroom when a single instance cannot carry the fleet', () => {
    const p = planCapacity(TIERS, { agents: 60_000, maxUtilization: 0.8, redundancy: 'none' });
    expect(p.tiers[2].headroom).toBeCloseTo(1 - 330 / 275, 12);
    expect(p.tiers[2].headroom).toBeLessThan(0);
    expect(p.feasible).toBe(false);
  });
});
