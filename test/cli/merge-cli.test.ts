import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeHistogram, mergeEncoded } from '../../src/metrics/histogram.js';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { planFleet } from '../../src/swarm/fleet-schedule.js';
import type { SwarmResult } from '../../src/swarm/result.js';
import { startAgentServer, type TestAgentServer } from '../helpers/agent-server.js';
import { runCli } from '../helpers/spawn-cli.js';

/**
 * Four shard processes (bin/rmmscale swarm --shard i/4) against one local target, started together
 * by --start-at, then `rmmscale merge`: the merged result holds exactly the sum of its shards
 * (requests, and the histograms bucket for bucket), and its schedule is exactly one unsharded run's.
 */

const SECRET = 'merge-secret';
const N = 4;
let server: TestAgentServer | null = null;
let dir = '';

afterEach(async () => {
  await server?.close();
  server = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

const FLAGS = ['--agents', '400', '--checkin-interval', '2s', '--duration', '3s', '--seed', 'merge', '--secret', SECRET, '--workers', '1', '--arrival', 'poisson'];

describe('rmmscale merge', () => {
  it('merges 4 shard processes into exactly the sum of their shards, and their schedule is one run’s', async () => {
    server = await startAgentServer(SECRET);
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-merge-'));
    const startAt = String(Date.now() + 4000);
    const files = Array.from({ length: N }, (_, i) => join(dir, `shard-${i}.json`));
    const runs = await Promise.all(
      files.map((f, i) => runCli(['swarm', '--target', server!.url, ...FLAGS, '--shard', `${i}/${N}`, '--start-at', startAt, '--json', f], { timeoutMs: 60_000 })),
    );
    for (const r of runs) expect(r.stderr).not.toMatch(/internal error/);
    const shards = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as SwarmResult);
    shards.forEach((s, i) => {
      expect(s.shard).toMatchObject({ index: i, count: N, startAtEpochMs: Number(startAt), startAtRequestedEpochMs: Number(startAt) });
    });

    const out = join(dir, 'merged.json');
    const merged = await runCli(['merge', ...files, '--out', out]);
    expect(merged.stderr).toBe('');
    const m = JSON.parse(readFileSync(out, 'utf8')) as SwarmResult;
    const sum = (f: (r: SwarmResult) => number): number => shards.reduce((a, r) => a + f(r), 0);

    // The schedule: the shards' intended sends are exactly those of one unsharded run.
    const cfg = resolveSwarmConfig({ target: server.url, agents: '400', checkinInterval: '2s', duration: '3s', seed: 'merge', arrival: 'poisson' });
    const whole = planFleet(cfg.profile, cfg.seed, cfg.agents, 0, cfg.profile.durationMs, undefined, { arrival: 'poisson' });
    expect(m.summary.intended).toBe(whole.length);
    expect(sum((r) => r.summary.intended)).toBe(whole.length);

    // Requests: the sum of the shards, and what the one target received.
    for (const k of ['intended', 'attempted', 'completed', 'failed', 'late', 'dropped'] as const) expect(m.summary[k]).toBe(sum((r) => r.summary[k]));
    expect(m.ops.checkin.count).toBe(sum((r) => r.ops.checkin.count));
    expect(m.summary.completed).toBe(server.counts.get('/agent/v1/checkin') ?? -1);

    // Histograms: bucket for bucket the sum of the shards'.
    const want = mergeEncoded(shards.map((r) => r.ops.checkin.histograms.corrected));
    const got = decodeHistogram(m.ops.checkin.histograms.corrected);
    expect(got.totalCount).toBe(m.summary.completed);
    for (const p of [0, 50, 90, 99, 99.9, 100]) expect(got.getValueAtPercentile(p)).toBe(want.getValueAtPercentile(p));
    expect(got.mean).toBe(want.mean);

    // The series: aligned by the shared t = 0, counts summed second by second; its seconds are every
    // second any shard has (shard 0's alone missed a 4th second another shard ended in, on a busy host).
    expect(m.series.map((p) => p.tSec)).toEqual([...new Set(shards.flatMap((r) => r.series.map((p) => p.tSec)))].sort((a, b) => a - b));
    // Summed by second of the shared clock: a shard that started or ended a second apart (a busy
    // host) has no point for that second, and adds nothing to it.
    m.series.forEach((p) => expect(p.attempted).toBe(sum((r) => r.series.find((q) => q.tSec === p.tSec)?.attempted ?? 0)));
    expect(sum((r) => r.series.reduce((a, q) => a + q.attempted, 0))).toBe(m.series.reduce((a, q) => a + q.attempted, 0));
    expect(m.mergedFrom?.map((s) => s.index)).toEqual([0, 1, 2, 3]);
    expect(m.verdict.trustworthy).toBe(shards.every((r) => r.verdict.trustworthy));
    expect(merged.code).toBe(m.verdict.trustworthy ? 0 : 4);

    // Not the shards of one run: one line, exit 2.
    const twice = await runCli(['merge', files[0], files[0], files[2], files[3], '--out', join(dir, 'x.json')]);
    expect(twice.code).toBe(2);
    expect(twice.stderr.trim().split('\n')).toHaveLength(1);
    expect(twice.stderr).toContain(`is shard 0 too`);
    const missing = await runCli(['merge', files[0], files[1], files[2], '--out', join(dir, 'x.json')]);
    expect(missing.stderr).toMatch(/missing shard 3\/4/);
    expect(missing.code).toBe(2);
  }, 120_000);
});
