import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeJson } from '../gate/fixtures.js';
import { runCli } from '../helpers/spawn-cli.js';
import { shard } from '../run/run-shard-fixtures.js';

/**
 * `rmmscale merge` of `rmmscale run --shard i/n` results, through bin/rmmscale: the merged file is a
 * normal result that `report`, `gate` and `plan --from` read unchanged, and the scenario's thresholds
 * are judged on it, not per shard.
 */

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

function shards(thresholds: string[], failed: number[] = [0, 0, 0]): string[] {
  dir = dir || mkdtempSync(join(tmpdir(), 'rmmscale-merge-run-'));
  return [0, 1, 2].map((i) => writeJson(join(dir, `shard-${i}`, 'result.json'), { ...shard(i, { failed: failed[i] }), thresholds }));
}

describe('rmmscale merge of run shards', () => {
  it('writes a result that report, gate and plan --from read unchanged', async () => {
    const files = shards(['checkin.p99 < 500ms']);
    const out = join(dir, 'merged', 'result.json');
    const m = await runCli(['merge', ...files, '--out', out]);
    expect(m.stderr).toBe('rmmscale merge: ok: passed: 1 threshold: 1 passed (1 current run)\n');
    expect(m.code).toBe(0);
    expect(m.stdout).toContain(`merged 3 shard results: ${out}`);
    const merged = JSON.parse(readFileSync(out, 'utf8')) as { schema: string; windows: Array<{ client: { completed: number } }>; mergedFrom: unknown[] };
    expect(merged.schema).toBe('rmmscale.run/1');
    expect(merged.windows[0].client.completed).toBe(300);
    expect(merged.mergedFrom).toHaveLength(3);

    const report = await runCli(['report', out, '--md', '-']);
    expect(report.stderr).toBe('');
    expect(report.code).toBe(0);
    const gate = await runCli(['gate', out, '--threshold', 'checkin.p99 < 100ms']);
    expect(gate.code).toBe(5);
    expect(gate.stdout).toContain('checkin.p99');
    // A staged run has no ceiling to plan from: plan read the file, and says so as for any staged result
    // (the coordinated search's merged result is planned from in test/e2e/coordinated-ceiling.test.ts).
    const plan = await runCli(['plan', '--from', out, '--agents', '20000']);
    expect(plan.stderr).toBe(`rmmscale: --from: expected a result with a measured ceiling (a ceiling search that found one), got "${out}"\n`);
    expect(plan.code).toBe(2);
  }, 60_000);

  it('judges the scenario’s thresholds on the merged result: a shard over the limit alone does not fail it', async () => {
    // Shard 1 alone has 2 errors in 102 (1.96%); the whole run, 2 in 302 (0.66%).
    const files = shards(['errors.rate < 1%'], [0, 2, 0]);
    const out = join(dir, 'merged.json');
    const m = await runCli(['merge', ...files, '--out', out]);
    expect(m.stderr).toBe('rmmscale merge: ok: passed: 1 threshold: 1 passed (1 current run)\n');
    expect(m.code).toBe(0);
    const one = await runCli(['gate', files[1]]);
    expect(one.code).toBe(5);
  }, 60_000);

  it('refuses a set of shards that is not one run’s, in one line, exit 2', async () => {
    const files = shards([]);
    const m = await runCli(['merge', files[0], files[1], '--out', join(dir, 'x.json')]);
    expect(m.stderr).toBe('rmmscale: SHARD.json: expected the n result files of one sharded rmmscale run (shards 0/n … n−1/n, same seed and load): missing shard 2/3, got "2 of 3 shards"\n');
    expect(m.code).toBe(2);
  }, 60_000);
});
