import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RmmscaleError } from '../../src/core/errors.js';
import { assemble } from '../../src/run/assemble.js';
import { readResultFile, resultProblems } from '../../src/run/result-file.js';
import type { RunResult } from '../../src/run/result-types.js';
import { rateSearch } from '../e2e/e2e-scenario.js';
import { runResult } from '../gate/fixtures.js';
import { buildResult } from '../report/fixtures.js';

/**
 * src/run/result-file.ts, the one reader of result.json (report, gate and plan --from read through
 * it), and schemas/result.schema.json, which it checks every file against. Real result files: the
 * committed baselines (three runs of scenarios/ci-gate.yaml) here; the e2e runs in
 * test/e2e/run-cli.test.ts read theirs through the reader too.
 */
const dir = mkdtempSync(join(tmpdir(), 'rmmscale-result-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const BASELINES = [1, 2, 3].map((i) => `baselines/ci-gate/run-${i}/result.json`);
const raw = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;

/** The reader's error for a file: its code, exit code and message (never a stack). */
function errorOf(file: string): { code: string; exitCode: number; message: string } {
  try {
    readResultFile(file);
  } catch (err) {
    expect(err).toBeInstanceOf(RmmscaleError);
    const e = err as RmmscaleError;
    return { code: e.code, exitCode: e.exitCode, message: e.message };
  }
  throw new Error(`${file} was read without an error`);
}

describe('schemas/result.schema.json: every result rmmscale writes is valid', () => {
  it('the committed baselines (real runs, written before load, stack.tiers and attemptedRatePerSec were recorded)', () => {
    for (const f of BASELINES) {
      expect(resultProblems(raw(f)), f).toEqual([]);
      expect('load' in raw(f)).toBe(false);
    }
  });

  it('the report and gate test fixtures, in every variant', () => {
    const variants = [
      buildResult(),
      buildResult({ search: false, fit: false }),
      buildResult({ nodes: false }),
      buildResult({ untrustworthy: true }),
      buildResult({ plan: false, fit: false, hostileText: true }),
      buildResult({ alertDelays: true }),
      buildResult({ search: false, fit: false, alertDelays: true }),
      runResult(),
      runResult({ headline: false, complete: false, error: 'interrupted' }),
    ];
    for (const r of variants) expect(resultProblems(JSON.parse(JSON.stringify(r)))).toEqual([]);
  });

  it('a result assembled by the run, with its plan and fit, as written to the file', () => {
    const sc = rateSearch('schema', 'split3', 'automate', { start: 2000, max: 10_000, p99Ms: 200 });
    const fixture = buildResult();
    const r = assemble({ sc: { ...sc, ceiling: { ...sc.ceiling!, unit: 'agents' } }, startedAt: fixture.startedAt, complete: true, interrupted: false, error: null, windows: fixture.windows, search: { outcome: 'found', ceilingLoad: 6500, lastGood: 6500, firstBad: 7000, steps: [] }, timeline: fixture.timeline, hlogFiles: [], faults: [], ledger: null, warnings: [], nodes: fixture.stack.nodes, versions: fixture.versions });
    expect(r.plan).not.toBeNull();
    expect(r.fits.usl).not.toBeNull();
    expect(resultProblems(JSON.parse(JSON.stringify(r)))).toEqual([]);
  });
});

describe('readResultFile: one set of errors, one line each, exit 2', () => {
  const full = JSON.stringify(buildResult());
  it.each([
    ['a missing file', () => join(dir, 'nope.json'), (f: string) => `${f}: cannot read the result file (no such file)`],
    ['not JSON', () => write('text.json', 'hello'), (f: string) => `${f}: not JSON (Unexpected token 'h', "hello" is not valid JSON); expected the result.json of rmmscale run`],
    ['a JSON array', () => write('array.json', '[]'), (f: string) => `${f}: expected a JSON object: the result.json of rmmscale run`],
    ['no schema', () => write('noschema.json', '{}'), (f: string) => `${f}: schema: expected "rmmscale.run/1" (the result.json of rmmscale run), got nothing`],
    ['another schema', () => write('swarm.json', '{"schema":"rmmscale.swarm/1"}'), (f: string) => `${f}: schema: expected "rmmscale.run/1" (the result.json of rmmscale run), got "rmmscale.swarm/1"`],
    [
      'wrong kinds, named by path; a large value by its kind, not its text',
      () => {
        const d = JSON.parse(full) as Record<string, unknown> & { summary: Record<string, unknown>; windows: Array<Record<string, unknown>> };
        d.summary.trustworthy = 'yes';
        d.windows[2].client = [1, 2, 3];
        d.search = { ...(d.search as object), outcome: 'maybe' };
        return write('kinds.json', JSON.stringify(d));
      },
      (f: string) =>
        `${f}: not a complete rmmscale.run/1 result: summary.trustworthy: expected boolean, got "yes"; windows[2].client: expected object, got array; search.outcome: expected one of found, below-start, above-max, untrustworthy, budget, got "maybe"`,
    ],
    [
      'a custom tier with a name no topology could give it',
      () => write('tier.json', full.replace('"tier": "web-user"', '"tier": "Web User"').replace(/"tier":"web-user"/g, '"tier":"Web User"')),
      (f: string) => expect.stringMatching(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not a complete rmmscale\\.run/1 result: .*tier: expected a value matching \\^\\[a-z\\]\\[a-z0-9-\\]\\{0,40\\}\\$, got "Web User"`)),
    ],
  ] as Array<[string, () => string, (f: string) => unknown]>)('%s', (_name, make, message) => {
    const f = make();
    const e = errorOf(f);
    expect(e).toEqual({ code: 'ERR_RESULT_FILE', exitCode: 2, message: message(f) });
    expect(e.message).not.toContain('\n');
  });

  it('lists at most six problems and counts the rest', () => {
    const f = write('partial.json', JSON.stringify({ schema: 'rmmscale.run/1', summary: {} }));
    expect(errorOf(f).message).toBe(
      `${f}: not a complete rmmscale.run/1 result: scenario: expected object, got missing; versions: expected object, got missing; host: expected object, got missing; startedAt: expected string, got missing; endedAt: expected string, got missing; complete: expected boolean, got missing; and 18 more`,
    );
  });
});

describe('readResultFile: the typed facts, also for a file written before they were recorded', () => {
  it('a result that has them keeps them as written', () => {
    const r = buildResult();
    const back = readResultFile(write('new.json', JSON.stringify(r)));
    expect(back.load).toEqual({ unit: 'agents', checkin: { kind: 'fraction', fractionPerMin: 3, text: '300%/min' } });
    expect(back.stack.tiers).toEqual(r.stack.tiers);
    expect(back).toEqual(r);
  });

  it('a committed baseline: the check-in model its windows ran at, tiers from its nodes, attempted from its sends', () => {
    const r = readResultFile(BASELINES[0]);
    const stored = raw(BASELINES[0]) as unknown as RunResult;
    expect(r.load).toEqual({ unit: 'agents', checkin: { kind: 'fraction', fractionPerMin: 0.3, text: '30%/min' } });
    expect(r.stack.tiers).toEqual([
      { tier: 'db', nodes: ['db'], scalable: false },
      { tier: 'app', nodes: ['app'], scalable: false },
      { tier: 'web-agent', nodes: ['web-agent-1'], scalable: true },
      { tier: 'web-user', nodes: ['web-user-1'], scalable: true },
      { tier: 'proxy', nodes: ['proxy'], scalable: true },
    ]);
    const w = stored.windows[1];
    expect(r.windows[1].client.attemptedRatePerSec).toBeCloseTo(w.client.count / w.measuredSec, 1);
    expect(r.headline!.client.attemptedRatePerSec).toBe(r.windows[1].client.attemptedRatePerSec);
    // Nothing else changes.
    expect(r.summary).toEqual(stored.summary);
    expect(r.windows[1].nodes).toEqual(w.nodes);
  });

  it('an old search by rate: the default check-in model, and its tier agents recounted at it as summary.ceilingAgents is', () => {
    // As rmmscale wrote a search by rate before `load`: a fixed fleet of 2,000 agents offered each
    // rate, and each tier's ceilingAgents counted that fleet, while summary.ceilingAgents counted
    // agents at 30%/min (the only check-in model a search by rate could have).
    const d = buildResult();
    delete (d as Partial<RunResult>).load;
    delete (d.stack as Partial<RunResult['stack']>).tiers;
    d.search = { ...d.search!, unit: 'rate' };
    d.headline = { ...d.headline!, client: { ...d.headline!.client, agents: 2000 } };
    const ratio = d.summary.ceilingAgents! / 2000;
    d.summary.tiers = d.summary.tiers.map((t) => ({ ...t, ceilingAgents: t.ceilingAgents === null ? null : Math.round(t.ceilingAgents / ratio) }));
    // The limiting tier's ceiling was the fleet itself.
    expect(d.summary.tiers.find((t) => t.tier === 'web-agent')!.ceilingAgents).toBe(2000);
    const r = readResultFile(write('old-rate.json', JSON.stringify(d)));
    expect(r.load).toEqual({ unit: 'rate', checkin: { kind: 'fraction', fractionPerMin: 0.3, text: '30%/min' } });
    expect(r.summary.tiers.map((t) => t.ceilingAgents)).toEqual(d.summary.tiers.map((t) => (t.ceilingAgents === null ? null : Math.round(t.ceilingAgents * ratio))));
    expect(r.summary.tiers.find((t) => t.tier === 'web-agent')!.ceilingAgents).toBe(d.summary.ceilingAgents);
  });
});

describe('docs/result.md matches schemas/result.schema.json', () => {
  const schema = JSON.parse(readFileSync('schemas/result.schema.json', 'utf8')) as { properties: Record<string, { properties?: Record<string, unknown> }>; definitions: Record<string, { properties?: Record<string, unknown> }> };
  const doc = readFileSync('docs/result.md', 'utf8');
  /** The field names in the first column of the doc's tables (`windows[]` names `windows`). */
  const names = (text: string): string[] => [...text.matchAll(/^\| ([^|]+) \|/gm)].flatMap((m) => [...m[1].matchAll(/`([^`]+)`/g)].map((x) => x[1].replace(/\[\]$/, '')));
  /** …and the fields that have a section of their own (`## \`summary\``). */
  const documented = new Set([...names(doc), ...[...doc.matchAll(/^#+ `([^`]+)`/gm)].map((m) => m[1])]);

  it('documents every top-level field and every field of summary, load, a stack tier, a window, a latency summary and a fault', () => {
    const want = [
      ...Object.keys(schema.properties),
      ...Object.keys(schema.properties.summary.properties!),
      ...Object.keys(schema.properties.load.properties!),
      ...Object.keys(schema.definitions.stackTier.properties!),
      ...Object.keys(schema.definitions.window.properties!),
      ...Object.keys(schema.definitions.latency.properties!),
      ...Object.keys(schema.definitions.fault.properties!),
    ];
    const missing = want.filter((k) => !documented.has(k));
    expect(missing).toEqual([]);
  });

  it('documents no top-level field the schema does not have', () => {
    const top = names(doc.split('## The rest')[1].split('### ')[0]);
    expect(top.length).toBeGreaterThan(15);
    expect(top.filter((k) => !(k in schema.properties))).toEqual([]);
  });
});
