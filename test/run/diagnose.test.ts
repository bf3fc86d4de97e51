import { describe, expect, it } from 'vitest';
import { calmerWindow, diagnose, slopePerSec, tierCeilings } from '../../src/run/diagnose.js';
import type { NodeWindow, TierName } from '../../src/run/result-types.js';

const lat = (p99Ms: number) => ({ count: 100, minUs: 1000, meanUs: p99Ms * 300, p50Us: p99Ms * 200, p90Us: p99Ms * 600, p99Us: p99Ms * 1000, p999Us: p99Ms * 1200, maxUs: p99Ms * 1500 });

function node(name: string, tier: TierName, o: { rate?: number; util?: number | null; q?: [number, number]; dbUtil?: number; dbQ?: [number, number]; errors?: number; p99Ms?: number; cpu?: number } = {}): NodeWindow {
  const rate = o.rate ?? 100;
  const count = rate * 20;
  return {
    node: name,
    role: tier === 'web-agent' || tier === 'web-user' ? 'web' : tier,
    tier,
    ratePerSec: rate,
    routes: { r: { count, errors: o.errors ?? 0, ratePerSec: rate, latency: lat(o.p99Ms ?? 100), histogram: '' } },
    utilization: o.util === undefined || o.util === null ? null : { mean: o.util, max: Math.min(1, o.util + 0.05) },
    queueDepth: o.q ? { mean: o.q[0], max: o.q[0] * 2, growthPerSec: o.q[1] } : null,
    dbUtilization: o.dbUtil === undefined ? null : { mean: o.dbUtil, max: o.dbUtil },
    dbQueueDepth: o.dbQ ? { mean: o.dbQ[0], max: o.dbQ[0] * 2, growthPerSec: o.dbQ[1] } : null,
    eventLoopDelayP99MsMax: 2,
    cpuCoresMean: o.cpu ?? 0.1,
    hostLimitedSec: 0,
    erlang: null,
  };
}

describe('diagnose: naming the limiting tier', () => {
  it('a saturated agent web tier, the database idle: web-agent, with each node named', () => {
    const d = diagnose([node('proxy', 'proxy'), node('web-agent-1', 'web-agent', { util: 0.97 }), node('web-agent-2', 'web-agent', { util: 0.95 }), node('db', 'db', { dbUtil: 0.4 })], null);
    expect(d.limitingTier).toBe('web-agent');
    expect(d.evidence).toEqual(['web-agent: utilization 0.97 (web-agent-1 0.97, web-agent-2 0.95)']);
  });

  it('the database saturated drives the web tier up too: the deeper tier, db, is named', () => {
    const d = diagnose([node('web-agent-1', 'web-agent', { util: 0.99, q: [40, 3] }), node('db', 'db', { dbUtil: 0.98, dbQ: [300, 25] })], null);
    expect(d.limitingTier).toBe('db');
    expect(d.evidence).toEqual(['db: utilization 0.98, queue growing 25.0/s (mean depth 300)', 'web-agent: utilization 0.99, queue growing 3.0/s (mean depth 40)', 'db is the deepest saturated tier: web-agent wait on it']);
  });

  it("the single server's embedded database counts as the db tier", () => {
    expect(diagnose([node('single', 'single', { util: 0.96, dbUtil: 0.5 })], null).limitingTier).toBe('single');
    expect(diagnose([node('single', 'single', { util: 0.99, dbUtil: 0.93 })], null).limitingTier).toBe('db');
  });

  it('a growing queue alone (utilisation under 0.9) is saturation', () => {
    const d = diagnose([node('web-user-1', 'web-user', { util: 0.8, q: [12, 1.5] }), node('web-agent-1', 'web-agent', { util: 0.5 })], null);
    expect(d.limitingTier).toBe('web-user');
    // …but a queue that is not growing, or a tiny one, is not.
    expect(diagnose([node('web-user-1', 'web-user', { util: 0.8, q: [12, 0.2] })], null).limitingTier).toBeNull();
    expect(diagnose([node('web-user-1', 'web-user', { util: 0.8, q: [0.5, 2] })], null).limitingTier).toBeNull();
  });

  it('without saturation, server errors name the deepest erring tier', () => {
    const d = diagnose([node('proxy', 'proxy', { errors: 40 }), node('web-agent-1', 'web-agent', { util: 0.5, errors: 40 }), node('app', 'app')], null);
    expect(d.limitingTier).toBe('web-agent');
    expect(d.evidence[0]).toBe('web-agent: 2.0% server errors (40 of 2000)');
    // Below 0.5%: noise, not a limit.
    expect(diagnose([node('web-agent-1', 'web-agent', { util: 0.5, errors: 5 })], null).limitingTier).toBeNull();
  });

  it('then node-side latency that rose 2× or more since the last good window', () => {
    const before = [node('proxy', 'proxy', { p99Ms: 10 }), node('web-agent-1', 'web-agent', { util: null, p99Ms: 50 })];
    const after = [node('proxy', 'proxy', { p99Ms: 15 }), node('web-agent-1', 'web-agent', { util: null, p99Ms: 400 })];
    const d = diagnose(after, before);
    expect(d.limitingTier).toBe('web-agent');
    expect(d.evidence).toEqual(['web-agent: node-side p99 rose 8.0× (400 ms)']);
    expect(diagnose(after, null).limitingTier).toBeNull();
  });

  it('nothing at all: no tier is named, and the evidence says so', () => {
    const d = diagnose([node('web-agent-1', 'web-agent', { util: 0.3 })], null);
    expect(d).toEqual({ limitingTier: null, evidence: ['no tier shows saturation, server errors or rising node-side latency: the limit is outside the measured tiers'] });
  });
});

