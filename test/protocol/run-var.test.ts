import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.js';
import { parseScenario } from '../../src/scenario/load.js';
import { startOsqueryServer, type OsqueryServer } from '../helpers/osquery-tls-server.js';
import { runCli } from '../helpers/spawn-cli.js';

/** `rmmscale run --var NAME=VALUE`: the scenario protocol's variables, over its `agentVars`. */

let dir = '';
let server: OsqueryServer | null = null;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rmmscale-run-var-'));
});
afterEach(async () => {
  await server?.close();
  server = null;
  rmSync(dir, { recursive: true, force: true });
});

const OSQ = resolve('protocols/osquery-tls.yaml');
const HEAD = `stack: { target: http://127.0.0.1:9 }\nstages: [{ duration: 10s, agents: 10 }]\nagent: ${OSQ}\n`;

function problems(text: string, vars: Record<string, string>): string[] {
  const file = join(dir, 's.yaml');
  try {
    parseScenario(text, file, new Map(Object.entries(vars)));
  } catch (err) {
    if (err instanceof ValidationError) return err.problems.map((l) => l.replace(file, 's.yaml'));
    throw err;
  }
  return [];
}

describe('run --var over a scenario\'s agentVars', () => {
  it('overrides a value the scenario gives, and fills one it does not', () => {
    const file = join(dir, 's.yaml');
    const given = parseScenario(`${HEAD}agentVars: { enroll_secret: from-file }\n`, file, new Map([['enroll_secret', 'from-flag']]));
    expect(given.agent?.values).toEqual({ enroll_secret: 'from-flag' });
    // The definition keeps the scenario as written (names only, values redacted).
    expect((given.definition as { agentVars: unknown }).agentVars).toEqual({ enroll_secret: '(redacted)' });
    expect(parseScenario(HEAD, file, new Map([['enroll_secret', 'only-flag']])).agent?.values).toEqual({ enroll_secret: 'only-flag' });
    expect(parseScenario(`${HEAD}agentVars: { enroll_secret: from-file }\n`, file).agent?.values).toEqual({ enroll_secret: 'from-file' });
  });

  it('a variable the protocol does not declare is --var\'s problem; the scenario\'s own stays agentVars\'', () => {
    expect(problems(`${HEAD}agentVars: { enroll_secret: x }\n`, { nope: '1' })).toEqual([
      's.yaml:3 agent: --var: expected NAME=VALUE with NAME a variable the protocol declares (enroll_secret), got "nope=1"',
    ]);
    expect(problems(`${HEAD}agentVars: { enroll_secret: x, other: y }\n`, {})).toEqual([
      's.yaml:3 agent: agentVars: expected NAME=VALUE with NAME a variable the protocol declares (enroll_secret), got "other=y"',
    ]);
  });

  it('refuses a bad form and a scenario without agent:, one line each, exit 2', async () => {
    const file = join(dir, 's.yaml');
    writeFileSync(file, `name: v\n${HEAD}agentVars: { enroll_secret: x }\n`);
    const bad = await runCli(['run', file, '--var', 'enroll_secret', '--out', join(dir, 'out')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('rmmscale: --var: expected NAME=VALUE, e.g. --var enroll_secret=s3cret, got "enroll_secret"');
    const plain = join(dir, 'plain.yaml');
    writeFileSync(plain, 'name: plain\nstack: { target: http://127.0.0.1:9 }\nstages: [{ duration: 10s, agents: 10 }]\n');
    const none = await runCli(['run', plain, '--var', 'a=b', '--out', join(dir, 'out')]);
    expect(none.code).toBe(2);
    expect(none.stderr.trim()).toBe(`rmmscale: --var: expected a scenario with agent: (a protocol whose variables it sets); ${plain} has none, got "a=b"`);
  });

  it('drives the stack with the flag\'s value: the server accepts the enrolments the file\'s value would fail', async () => {
    server = await startOsqueryServer('flag-secret', { queryEvery: 3 });
    const file = join(dir, 'osq.yaml');
    writeFileSync(
      file,
      ['name: osq-var', `stack: { target: ${server.url} }`, `agent: ${OSQ}`, 'agentVars: { enroll_secret: stale-secret }', 'fleet: { agents: 5, checkin: 20/s }', 'stages: [{ duration: 2s, agents: 5 }]', 'timeLimit: 1m', ''].join('\n'),
    );
    const r = await runCli(['run', file, '--var', 'enroll_secret=flag-secret', '--out', join(dir, 'out'), '--no-report'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(server.invalid).toBe(0);
    expect(server.enrolls).toBeGreaterThan(0);
    expect(server.enrolls).toBe(new Set(server.issued.values()).size);
  });
});
