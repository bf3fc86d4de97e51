import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveAgent, deriveKey, generateSecret, verifyAgentToken } from '../../src/core/identity.js';
import { loadScenario } from '../../src/scenario/load.js';
import { startStack } from '../../src/stack/launcher.js';
import { NodeMetrics } from '../../src/stack/runtime/node-metrics.js';
import { NodeServer } from '../../src/stack/runtime/node-server.js';
import { findSecret, resolveSecret, stackServing, writeStackState } from '../../src/stack/state-file.js';
import { namedTopology } from '../../src/stack/topology.js';
import type { NodeSpec, RoleHandler } from '../../src/stack/types.js';
import { alive } from '../helpers/fork-node.js';
import { BIN, runCli } from '../helpers/spawn-cli.js';
import { checkinOf } from './web-fixture.js';

/**
 * Secrets: no well-known default, a generated secret found by the tools that need it (through a
 * 0600 state file, never a log line), none in result.json or the reports, and no internal error
 * message in a 500.
 */

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rmmscale-secrets-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function checkin(url: string, secret: string, index = 0): Promise<number> {
  const a = deriveAgent('secrets-test', secret, index);
  const r = await fetch(`${url}/agent/v1/checkin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${a.token}`, 'x-agent-id': a.id },
    body: JSON.stringify(checkinOf(a)),
  });
  await r.text();
  return r.status;
}