describe('tierCeilings: the utilisation law for the tiers that did not limit', () => {
  it('measured for the limiting tier, extrapolated to its utilisation for the others, CPU for tiers without a model', () => {
    const nodes = [
      node('proxy', 'proxy', { rate: 200, cpu: 0.3 }),
      node('web-agent-1', 'web-agent', { rate: 100, util: 0.95 }),
      node('web-agent-2', 'web-agent', { rate: 100, util: 0.93 }),
      node('db', 'db', { rate: 210, dbUtil: 0.5 }),
      node('app', 'app', { rate: 0, cpu: 0.01 }),
    ];
    const t = tierCeilings(nodes, 40_000, 'web-agent', ['web-agent: utilization 0.95 (web-agent-1 0.95, web-agent-2 0.93)']);
    expect(t.map((x) => x.tier)).toEqual(['db', 'app', 'web-agent', 'proxy']);
    const by = Object.fromEntries(t.map((x) => [x.tier, x]));
    expect(by['web-agent']).toEqual({ tier: 'web-agent', ceilingRps: 200, ceilingAgents: 40_000, limitedBy: 'limiting: utilization 0.95 (web-agent-1 0.95, web-agent-2 0.93)' });
    // db: 210/s at 0.5 → 210 × 0.95 / 0.5 = 399/s; per agent 210/40k → 76,000 agents.
    expect(by.db.ceilingRps).toBe(399);
    expect(by.db.ceilingAgents).toBe(76_000);
    // proxy: 200/s at 0.3 cores → 200 × 0.9 / 0.3 = 600/s.
    expect(by.proxy.ceilingRps).toBe(600);
    expect(by.proxy.ceilingAgents).toBe(120_000);
    expect(by.app).toEqual({ tier: 'app', ceilingRps: null, ceilingAgents: null, limitedBy: 'unknown: too little load on this tier to extrapolate' });
  });

  it('estimates a tier in front of a saturated database from a calmer load, not from its waiting-inflated utilisation', () => {
    // At the ceiling (50,000 agents, 250/s) the db limits; the web nodes read 1.00 busy because
    // their workers are held waiting on the db's queue.
    const atCeiling = [node('web-agent-1', 'web-agent', { rate: 250, util: 1 }), node('db', 'db', { rate: 250, dbUtil: 1 })];
    const evidence = ['db: utilization 1.00'];
    const naive = tierCeilings(atCeiling, 50_000, 'db', evidence);
    expect(naive.find((t) => t.tier === 'web-agent')!.ceilingAgents).toBe(50_000);
    // At 30,000 agents (150/s) the db was at 0.60 and the web node at 0.50: 150 × 1.00 / 0.50 = 300/s,
    // at 150/30,000 per agent → 60,000 agents.
    const windows = [
      { agents: 20_000, ok: true, nodes: [node('web-agent-1', 'web-agent', { rate: 100, util: 0.33 }), node('db', 'db', { rate: 100, dbUtil: 0.4 })] },
      { agents: 30_000, ok: true, nodes: [node('web-agent-1', 'web-agent', { rate: 150, util: 0.5 }), node('db', 'db', { rate: 150, dbUtil: 0.6 })] },
      { agents: 45_000, ok: true, nodes: [node('web-agent-1', 'web-agent', { rate: 225, util: 0.95 }), node('db', 'db', { rate: 225, dbUtil: 0.9 })] },
      { agents: 40_000, ok: false, nodes: [node('web-agent-1', 'web-agent', { rate: 200, util: 0.4 }), node('db', 'db', { rate: 200, dbUtil: 0.5 })] },
    ];
    const calmer = calmerWindow(windows, 'db', 50_000);
    expect(calmer?.agents).toBe(30_000);
    const t = tierCeilings(atCeiling, 50_000, 'db', evidence, calmer);
    const web = t.find((x) => x.tier === 'web-agent')!;
    expect(web.ceilingRps).toBe(300);
    expect(web.ceilingAgents).toBe(60_000);
    expect(web.limitedBy).toBe('estimated at 30000 agents, where db was at utilization 0.60: utilization 0.50; capacity ≈ rate × 1.00/0.50 (at the ceiling its workers also waited on db)');
    // The limiting tier itself is still the measured ceiling.
    expect(t.find((x) => x.tier === 'db')).toEqual({ tier: 'db', ceilingRps: 250, ceilingAgents: 50_000, limitedBy: 'limiting: utilization 1.00' });
    expect(calmerWindow(windows, 'db', 20_000)).toBeNull();
    expect(calmerWindow(windows, null, 50_000)).toBeNull();
  });
});

