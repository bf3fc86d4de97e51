import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/spawn-cli.js';
import { runResult, runWithCheckinP99, writeJson } from './fixtures.js';
import { children, parseXml } from './xml.js';

// Needs `npm run build` (the real binary runs dist/).
const dir = mkdtempSync(join(tmpdir(), 'rmmscale-gate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, doc: unknown): string => writeJson(join(dir, name), doc);

describe('rmmscale gate: exit codes from the real binary', () => {
  it('0: every threshold passed (scenario thresholds, --json report)', async () => {
    const cur = file('pass/result.json', runResult({ thresholds: ['checkin.p99 < 500ms', 'errors.rate < 0.1%'] }));
    const r = await runCli(['gate', cur, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { schema: string; outcome: string; exitCode: number; checks: Array<{ verdict: string; threshold: { text: string } }> };
    expect(report).toMatchObject({ schema: 'rmmscale.gate/1', outcome: 'pass', exitCode: 0 });
    expect(report.checks.map((c) => [c.threshold.text, c.verdict])).toEqual([
      ['checkin.p99 < 500ms', 'pass'],
      ['errors.rate < 0.1%', 'pass'],
    ]);
  });

  it('5: a regression against the baseline; --junit and --md are written', async () => {
    const cur = file('fail/result.json', runWithCheckinP99(700));
    const base = file('baselines/ci-gate.json', runWithCheckinP99(400));
    const junit = join(dir, 'out/junit.xml');
    const md = join(dir, 'out/gate.md');
    const r = await runCli(['gate', cur, '--baseline', base, '--threshold', 'checkin.p99 <= +10%', '--threshold', 'errors.count == 0', '--junit', junit, '--md', md]);
    expect(r.code).toBe(5);
    expect(r.stdout.split('\n')[0]).toBe('rmmscale gate: FAIL (exit 5): 2 thresholds: 1 passed, 1 failed (1 current run vs 1 baseline run)');
    const cases = children(children(parseXml(readFileSync(junit, 'utf8')), 'testsuite')[0], 'testcase');
    expect(cases.map((c) => [c.attrs.name, c.children.map((x) => x.name).join()])).toEqual([
      ['checkin.p99 <= +10%', 'failure'],
      ['errors.count == 0', ''],
    ]);
    expect(readFileSync(md, 'utf8')).toContain('| `checkin.p99 <= +10%` | 700 ms | 400 ms | ❌ fail |');
  });

  it('4: a generator-bound run, and an incomplete run', async () => {
    const bound = file('bound/result.json', runResult({ trustworthy: false, thresholds: ['checkin.p99 < 500ms'] }));
    const r1 = await runCli(['gate', bound]);
    expect(r1.code).toBe(4);
    expect(r1.stdout).toContain('invalid measurement: ');
    const partial = file('partial/result.json', runResult({ complete: false, error: 'interrupted', thresholds: ['checkin.p99 < 500ms'] }));
    const junit = join(dir, 'partial/junit.xml');
    const r2 = await runCli(['gate', partial, '--junit', junit]);
    expect(r2.code).toBe(4);
    expect(parseXml(readFileSync(junit, 'utf8')).attrs).toMatchObject({ tests: '1', errors: '1' });
  });

  it('several runs: directories of runs on both sides', async () => {
    [401, 399, 400].forEach((v, i) => file(`many/cur/run-${i + 1}/result.json`, runWithCheckinP99(v)));
    [400, 402, 398].forEach((v, i) => file(`many/base/run-${i + 1}/result.json`, runWithCheckinP99(v)));
    const r = await runCli(['gate', join(dir, 'many/cur'), '--baseline', join(dir, 'many/base'), '--threshold', 'checkin.p99 <= +10%', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { current: string[]; checks: Array<{ verdict: string; decision: { method: string; n: number; m: number } }> };
    expect(report.current).toEqual([1, 2, 3].map((i) => join(dir, `many/cur/run-${i}/result.json`)));
    expect(report.checks[0]).toMatchObject({ verdict: 'pass', decision: { method: 'welch', n: 3, m: 3 } });
  });

  it('--inconclusive fail turns an inconclusive comparison into exit 5', async () => {
    const cur = file('single/cur.json', runWithCheckinP99(420));
    const base = file('single/base.json', runWithCheckinP99(400));
    const args = ['gate', cur, '--baseline', base, '--threshold', 'checkin.p99 <= +10%'];
    expect((await runCli(args)).code).toBe(0);
    expect((await runCli([...args, '--inconclusive', 'fail'])).code).toBe(5);
    expect((await runCli([...args, '--noise', '0%'])).code).toBe(0);
  });

  it.each([
    [['--threshold', 'checkin.p99 < fast'], '--threshold "checkin.p99 < fast": expected a duration like 500ms after "<", got "fast"'],
    [['--threshold', 'checkin.p99 <= +10%'], '--threshold "checkin.p99 <= +10%": a baseline-relative value (+10%) needs --baseline BASE.json'],
    [['--threshold', 'checkin.p98 < 1s'], '--threshold "checkin.p98 < 1s": unknown metric "checkin.p98"; did you mean "checkin.p90" or "checkin.p95" or "checkin.p99"?'],
    [['--threshold', 'chekin.p99 < 1s'], 'CUR: no operation "chekin" in CUR (headline.client.ops: checkin, heartbeat); did you mean "checkin"?'],
    [['--threshold', 'errors.count == 0', '--inconclusive', 'maybe'], '--inconclusive: expected pass or fail, got "maybe"'],
    [['--threshold', 'errors.count == 0', '--noise', 'lots'], '--noise: expected a run-to-run variation like "5%" (0% to 100%), got "lots"'],
    [[], 'no thresholds to check: CUR has none (result.thresholds is empty) and no --threshold was given'],
    [['--threshold'], '--threshold "": expected METRIC OP VALUE, like "checkin.p99 < 500ms", got nothing'],
    [['--threshold', 'errors.count == 0', '--junit'], '--junit: expected a file path, got ""'],
  ])('2: bad input %j, one line', async (args, message) => {
    const cur = file('bad/result.json', runResult());
    const r = await runCli(['gate', cur, ...args]);
    expect(r.code).toBe(2);
    const msg = message.startsWith('CUR: ') ? `--threshold "chekin.p99 < 1s": ${message.slice(5).replace('CUR', cur)}` : message.replace('CUR', cur);
    expect(r.stderr).toBe(`rmmscale: ${msg}\n`);
    expect(r.stdout).toBe('');
  });

  it('2: a file that is not a run result, and one that does not exist', async () => {
    const swarm = file('swarm.json', { schema: 'rmmscale.swarm/1' });
    const r1 = await runCli(['gate', swarm, '--threshold', 'errors.count == 0']);
    expect(r1.code).toBe(2);
    // The one reader's message (src/run/result-file.ts), as `rmmscale report` and `plan --from` say it.
    expect(r1.stderr).toBe(`rmmscale: ${swarm}: schema: expected "rmmscale.run/1" (the result.json of rmmscale run), got "rmmscale.swarm/1"\n`);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"schema": ');
    const r2 = await runCli(['gate', broken, '--threshold', 'errors.count == 0']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(new RegExp(`^rmmscale: ${broken.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not JSON \\(.+\\); expected the result.json of rmmscale run\\n$`));
    const junit = join(dir, 'missing-junit.xml');
    const r3 = await runCli(['gate', join(dir, 'missing.json'), '--threshold', 'errors.count == 0', '--junit', junit]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toBe(`rmmscale: CURRENT: expected a result.json file or a directory of runs (ENOENT), got ${JSON.stringify(join(dir, 'missing.json'))}\n`);
    expect(existsSync(junit)).toBe(false);
  });
});
