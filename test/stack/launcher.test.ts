import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { StackError } from '../../src/core/errors.js';
import { deriveAgent } from '../../src/core/identity.js';
import { startStack, type RunningStack, type StackEvent } from '../../src/stack/launcher.js';
import { PROFILES } from '../../src/stack/profiles.js';
import { namedTopology, topologyFromData } from '../../src/stack/topology.js';
import { alive } from '../helpers/fork-node.js';
import { spawnSync } from 'node:child_process';

/** The system haproxy: skipped locally when missing, a failure under CI (.ci/run installs it). */
function haproxyMissing(): boolean {
  if (spawnSync(process.env.RMMSCALE_HAPROXY ?? 'haproxy', ['-v']).status === 0) return false;
  if (process.env.CI) throw new Error('haproxy is not installed under CI (.ci/run installs the Debian package)');
  process.stderr.write('haproxy is not installed: the launcher --proxy haproxy test is skipped\n');
  return true;
}

let stack: RunningStack | null = null;
const servers: Server[] = [];
afterEach(async () => {
  await stack?.stop();
  stack = null;
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** PIDs of this process's live children that run node-main (orphan check). */
function nodeChildren(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('node-main')) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

describe('the launcher', () => {
  it('split2: starts db, then app and webs, then the proxy; a SIGKILLed node is reported; stop() leaves no process', async () => {
    stack = await startStack(namedTopology('split2'), { secret: 'l', profile: PROFILES.automate, stopGraceMs: 2000 });
    expect(stack.nodes.map((n) => `${n.name}:${n.role}:${n.tier}`)).toEqual(['db:db:db', 'app:app:app', 'web-agent-1:web:web-agent', 'web-user-1:web:web-user', 'proxy:proxy:proxy']);
    expect(stack.entryUrl).toBe(stack.nodes[4].url);
    const pids = stack.nodes.map((n) => n.pid);
    expect(new Set(pids).size).toBe(5);
    expect(stack.pids.sort()).toEqual([...pids].sort());
    for (const n of stack.nodes) expect(n.metricsUrl).toBe(`${n.url}/metrics`);
    // Profiles reach the nodes: web nodes export limiter metrics, the db node its per-query model.
    const web = await (await fetch(`${stack.nodes[2].url}/healthz`)).json();
    expect(web).toMatchObject({ busyWorkers: 0, queueDepth: 0 });

    const events: StackEvent[] = [];
    stack.on('event', (e: StackEvent) => events.push(e));
    const victim = stack.nodes[2];
    stack.kill('web-agent-1', 'SIGKILL');
    expect(await waitFor(() => events.length > 0, 5000)).toBe(true);
    expect(events[0]).toEqual({ event: 'node-exit', entry: stack.entryUrl, nodes: [victim], node: 'web-agent-1', pid: victim.pid, code: null, signal: 'SIGKILL' });
    expect(alive(victim.pid)).toBe(false);
    expect(() => stack!.kill('nope', 'SIGTERM')).toThrow(StackError);

    await stack.stop();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(events.at(-1)).toMatchObject({ event: 'stopped', entry: stack.entryUrl });
    expect(nodeChildren()).toEqual([]);
  }, 60_000);

  it('--port-base gives consecutive ports in topology order', async () => {
    // Two consecutive free ports below the kernel's ephemeral range (32768+), so parallel tests'
    // outgoing connections cannot take base + 1 between the check and the start.
    const bind = (port: number): Promise<ReturnType<typeof createServer> | null> =>
      new Promise((resolve) => {
        const s = createServer();
        s.once('error', () => resolve(null));
        s.listen(port, '127.0.0.1', () => resolve(s));
      });
    let base = 0;
    for (let tries = 0; tries < 50 && !base; tries++) {
      const candidate = 20_000 + Math.floor(Math.random() * 10_000);
      const a = await bind(candidate);
      const b = a ? await bind(candidate + 1) : null;
      if (a && b) base = candidate;
      await Promise.all([a, b].map((x) => (x ? new Promise((r) => x.close(r)) : undefined)));
    }
    expect(base).toBeGreaterThan(0);
    const topo = topologyFromData({ name: 'pair', nodes: [{ name: 'db', role: 'db' }, { name: 'web-1', role: 'web' }] }, 'inline');
    stack = await startStack(topo, { portBase: base });
    expect(stack.nodes.map((n) => n.url)).toEqual([`http://127.0.0.1:${base}`, `http://127.0.0.1:${base + 1}`]);
    expect(stack.entryUrl).toBe(`http://127.0.0.1:${base + 1}`);
  }, 30_000);

  it('a node that cannot start fails startStack with one line naming it, and nothing is left running', async () => {
    const busy = createServer();
    servers.push(busy);
    const port = await new Promise<number>((r) => busy.listen(0, '127.0.0.1', () => r((busy.address() as { port: number }).port)));
    // The single node is told to listen on a port that is taken.
    const err = await startStack(namedTopology('single'), { portBase: port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StackError);
    expect((err as Error).message).toBe(`node single failed to start: single: cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    expect(nodeChildren()).toEqual([]);
  }, 30_000);

  it('--db postgres without a URL is refused before anything starts', async () => {
    await expect(startStack(namedTopology('single'), { db: 'postgres' })).rejects.toThrow('--db postgres needs --db-url URL (or DATABASE_URL)');
    expect(nodeChildren()).toEqual([]);
  });

  it('a launcher killed with SIGKILL leaves no orphans: its nodes exit when their IPC channel closes', async () => {
    const script = fileURLToPath(new URL('../fixtures/launch-and-wait.mjs', import.meta.url));
    const child = spawn(process.execPath, [script, 'split2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const pids = await new Promise<number[]>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]) as number[]);
        });
        child.once('exit', (code) => reject(new Error(`launcher exited early (${code})`)));
      });
      expect(pids).toHaveLength(5);
      for (const pid of pids) expect(alive(pid)).toBe(true);
      child.kill('SIGKILL');
      expect(await waitFor(() => pids.every((pid) => !alive(pid)), 10_000)).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it.skipIf(haproxyMissing())('--proxy haproxy: split2 behind the system haproxy; the check-in path works and stop() ends haproxy too', async () => {
    stack = await startStack(namedTopology('split2'), { secret: 'h', proxy: 'haproxy', stopGraceMs: 2000 });
    const proxy = stack.nodes.find((n) => n.role === 'proxy')!;
    expect(stack.entryUrl).toBe(proxy.url);
    expect(stack.pids).toContain(proxy.pid);
    const a = deriveAgent('hap', 'h', 1);
    const body = JSON.stringify({ agentId: a.id, hostname: a.hostname, os: a.os, agentVersion: a.agentVersion, client: a.client, seq: 1, status: { cpuPct: 1, memPct: 1, diskFreePct: 1, uptimeSec: 1, loggedOnUser: null } });
    const r = await fetch(`${proxy.url}/agent/v1/checkin`, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${a.token}`, 'x-agent-id': a.id } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-served-by')).toBe('web-agent-1');
    await r.text();
    // HAProxy's own exporter is the proxy node's /metrics.
    const m = await (await fetch(proxy.metricsUrl)).text();
    expect(m).toMatch(/haproxy_server_http_responses_total\{[^}]*proxy="agent"/);
    const pids = stack.pids;
    await stack.stop();
    for (const pid of pids) expect(alive(pid)).toBe(false);
  }, 60_000);
});
