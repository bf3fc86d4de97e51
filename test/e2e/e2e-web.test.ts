import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatRunEvent } from '../../src/cli/run-events.js';
import { runScenario } from '../../src/run/run.js';
import { readResultFile } from '../../src/run/result-file.js';
import { RUN_RESULT_SCHEMA } from '../../src/run/result-types.js';
import { alive } from '../helpers/fork-node.js';
import { profileFile, rateSearch } from './e2e-scenario.js';

/**
 * A short ceiling search on a real split2 stack (5 processes) whose agent web node is the weak
 * tier: 2 workers × 20 ms exponential ≈ 100 requests/s at saturation, a fast database. The run must
 * find a ceiling below that and name web-agent, not the database or the proxy.
 */
describe('rmmscale run: ceiling search on an emulated stack limited by its agent web tier', () => {
  it('finds the ceiling, names web-agent, writes result.json and .hlog files, and stops every node', async () => {
    const profile = profileFile('weak-web', {
      tiers: {
        'web-agent': { workers: 2, queue: 2000, service: { dist: 'exponential', meanMs: 20 } },
        'web-user': { workers: 4, queue: 2000, service: { dist: 'exponential', meanMs: 5 } },
      },
      db: { workers: 16, queue: 5000, service: { dist: 'exponential', meanMs: 1 } },
    });
    const out = mkdtempSync(join(tmpdir(), 'rmmscale-run-'));
    const lines: string[] = [];
    const { result, resultFile } = await runScenario({ scenario: rateSearch('e2e-web', 'split2', profile, { start: 40, max: 400, p99Ms: 400, precision: 0.25 }), outDir: out, allowRemote: false, onEvent: (e) => lines.push(formatRunEvent(e)) });
    // The file as written, through the one reader (valid against schemas/result.schema.json).
    const onDisk = readResultFile(resultFile);
    expect(onDisk.schema).toBe(RUN_RESULT_SCHEMA);
    expect(onDisk.summary).toEqual(result.summary);
    // A search by rate: its typed load, and every tier's agents counted at the check-in model, as
    // the summary counts them (not at the search's fixed fleet of 2,000).
    expect(onDisk.load).toEqual({ unit: 'rate', checkin: { kind: 'fraction', fractionPerMin: 0.3, text: '30%/min' } });
    expect(result.error, lines.join('\n')).toBeNull();
    expect(result.complete).toBe(true);
    expect(result.search?.outcome, lines.join('\n')).toBe('found');
    expect(result.summary.limitingTier, lines.join('\n')).toBe('web-agent');
    // 2 workers × 20 ms: saturation at 100/s; the p99 ≤ 400 ms ceiling sits below it.
    expect(result.summary.ceilingRps!).toBeGreaterThan(45);
    expect(result.summary.ceilingRps!).toBeLessThan(105);
    const webTier = result.summary.tiers.find((t) => t.tier === 'web-agent')!;
    expect(webTier.limitedBy).toMatch(/^limiting: /);
    expect(Math.abs(webTier.ceilingAgents! - result.summary.ceilingAgents!) / result.summary.ceilingAgents!).toBeLessThan(0.01);
    // The database was far from its limit: its estimated ceiling is well above the web tier's.
    const db = result.summary.tiers.find((t) => t.tier === 'db')!;
    expect(db.ceilingRps === null || db.ceilingRps > 2 * webTier.ceilingRps!).toBe(true);
    // Every node measured per window, server side, beside the client side.
    const head = result.headline!;
    const web = head.nodes.find((n) => n.node === 'web-agent-1')!;
    expect(web.routes.checkin.count).toBeGreaterThan(100);
    expect(Math.abs(web.routes.checkin.count - head.client.ops.checkin.completed) / head.client.ops.checkin.completed).toBeLessThan(0.1);
    expect(web.utilization!.mean).toBeGreaterThan(0.3);
    expect(web.erlang).not.toBeNull();
    // Background users reached the user node.
    expect(head.nodes.find((n) => n.node === 'web-user-1')!.ratePerSec).toBeGreaterThan(0);
    expect(result.windows.length).toBeGreaterThanOrEqual(4);
    expect(result.windows.some((w) => w.kind === 'bisect')).toBe(true);
    expect(Object.keys(result.timeline).sort()).toEqual(['app', 'db', 'proxy', 'web-agent-1', 'web-user-1']);
    expect(result.timeline['web-agent-1'].length).toBeGreaterThan(20);
    for (const f of result.hlogFiles) expect(existsSync(join(out, f))).toBe(true);
    expect(result.plan?.tiers.find((t) => t.tier === 'web-agent')?.nodes).toBeGreaterThan(1);
    for (const n of result.stack.nodes) expect(alive(n.pid)).toBe(false);
  }, 300_000); // a search on a stolen host may wait up to 30 s for quiet before a re-measure
});
