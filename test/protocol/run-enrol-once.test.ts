import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runScenario } from '../../src/run/run.js';
import { parseScenario } from '../../src/scenario/load.js';
import { startOsqueryServer, type OsqueryServer } from '../helpers/osquery-tls-server.js';

/**
 * `rmmscale run` with an enrolling protocol: every window is a new swarm, but an agent enrols once
 * per run, and later windows present the node_key the first one was issued. Against the
 * independent osquery server (test/helpers/osquery-tls-server.ts), which marks every key issued
 * and used with the window current at the time.
 */

let server: OsqueryServer | null = null;
let dir = '';
const savedTmp = process.env.TMPDIR;

afterEach(async () => {
  await server?.close();
  server = null;
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

function scenario(lines: string[]): string {
  return ['name: osq-enrol-once', `stack: { target: ${server!.url} }`, `agent: ${resolve('protocols/osquery-tls.yaml')}`, 'agentVars: { enroll_secret: once-secret }', ...lines, 'timeLimit: 2m', ''].join('\n');
}

/** Run it in-process, the server's phase following the window being driven; the labels in order. */
async function run(text: string): Promise<{ labels: string[]; stateDirs: string[]; complete: boolean; error: string | null }> {
  dir = mkdtempSync(join(tmpdir(), 'rmmscale-enrol-once-'));
  // The run's private state folder is made under os.tmpdir(): here, under this test's own folder.
  process.env.TMPDIR = dir;
  const labels: string[] = [];
  const stateDirs = new Set<string>();
  const { result } = await runScenario({
    scenario: parseScenario(text, join(dir, 's.yaml')),
    outDir: join(dir, 'out'),
    allowRemote: false,
    onEvent: (e) => {
      if (e.type !== 'window-start') return;
      labels.push(e.label);
      server!.phase = e.label;
      for (const name of readdirSync(dir)) if (name.startsWith('rmmscale-enrolled-')) stateDirs.add(join(dir, name));
    },
  });
  return { labels, stateDirs: [...stateDirs], complete: result.complete, error: result.error };
}

/** Host identifier → every key the server issued it. */
function keysByHost(s: OsqueryServer): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [key, host] of s.issued) out.set(host, [...(out.get(host) ?? []), key]);
  return out;
}

describe('rmmscale run: an agent enrols once per run, not once per window', () => {
  it('a search over 10 agents: 10 enrolments in all, and the later windows use the first window\'s keys', async () => {
    server = await startOsqueryServer('once-secret', { queryEvery: 3 });
    // Two windows at least (20/s, then 30/s = max), 10 agents each firing every 0.5 s or less: all
    // of them enrol in the first window's warm-up.
    const r = await run(scenario(['fleet: { agents: 10 }', 'ceiling: { start: 20/s, max: 30/s, stepFactor: 1.5, warmup: 1s, measure: 2s }', 'slo: { p99: 5s, errors: 5% }']));
    expect(r.error).toBeNull();
    expect(r.labels.length).toBeGreaterThanOrEqual(2);
    const [first, ...later] = r.labels;
    expect(server.invalid).toBe(0);
    // Without keeping enrolment each window would enrol its 10 agents again (20 or more).
    expect(server.enrolls).toBe(10);
    const hosts = keysByHost(server);
    expect(hosts.size).toBe(10);
    for (const keys of hosts.values()) expect(keys).toHaveLength(1);
    for (const key of server.issued.keys()) expect(server.issuedIn.get(key)).toBe(first);
    for (const label of later) {
      const used = server.usedIn.get(label) ?? new Set<string>();
      expect(used.size, label).toBe(10);
      for (const key of used) expect(server.issuedIn.get(key), `${label}: ${key}`).toBe(first);
    }
    // The state folder existed while the run went, and is gone after it.
    expect(r.stateDirs).toHaveLength(1);
    expect(existsSync(r.stateDirs[0])).toBe(false);
  });

  it('a fleet that grows: the new agents enrol in the window they join, the others keep their keys', async () => {
    server = await startOsqueryServer('once-secret', { queryEvery: 3 });
    // Stage 1 ramps to 8 agents; stage 2 holds 8 for its warm-up, then ramps to 14.
    const r = await run(scenario(['fleet: { agents: 14, checkin: 40/s }', 'stages: [{ duration: 2s, agents: 8 }, { duration: 3s, agents: 14 }]']));
    expect(r.error).toBeNull();
    expect(r.labels).toEqual(['stage 1/2', 'stage 2/2']);
    expect(server.invalid).toBe(0);
    const hosts = keysByHost(server);
    // One enrolment per agent over the run: every host has exactly one key.
    expect(server.enrolls).toBe(hosts.size);
    for (const [host, keys] of hosts) expect(keys, host).toHaveLength(1);
    expect(hosts.size).toBeLessThanOrEqual(14);
    const inFirst = [...server.issued.keys()].filter((k) => server!.issuedIn.get(k) === 'stage 1/2');
    expect(inFirst.length).toBeGreaterThan(0);
    // Every key used in stage 2 was issued to its host in stage 1, or (a host new in stage 2) in stage 2.
    for (const key of server.usedIn.get('stage 2/2') ?? []) expect(server.issued.has(key)).toBe(true);
    for (const key of inFirst) expect(server.usedIn.get('stage 2/2')?.has(key), key).toBe(true);
    expect(existsSync(r.stateDirs[0])).toBe(false);
  });
});
