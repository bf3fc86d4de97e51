import { describe, expect, it } from 'vitest';
import { assemble } from '../../src/run/assemble.js';
import type { WindowResult } from '../../src/run/result-types.js';
import type { Scenario } from '../../src/scenario/types.js';
import { rateSearch } from '../e2e/e2e-scenario.js';
import { buildResult } from '../report/fixtures.js';

/**
 * assemble() is pure over the windows: a window that was measured once more because it could not
 * be trusted stays in the file, and is used for nothing else.
 */
const base = rateSearch('assemble', 'split3', 'automate', { start: 2000, max: 10_000, p99Ms: 200 });
const sc: Scenario = { ...base, ceiling: { ...base.ceiling!, unit: 'agents' }, plan: null };
const search = { outcome: 'found' as const, ceilingLoad: 6500, lastGood: 6500, firstBad: 7000, steps: [] };

function input(windows: WindowResult[]): Parameters<typeof assemble>[0] {
  return { sc, startedAt: new Date(0).toISOString(), complete: true, interrupted: false, error: null, windows, search, timeline: {}, hlogFiles: [], faults: [], ledger: null, warnings: [], nodes: [], versions: buildResult().versions };
}

/** The fixture's 6 windows (the last, 6,500 agents, met the SLO) with that last one made untrustworthy. */
function withUntrustedLast(): WindowResult[] {
  const windows = structuredClone(buildResult().windows);
  const last = windows[5];
  last.generator = { ...last.generator, trustworthy: false, generatorBound: true, reasons: ['3.5% of sends left more than 10 ms late'] };
  return windows;
}

describe('assemble: a window measured again', () => {
  it('an untrustworthy window that was not measured again makes the whole run untrustworthy', () => {
    const r = assemble(input(withUntrustedLast()));
    expect(r.summary.trustworthy).toBe(false);
    expect(r.summary.warnings).toContain('bisect 6500 agents: not trustworthy: 3.5% of sends left more than 10 ms late');
  });

  it('its replacement is the headline; the superseded window stays in the file, noted, and counts for nothing', () => {
    const windows = withUntrustedLast();
    const again: WindowResult = { ...structuredClone(buildResult().windows[5]), index: 6, label: 'bisect 6500 agents (again)' };
    windows[5].supersededBy = 6;
    windows.push(again);
    const r = assemble(input(windows));
    expect(r.windows).toHaveLength(7);
    expect(r.windows[5].supersededBy).toBe(6);
    expect(r.summary.trustworthy).toBe(true);
    expect(r.summary.ceilingAgents).toBe(6500);
    expect(r.headline!.windowIndex).toBe(6);
    expect(r.summary.warnings).toEqual(['bisect 6500 agents: not trustworthy (3.5% of sends left more than 10 ms late); measured again as window #6']);
    // The fit sees each load once: the superseded window is not a point.
    expect(r.fits.usl?.points.filter((p) => p.load === 6500)).toHaveLength(1);
  });
});

describe('assemble: the scaling fit names the axis it was fitted on', () => {
  it('agents for a search by agents, rate for a search by rate (the fit used the offered rate)', () => {
    const windows = structuredClone(buildResult().windows);
    expect(assemble(input(windows)).fits.usl?.loadUnit).toBe('agents');
    const byRate = assemble({ ...input(windows), sc: { ...sc, ceiling: { ...sc.ceiling!, unit: 'rate' } } });
    expect(byRate.fits.usl?.loadUnit).toBe('rate');
    expect(byRate.fits.usl?.points.map((p) => p.load)).toEqual([...windows.filter((w) => w.generator.trustworthy).map((w) => w.client.offeredRatePerSec)].sort((a, b) => a - b));
  });
});

describe('assemble: the tiers a result names', () => {
  it('a custom tier keeps its name in the summary, the stack tiers and the plan', () => {
    // The fixture's agent web tier, as a topology file would name it: `edge`.
    const rename = <T extends { tier: string }>(x: T): T => (x.tier === 'web-agent' ? { ...x, tier: 'edge' } : x);
    const windows = structuredClone(buildResult().windows).map((w) => ({
      ...w,
      nodes: w.nodes.map(rename),
      diagnosis: { ...w.diagnosis, limitingTier: w.diagnosis.limitingTier === 'web-agent' ? 'edge' : w.diagnosis.limitingTier },
    }));
    const nodes = buildResult().stack.nodes.map(rename);
    const r = assemble({ ...input(windows), nodes, sc: { ...sc, plan: { agents: [20_000], redundancy: 'n+1', maxUtilization: 0.8 } } });
    expect(r.summary.limitingTier).toBe('edge');
    expect(r.summary.tiers.map((t) => t.tier)).toContain('edge');
    expect(r.summary.tiers.map((t) => t.tier)).not.toContain('single');
    expect(r.stack.tiers.find((t) => t.tier === 'edge')).toEqual({ tier: 'edge', nodes: ['web-agent-1', 'web-agent-2'], scalable: true });
    expect(r.plan!.tiers.find((t) => t.tier === 'edge')!.nodes).toBeGreaterThan(1);
  });

  it('a search by rate counts every tier ceiling in agents at the check-in model, as summary.ceilingAgents', () => {
    // The fixture's windows as a search by rate offers them: a fixed fleet, the rate rising.
    const windows = structuredClone(buildResult().windows).map((w) => ({ ...w, agents: 2000 }));
    const byRate = assemble({ ...input(windows), sc: { ...sc, ceiling: { ...sc.ceiling!, unit: 'rate' } }, search: { ...search, ceilingLoad: windows[5].client.offeredRatePerSec } });
    expect(byRate.load).toEqual({ unit: 'rate', checkin: { kind: 'fraction', fractionPerMin: 0.3, text: '30%/min' } });
    // 30%/min is 0.005 check-ins/s per agent: the ceiling rate in agents.
    expect(byRate.summary.ceilingAgents).toBe(Math.round(windows[5].client.offeredRatePerSec / 0.005));
    const web = byRate.summary.tiers.find((t) => t.tier === 'web-agent')!;
    expect(web.limitedBy).toMatch(/^limiting: /);
    // Equal but for the rounding of the tier's rate to 0.1/s (before: 2,000, the fleet's size).
    expect(Math.abs(web.ceilingAgents! - byRate.summary.ceilingAgents!) / byRate.summary.ceilingAgents!).toBeLessThan(1e-3);
  });
});
