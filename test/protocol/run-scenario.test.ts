import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/spawn-cli.js';
import { startOsqueryServer, type OsqueryServer } from '../helpers/osquery-tls-server.js';

let server: OsqueryServer | null = null;
let dir = '';

afterEach(async () => {
  await server?.close();
  server = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('rmmscale run with a scenario whose agent: is the osquery protocol', () => {
  it('drives the external target through the protocol, and passes its per-step thresholds', async () => {
    server = await startOsqueryServer('run-secret', { queryEvery: 3 });
    dir = mkdtempSync(join(tmpdir(), 'rmmscale-run-agent-'));
    const file = join(dir, 'osq.yaml');
    writeFileSync(
      file,
      [
        'name: osq',
        `stack: { target: ${server.url} }`,
        `agent: ${resolve('protocols/osquery-tls.yaml')}`,
        'agentVars: { enroll_secret: run-secret }',
        'fleet: { agents: 20, checkin: 100/s }',
        // A stage ramps from the previous count: 3 s up to 20 agents (a 1 s ramp window is too short
        // to judge on a loaded host: one slow second breaks its SLO), then 3 s held.
        'stages: [{ duration: 3s, agents: 20 }, { duration: 3s, agents: 20 }]',
        'thresholds: ["distributed_read.p99 < 5s", "config.p95 < 5s", "errors.rate < 1%"]',
        'timeLimit: 2m',
        '',
      ].join('\n'),
    );
    const out = join(dir, 'out');
    const r = await runCli(['run', file, '--out', out], { timeoutMs: 120_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as {
      headline: { client: { ops: Record<string, { completed: number }> } };
      scenario: { definition: { agentVars: unknown } };
    };
    // Each window is a new swarm, but an agent enrols once per run: the ramp's window enrolled the
    // agents it reached, the held stage (20 agents, each due every 0.2 s) the rest, and no agent twice.
    expect(server.enrolls).toBe(20);
    expect(new Set(server.issued.values()).size).toBe(20);
    for (const key of server.used) expect(server.issued.has(key)).toBe(true);
    expect(server.invalid).toBe(0);
    expect(result.headline.client.ops.distributed_read.completed).toBeGreaterThan(0);
    expect(JSON.stringify(result)).not.toContain('run-secret');
  });
});