describe('secrets', () => {
  it('a stack started without a secret generates its own: the old default opens nothing', async () => {
    const stack = await startStack(namedTopology('single'), { stopGraceMs: 3000 });
    try {
      expect(stack.secretGenerated).toBe(true);
      expect(stack.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(stack.secret).not.toBe(generateSecret());
      expect(await checkin(stack.entryUrl, 'rmmscale-dev-secret')).toBe(401);
      expect(await checkin(stack.entryUrl, stack.secret)).toBe(200);
    } finally {
      await stack.stop();
    }
  }, 30_000);

  it('stack up: the secret goes to a 0600 state file (never to --json output or stderr); swarm and stack tokens find it; stop removes it', async () => {
    const stateDir = join(dir, 'state');
    const env = { ...process.env, RMMSCALE_STATE_DIR: stateDir, RMMSCALE_SECRET: '' };
    const child: ChildProcess = spawn(process.execPath, [BIN, 'stack', 'up', 'single', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 30_000;
      while (!out.includes('"event":"ready"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const ready = JSON.parse(out.split('\n')[0]) as { entry: string; stateFile: string; nodes: Array<{ pid: number }> };
      expect(ready.stateFile).toBe(join(stateDir, `stack-${child.pid}.json`));
      expect(statSync(ready.stateFile).mode & 0o777).toBe(0o600);
      expect(statSync(stateDir).mode & 0o777).toBe(0o700);
      const state = JSON.parse(readFileSync(ready.stateFile, 'utf8')) as { secret: string; entry: string };
      expect(state.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(stackServing([ready.entry], env)?.secret).toBe(state.secret);
      expect(out).not.toContain(state.secret);

      // The swarm, given only the target, finds the secret: every check-in is accepted.
      const json = join(dir, 'swarm.json');
      const swarm = await runCli(['swarm', '--target', ready.entry, '--agents', '50', '--rate', '20/s', '--duration', '1s', '--json', json], { env });
      expect(swarm.stderr).not.toContain('random secret');
      const result = JSON.parse(readFileSync(json, 'utf8')) as { ops: { checkin: { count: number; completed: number; failed: number } } };
      expect(result.ops.checkin.count).toBeGreaterThan(5);
      expect(result.ops.checkin.failed).toBe(0);
      expect(result.ops.checkin.completed).toBe(result.ops.checkin.count);
      // stack tokens, without --secret, prints tokens this stack accepts.
      const tokens = await runCli(['stack', 'tokens', '--agents', '2', '--seed', 's'], { env });
      expect(tokens.code).toBe(0);
      const [id, token] = tokens.stdout.split('\n')[0].split(' ');
      expect(verifyAgentToken(state.secret, id, token)).toBe(true);

      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(readdirSync(stateDir)).toEqual([]);
      for (const n of ready.nodes) expect(alive(n.pid)).toBe(false);
      expect(err).not.toContain(state.secret);
      expect(out).not.toContain(state.secret);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);

  it('a swarm with no secret and no stack serving its target says so, and its tokens are under a random secret', async () => {
    const r = await runCli(['swarm', '--target', 'http://127.0.0.1:9', '--duration', '1s'], { env: { RMMSCALE_STATE_DIR: join(dir, 'empty'), RMMSCALE_SECRET: '' } });
    expect(r.stderr).toContain('rmmscale: no --secret, no RMMSCALE_SECRET and no running `rmmscale stack up` serves http://127.0.0.1:9: agent tokens are under a random secret');
  });

  it('run: fleet.secret stays out of result.json, the reports and the output', async () => {
    const secret = 'a-secret-only-this-test-knows-0123';
    const file = join(dir, 'tiny.yaml');
    writeFileSync(
      file,
      `name: tiny\nstack: {topology: single}\nfleet: {checkin: 30%/min, secret: ${secret}}\nstages:\n  - {duration: 2s, agents: 400}\nslo: {p99: 2s, errors: 1%}\ntimeLimit: 1m\n`,
    );
    expect(JSON.stringify(loadScenario(file).definition)).not.toContain(secret);
    const outDir = join(dir, 'run-out');
    const r = await runCli(['run', file, '--out', outDir], { timeoutMs: 60_000 });
    expect([0, 4]).toContain(r.code); // 4: an untrustworthy host is still a run that wrote its files
    const files = readdirSync(outDir);
    expect(files).toEqual(expect.arrayContaining(['result.json', 'report.html', 'summary.md']));
    for (const f of files) expect(readFileSync(join(outDir, f), 'utf8')).not.toContain(secret);
    expect(r.stdout + r.stderr).not.toContain(secret);
    const result = JSON.parse(readFileSync(join(outDir, 'result.json'), 'utf8')) as { scenario: { definition: { fleet: { secret: string } } } };
    expect(result.scenario.definition.fleet.secret).toBe('(redacted)');
  }, 90_000);
});

describe('the state file', () => {
  it('is found by the URL a tool loads, only while its launcher runs and only if nobody else can read it', () => {
    const env = { RMMSCALE_STATE_DIR: join(dir, 'lookup') };
    const mine = writeStackState({ pid: process.pid, topology: 'single', entry: 'http://127.0.0.1:41001', urls: ['http://127.0.0.1:41001', 'http://127.0.0.1:41002'], secret: 's-live', startedAt: new Date().toISOString() }, env);
    // A launcher that died without cleaning up (its PID no longer exists).
    writeFileSync(join(env.RMMSCALE_STATE_DIR, 'stack-2147483646.json'), JSON.stringify({ format: 'rmmscale.stack/1', pid: 2147483646, topology: 'x', entry: 'http://127.0.0.1:41003', urls: ['http://127.0.0.1:41003'], secret: 's-dead', startedAt: '' }), { mode: 0o600 });
    expect(findSecret('--secret', undefined, ['http://127.0.0.1:41002/agent/v1/checkin'], env)).toBe('s-live');
    expect(findSecret('--secret', undefined, ['ws://127.0.0.1:41001/agent/v1/tunnel'], env)).toBe('s-live');
    expect(findSecret('--secret', undefined, ['http://127.0.0.1:41003'], env)).toBeNull();
    expect(findSecret('--secret', undefined, ['http://127.0.0.1:9'], env)).toBeNull();
    expect(findSecret('--secret', 'given', ['http://127.0.0.1:41001'], env)).toBe('given');
    expect(findSecret('--secret', undefined, ['http://127.0.0.1:41001'], { ...env, RMMSCALE_SECRET: 'from-env' })).toBe('from-env');
    expect(() => resolveSecret('fleet.secret', undefined, ['http://127.0.0.1:9'], env)).toThrow(
      /^fleet\.secret: expected the stack's secret \(or env RMMSCALE_SECRET\): none was given and no running `rmmscale stack up` serves http:\/\/127\.0\.0\.1:9/,
    );
    // Readable by others: not trusted.
    chmodSync(mine, 0o644);
    expect(findSecret('--secret', undefined, ['http://127.0.0.1:41001'], env)).toBeNull();
    rmSync(mine);
  });
});

describe('500s', () => {
  it('an error inside a role is answered {"error":"internal"}, its message only in the node log', async () => {
    const spec: NodeSpec = { name: 'boom', role: 'web', tier: 'web-agent', host: '127.0.0.1', port: 0, secret: generateSecret() };
    const role: RoleHandler = {
      routeOf: () => 'boom',
      handle: (_req: IncomingMessage, _res: ServerResponse) => {
        throw new Error('SQLITE_CORRUPT at /var/lib/secret-path.db, key=hunter2');
      },
      close: async () => undefined,
    };
    const writes: string[] = [];
    const original = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string | Uint8Array) => (writes.push(String(s)), true)) as typeof process.stderr.write;
    const server = new NodeServer(spec, role, new NodeMetrics(spec));
    try {
      const { url } = await server.listen();
      const r = await fetch(`${url}/anything`);
      expect(r.status).toBe(500);
      expect(await r.text()).toBe('{"error":"internal"}');
      expect(writes.join('')).toContain('[boom] internal error on boom: SQLITE_CORRUPT');
      // The admin key is not the secret: a 401 names neither.
      const a = await fetch(`${url}/admin/hdr`);
      expect(a.status).toBe(401);
      const body = await a.text();
      expect(body).not.toContain(spec.secret);
      expect(body).not.toContain(deriveKey(spec.secret, 'admin'));
    } finally {
      process.stderr.write = original;
      await server.close();
    }
  });
});