describe('slopePerSec', () => {
  it('is the least-squares slope', () => {
    expect(slopePerSec([0, 2, 4, 6])).toBe(2);
    expect(slopePerSec([5, 5, 5])).toBe(0);
    expect(slopePerSec([3])).toBe(0);
    expect(slopePerSec([10, 8, 6, 4, 2])).toBe(-2);
  });
});

describe('a tier a topology file names itself keeps its name', () => {
  /** A node of a custom tier: the role says what it is, the tier is the topology's own name. */
  const custom = (name: string, tier: string, role: string, o: Parameters<typeof node>[2]): NodeWindow => ({ ...node(name, 'web-agent', o), role, tier });

  it('a saturated custom web tier is named by its own name, with the depth of a web tier', () => {
    const d = diagnose([node('proxy', 'proxy', { util: 0.95 }), custom('edge-1', 'edge', 'web', { util: 0.97 }), node('db', 'db', { dbUtil: 0.4 })], null);
    // edge sits where web-agent does: deeper than the proxy, so it, not the proxy, is the cause.
    expect(d.limitingTier).toBe('edge');
    expect(d.evidence).toEqual(['edge: utilization 0.97', 'proxy: utilization 0.95', 'edge is the deepest saturated tier: proxy wait on it']);
  });

  it('a custom database tier is judged by its database model, and is deeper than any web tier', () => {
    const d = diagnose([custom('web-1', 'front', 'web', { util: 0.99 }), custom('store', 'storage', 'db', { dbUtil: 0.98 })], null);
    expect(d.limitingTier).toBe('storage');
    const c = tierCeilings([custom('web-1', 'front', 'web', { util: 0.5 }), custom('store', 'storage', 'db', { dbUtil: 0.9 })], 1000, 'storage', ['storage: utilization 0.90']);
    expect(c.map((t) => [t.tier, t.limitedBy.split(':')[0]])).toEqual([
      ['storage', 'limiting'],
      ['front', 'estimated'],
    ]);
  });
});

describe('diagnose: an external stack known through its scraped series (stack.nodes)', () => {
  /** A node of an external stack: no routes, its figures from its mapping. */
  function ext(name: string, tier: string, role: string, o: { util?: number; q?: [number, number]; requests?: number; errors?: number; p99Us?: number } = {}): NodeWindow {
    return {
      node: name,
      role,
      tier,
      ratePerSec: (o.requests ?? 0) / 20,
      routes: {},
      utilization: o.util === undefined ? null : { mean: o.util, max: o.util },
      queueDepth: o.q ? { mean: o.q[0], max: o.q[0], growthPerSec: o.q[1] } : null,
      dbUtilization: null,
      dbQueueDepth: null,
      eventLoopDelayP99MsMax: 0,
      cpuCoresMean: 0,
      hostLimitedSec: 0,
      erlang: null,
      scraped: { mapping: 'm.yaml', requests: o.requests ?? null, errors: o.errors ?? null, latency: o.p99Us === undefined ? null : { count: 10, p50Us: 1, p90Us: 1, p95Us: 1, p99Us: o.p99Us } },
    };
  }

  it("a db node's utilisation is its mapping's (not the database model's), and the deepest saturated tier wins", () => {
    const d = diagnose([ext('lb', 'proxy', 'proxy', { util: 0.2 }), ext('api-1', 'api', 'web', { util: 0.95, q: [12, 2] }), ext('pg', 'db', 'db', { util: 0.97 })], null);
    expect(d).toEqual({ limitingTier: 'db', evidence: ['db: utilization 0.97', 'api: utilization 0.95, queue growing 2.0/s (mean depth 12)', 'db is the deepest saturated tier: api wait on it'] });
  });

  it("server errors from the mapping's error counter name a tier", () => {
    const d = diagnose([ext('lb', 'proxy', 'proxy', { requests: 1000, errors: 0 }), ext('api-1', 'api', 'web', { requests: 1000, errors: 30 })], null);
    expect(d).toEqual({ limitingTier: 'api', evidence: ['api: 3.0% server errors (30 of 1000)'] });
  });

  it("a p99 from the histogram's buckets that doubled names a tier", () => {
    const d = diagnose([ext('api-1', 'api', 'web', { p99Us: 90_000 })], [ext('api-1', 'api', 'web', { p99Us: 30_000 })]);
    expect(d).toEqual({ limitingTier: 'api', evidence: ['api: node-side p99 rose 3.0× (90 ms)'] });
  });

  it('no node measured at all: no tier can be named, and the evidence says why', () => {
    expect(diagnose([], null)).toEqual({ limitingTier: null, evidence: ['no node of the stack was measured (an external target without stack.nodes): no tier can be named'] });
  });
});
