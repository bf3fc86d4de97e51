import { describe, expect, it } from 'vitest';
import { createLatencyHistogram, recordUs, summarize } from '../../src/metrics/histogram.js';
import { mergeRunShards } from '../../src/run/merge-run.js';
import { parseResultText } from '../../src/run/result-file.js';
import type { RunResult } from '../../src/run/result-types.js';
import { latenciesWithP99 } from '../gate/fixtures.js';
import { shard } from './run-shard-fixtures.js';

/**
 * `rmmscale merge` of run shards (src/run/merge-run.ts) over hand-built shard results (test/gate/
 * fixtures.ts: real HDR histograms). Exact sums, the SLO judged again on the merged figures, the
 * stack's nodes counted once, the untrustworthy shard named, and wrong sets refused.
 */

const docs = (shards: RunResult[]): Array<{ file: string; doc: RunResult }> => shards.map((doc, i) => ({ file: `shard-${i}.json`, doc }));

describe('mergeRunShards', () => {
  it('adds counts and histograms exactly: the merged p99 is the p99 of every request of every shard', () => {
    const shards = [0, 1, 2].map((i) => shard(i, { failed: i }));
    const m = mergeRunShards(docs(shards));
    const c = m.windows[0].client;
    expect(c.count).toBe(shards.reduce((a, s) => a + s.windows[0].client.count, 0));
    expect(c.completed).toBe(300);
    expect(c.failed).toBe(3);
    expect(c.offeredRatePerSec).toBe(30);
    // One histogram holding every check-in of every shard:
    const h = createLatencyHistogram();
    for (const i of [0, 1, 2]) for (const v of latenciesWithP99(100 + 50 * i)) recordUs(h, v * 1000);
    expect(c.ops.checkin.latency).toEqual(summarize(h));
    expect(c.ops.checkin.completed).toBe(300);
    // The merged file is a normal result: the one reader takes it.
    const back = parseResultText('merged.json', JSON.stringify(m));
    expect(back.mergedFrom?.map((s) => s.index)).toEqual([0, 1, 2]);
    expect(back.shard).toBeUndefined();
  });

  it('judges the SLO on the merged figures, not per shard', () => {
    // Shard 1 alone breaks the 1% error SLO (2 of 102); the whole run (2 of 302) does not.
    const shards = [shard(0), shard(1, { failed: 2 }), shard(2)];
    expect(shards[1].windows[0].verdict.ok).toBe(false);
    const m = mergeRunShards(docs(shards));
    expect(m.windows[0].client.errorRate).toBeCloseTo(2 / 302, 6);
    expect(m.windows[0].verdict).toEqual({ ok: true, breaches: [] });
    // And the other way: a tail only one shard saw still breaks the merged p99 (SLO 500 ms).
    const slow = [shard(0, { ms: latenciesWithP99(100) }), shard(1, { ms: latenciesWithP99(100) }), shard(2, { ms: Array.from({ length: 100 }, () => 900) })];
    expect(slow[0].windows[0].verdict.ok).toBe(true);
    const m2 = mergeRunShards(docs(slow));
    expect(m2.windows[0].verdict.ok).toBe(false);
    expect(m2.windows[0].verdict.breaches[0]).toMatch(/^p99 9\d\d\.\d ms > 500\.0 ms$/);
  });

  it('counts the shared stack nodes once: every shard scraped them, the merge takes shard 0’s', () => {
    const m = mergeRunShards(docs([0, 1, 2].map((i) => shard(i))));
    expect(m.windows[0].nodes).toHaveLength(1);
    expect(m.windows[0].nodes[0].ratePerSec).toBe(99.5);
    expect(m.timeline['single-1']).toHaveLength(1);
    expect(m.timeline['single-1'][0].requestsPerSec).toBe(30);
  });

  it('aligns the shards by their measured clock offsets', () => {
    // Shard 0 started at 00:01; shard 1 at 00:02 on a clock 2 s ahead of the coordinator's (00:00 on it); shard 2 at 00:03.
    const m = mergeRunShards(docs([shard(0, { startedAt: '2025-01-01T00:00:01.000Z', clockOffsetMs: 0 }), shard(1, { startedAt: '2025-01-01T00:00:02.000Z', clockOffsetMs: 2000 }), shard(2, { startedAt: '2025-01-01T00:00:03.000Z', clockOffsetMs: 0 })]));
    expect(m.startedAt).toBe('2025-01-01T00:00:00.000Z');
    expect(m.mergedFrom?.map((s) => s.clockOffsetMs)).toEqual([0, 2000, 0]);
    // Shard 0's node series (its t = 1 s) is 2 s after the merged start; the window starts with shard 1's.
    expect(m.timeline['single-1'][0].tSec).toBe(2);
    expect(m.windows[0].startSec).toBe(0);
  });

  it('keeps the alert delay of the shard that read the analytics node (it covers every shard\'s agents), its timeline on the merged clock', () => {
    const owner = shard(1, { startedAt: '2025-01-01T00:00:03.000Z', clockOffsetMs: 0 });
    owner.alertDelayMs = { alerts: 12, p50Ms: 150, p99Ms: 900, maxMs: 950 };
    owner.alertDelayTimeline = [
      { tSec: 0, alerts: 5, p50Ms: 140, p99Ms: 300 },
      { tSec: 4, alerts: 7, p50Ms: 290, p99Ms: 950 },
    ];
    const others = [shard(0, { startedAt: '2025-01-01T00:00:01.000Z', clockOffsetMs: 0 }), shard(2, { startedAt: '2025-01-01T00:00:02.000Z', clockOffsetMs: 0 })];
    for (const o of others) o.alertDelayMs = null;
    const m = mergeRunShards(docs([others[0], owner, others[1]]));
    expect(m.alertDelayMs).toEqual({ alerts: 12, p50Ms: 150, p99Ms: 900, maxMs: 950 });
    // The owner started 2 s after the earliest shard: its seconds move by 2.
    expect(m.alertDelayTimeline).toEqual([
      { tSec: 2, alerts: 5, p50Ms: 140, p99Ms: 300 },
      { tSec: 6, alerts: 7, p50Ms: 290, p99Ms: 950 },
    ]);
    // Without any shard that read alerts, the merged result has none either.
    expect(mergeRunShards(docs([0, 1, 2].map((i) => shard(i)))).alertDelayMs ?? null).toBeNull();
  });

  it('makes the whole untrustworthy when one shard was, and names it', () => {
    const m = mergeRunShards(docs([shard(0), shard(1), shard(2, { trustworthy: false })]));
    const g = m.windows[0].generator;
    expect(g.trustworthy).toBe(false);
    expect(g.reasons[0]).toMatch(/^not trustworthy because shard 2\/3 was not/);
    expect(g.reasons).toContain('shard 2/3: generator-bound: scheduling lag p99 40 ms');
    expect(m.summary.trustworthy).toBe(false);
    expect(m.summary.warnings).toContain('not trustworthy because shard 2/3 was not');
  });

  it('refuses a missing shard, a shard of another run, and an unsharded result, in one line', () => {
    expect(() => mergeRunShards(docs([shard(0), shard(1)]))).toThrow(/missing shard 2\/3/);
    expect(() => mergeRunShards(docs([shard(0), shard(1), shard(2, { seed: 'other' })]))).toThrow(/another run/);
    const plain = shard(2);
    delete plain.shard;
    expect(() => mergeRunShards(docs([shard(0), shard(1), plain]))).toThrow(/a result without a shard/);
  });
});
