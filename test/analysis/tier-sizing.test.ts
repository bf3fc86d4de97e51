import { describe, expect, it } from 'vitest';
import { checkinsPerAgentPerSec, tierCapacities, tierLayout } from '../../src/analysis/tier-sizing.js';

/** The one place run and plan --from size tiers from (src/analysis/tier-sizing.ts). */
describe('tierLayout: the tiers of a stack', () => {
  it('split3: by tier in node order; app and db single-instance, web and proxy scale out', () => {
    const nodes = [
      { name: 'db', role: 'db', tier: 'db' },
      { name: 'app', role: 'app', tier: 'app' },
      { name: 'web-agent-1', role: 'web', tier: 'web-agent' },
      { name: 'web-agent-2', role: 'web', tier: 'web-agent' },
      { name: 'web-user-1', role: 'web', tier: 'web-user' },
      { name: 'proxy', role: 'proxy', tier: 'proxy' },
    ];
    expect(tierLayout(nodes)).toEqual([
      { tier: 'db', nodes: ['db'], scalable: false },
      { tier: 'app', nodes: ['app'], scalable: false },
      { tier: 'web-agent', nodes: ['web-agent-1', 'web-agent-2'], scalable: true },
      { tier: 'web-user', nodes: ['web-user-1'], scalable: true },
      { tier: 'proxy', nodes: ['proxy'], scalable: true },
    ]);
  });

  it('custom tiers keep their names; a single node brings its embedded database as tier db', () => {
    expect(tierLayout([{ name: 'box-1', role: 'single', tier: 'box' }])).toEqual([
      { tier: 'box', nodes: ['box-1'], scalable: false },
      { tier: 'db', nodes: ['box-1'], scalable: false },
    ]);
    expect(tierLayout([{ name: 'edge-1', role: 'web', tier: 'edge' }, { name: 'store', role: 'db', tier: 'storage' }])).toEqual([
      { tier: 'edge', nodes: ['edge-1'], scalable: true },
      { tier: 'storage', nodes: ['store'], scalable: false },
    ]);
  });
});

describe('checkinsPerAgentPerSec: per agent, under either check-in model', () => {
  it('a share per minute ÷ 60; a fixed rate ÷ the agents sharing it, none without agents', () => {
    expect(checkinsPerAgentPerSec({ kind: 'fraction', fractionPerMin: 0.3, text: '30%/min' }, null)).toBeCloseTo(0.005, 12);
    expect(checkinsPerAgentPerSec({ kind: 'rate', ratePerSec: 250, text: '250/s' }, 50_000)).toBeCloseTo(0.005, 12);
    expect(checkinsPerAgentPerSec({ kind: 'rate', ratePerSec: 250, text: '250/s' }, null)).toBeNull();
    expect(checkinsPerAgentPerSec({ kind: 'rate', ratePerSec: 250, text: '250/s' }, 0)).toBeNull();
  });
});

describe('tierCapacities: measured ceilings to per-node capacities', () => {
  const layout = tierLayout([
    { name: 'db', role: 'db', tier: 'db' },
    { name: 'w1', role: 'web', tier: 'edge' },
    { name: 'w2', role: 'web', tier: 'edge' },
  ]);
  it('a single-instance tier works on one node: a standby DBAgent beside the leader does not halve its ceiling', () => {
    const withStandby = tierLayout([
      { name: 'app-1', role: 'app', tier: 'app' },
      { name: 'app-2', role: 'app', tier: 'app' },
    ]);
    expect(withStandby).toEqual([{ tier: 'app', nodes: ['app-1', 'app-2'], scalable: false }]);
    const { tiers } = tierCapacities([{ tier: 'app', ceilingRps: 400, ceilingAgents: 80_000, limitedBy: 'limiting: utilization 0.95' }], withStandby);
    expect(tiers).toEqual([{ tier: 'app', perNodeCeilingRps: 400, demandPerAgentRps: 0.005, scalable: false }]);
  });

  it("shares a tier's ceiling among its nodes, scales demand, and leaves out a tier without a ceiling", () => {
    const { tiers, notes } = tierCapacities(
      [
        { tier: 'edge', ceilingRps: 200, ceilingAgents: 40_000, limitedBy: 'limiting: utilization 0.97' },
        { tier: 'db', ceilingRps: 250, ceilingAgents: 50_000, limitedBy: 'estimated: utilization 0.80 at the ceiling' },
        { tier: 'proxy', ceilingRps: null, ceilingAgents: null, limitedBy: 'unknown: too little load on this tier to extrapolate' },
      ],
      layout,
      2,
    );
    expect(tiers).toEqual([
      { tier: 'edge', perNodeCeilingRps: 100, demandPerAgentRps: 0.01, scalable: true },
      { tier: 'db', perNodeCeilingRps: 250, demandPerAgentRps: 0.01, scalable: false },
    ]);
    expect(notes).toEqual(['db: ceiling estimated: utilization 0.80 at the ceiling', 'proxy: no ceiling (unknown: too little load on this tier to extrapolate), left out']);
  });
});
