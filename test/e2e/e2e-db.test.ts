import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatRunEvent } from '../../src/cli/run-events.js';
import { runScenario } from '../../src/run/run.js';
import { alive } from '../helpers/fork-node.js';
import { profileFile, rateSearch } from './e2e-scenario.js';

/**
 * The same search on a stack whose database is the weak tier: 2 connections × 15 ms ≈ 133
 * queries/s. Web workers wait on their query, so the web tier's utilisation climbs with the
 * database's: the run must name the deeper tier, db, not web-agent.
 */
describe('rmmscale run: ceiling search on an emulated stack limited by its database', () => {
  it('names db as the limiting tier, with the web tier estimated above it', async () => {
    const profile = profileFile('weak-db', {
      tiers: {
        'web-agent': { workers: 16, queue: 4000, service: { dist: 'exponential', meanMs: 2 } },
        'web-user': { workers: 4, queue: 2000, service: { dist: 'exponential', meanMs: 2 } },
      },
      db: { workers: 2, queue: 20_000, service: { dist: 'exponential', meanMs: 15 } },
    });
    const out = mkdtempSync(join(tmpdir(), 'rmmscale-run-'));
    const lines: string[] = [];
    const { result } = await runScenario({ scenario: rateSearch('e2e-db', 'split2', profile, { start: 50, max: 600, p99Ms: 300, precision: 0.25, warmupMs: 1500, measureMs: 4000 }), outDir: out, allowRemote: false, onEvent: (e) => lines.push(formatRunEvent(e)) });
    const why = lines.join('\n');
    expect(result.error, why).toBeNull();
    expect(result.search?.outcome, why).toBe('found');
    expect(result.summary.limitingTier, why).toBe('db');
    expect(result.summary.ceilingRps!, why).toBeGreaterThan(50);
    expect(result.summary.ceilingRps!, why).toBeLessThan(140);
    const db = result.headline!.nodes.find((n) => n.node === 'db')!;
    expect(db.dbUtilization!.mean).toBeGreaterThan(0.4);
    expect(db.routes['db:checkin'].count).toBeGreaterThan(100);
    for (const n of result.stack.nodes) expect(alive(n.pid)).toBe(false);
  }, 300_000); // a search on a stolen host may wait up to 30 s for quiet before a re-measure
});
