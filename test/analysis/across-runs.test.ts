import { describe, expect, it } from 'vitest';
import { acrossRuns, t975 } from '../../src/analysis/across-runs.js';
import { poolResults, renderPooled } from '../../src/cli/commands/pool.js';
import type { RunResult } from '../../src/run/result-types.js';
import { runResult } from '../gate/fixtures.js';

describe('within 10% across repeated runs', () => {
  it('pools the runs\' p50 ratios into a t-interval of their geometric mean', () => {
    // Eight runs' ping ratios (analytics-degraded, 2026-12-06): worked by hand, mean of the logs
    // -0.0622, sd 0.1241, t(7) 2.365 → exp(-0.0622 ± 0.1038) = 0.847–1.043.
    const a = acrossRuns([0.903, 1.172, 0.938, 0.928, 0.828, 0.796, 1.059, 0.947]);
    expect(a).toEqual({ runs: 8, geoMean: 0.94, low: 0.847, high: 1.043, within10pct: 'held' });
  });

  it('broken when the whole interval is above 1.10, unresolved when it straddles it', () => {
    expect(acrossRuns([1.3, 1.25, 1.35, 1.28]).within10pct).toBe('broken');
    expect(acrossRuns([0.84, 1.86, 0.92, 1.0, 0.88]).within10pct).toBe('unresolved');
  });

  it('needs three runs for an interval; ignores ratios that are not positive numbers', () => {
    expect(acrossRuns([1.0, 1.01])).toEqual({ runs: 2, geoMean: 1.005, low: null, high: null, within10pct: 'unresolved' });
    expect(acrossRuns([])).toMatchObject({ runs: 0, geoMean: null, within10pct: 'unresolved' });
    expect(acrossRuns([1, 1, 1, 0, Number.NaN])).toMatchObject({ runs: 3, low: 1, high: 1, within10pct: 'held' });
  });

  it('takes Student t for few runs and the normal quantile past 30', () => {
    expect(t975(2)).toBe(4.303);
    expect(t975(30)).toBe(2.042);
    expect(t975(200)).toBe(1.96);
  });
});

describe('rmmscale pool', () => {
  const withFault = (ratios: Record<string, number>, node = 'analytics'): RunResult => {
    const r = runResult();
    r.faults = [
      {
        at: 25,
        stage: 2,
        action: 'slow',
        node,
        forSec: 60,
        bySec: null,
        byFactor: 10,
        fraction: null,
        firedAtSec: 45,
        outcome: 'done',
        error: null,
        errorsSec: 0,
        errors: 0,
        dropped: null,
        reconnect: null,
        latencyVsClean: Object.entries(ratios).map(([op, p50Ratio]) => ({ op, cleanCount: 100, faultCount: 100, cleanP50Ms: 1, faultP50Ms: p50Ratio, cleanP99Ms: 2, faultP99Ms: 2, p50Ratio, p99Ratio: 1, p50RatioCi: null, within10pct: 'unresolved' })),
      } as unknown as RunResult['faults'][number],
    ];
    return r;
  };

  it('matches each fault across the files and pools each op', async () => {
    const docs = [0.9, 1.17, 0.94].map((ping, i) => ({ file: `r${i}.json`, doc: withFault({ 'ws-ping': ping, 'ws-rtt': 1 }) }));
    const pooled = await poolResults(docs);
    expect(pooled.map((p) => [p.fault, p.op, p.ratios])).toEqual([
      ['slow analytics (fault 1)', 'ws-ping', [0.9, 1.17, 0.94]],
      ['slow analytics (fault 1)', 'ws-rtt', [1, 1, 1]],
    ]);
    expect(pooled[1]).toMatchObject({ geoMean: 1, low: 1, high: 1, within10pct: 'held', perRun: ['unresolved', 'unresolved', 'unresolved'] });
    expect(pooled[0]!.within10pct).toBe('unresolved'); // three runs this far apart do not resolve 10%
    expect(renderPooled(pooled, 3)).toContain('ws-rtt         1.00×  1.00×–1.00×    held');
  });

  it('refuses runs whose faults differ, in one line naming the file', async () => {
    const docs = [
      { file: 'a.json', doc: withFault({ 'ws-ping': 1 }) },
      { file: 'b.json', doc: withFault({ 'ws-ping': 1 }, 'db') },
    ];
    await expect(poolResults(docs)).rejects.toThrow('b.json: expected the same faults, in the same order, as a.json ([slow analytics]), got "faults [slow db]"');
  });
});
