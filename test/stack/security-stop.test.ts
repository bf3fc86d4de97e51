import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/core/atomic-write.js';
import type { NodeSpec } from '../../src/stack/types.js';
import { ECHO_ROLE, alive, forkNode, stopNode, type ForkedNode } from '../helpers/fork-node.js';
import { BIN } from '../helpers/spawn-cli.js';

/**
 * Clean stops: requests in flight finish before a node closes; a Ctrl-C to the terminal's whole
 * process group still stops the stack in order (entry first, db last), because the nodes are in
 * groups of their own; a SIGKILLed launcher (stack up or run) leaves no node behind for more
 * than a few seconds; the atomic write leaves no temporary file behind when it fails.
 */

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rmmscale-stop-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const started: ChildProcess[] = [];
const forked: ForkedNode[] = [];
afterEach(async () => {
  for (const n of forked.splice(0)) await stopNode(n);
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** `rmmscale …` in a process group of its own, as a terminal runs a foreground job. */
function launch(args: string[]): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<{ code: number | null; signal: string | null }> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, CI: '1', RMMSCALE_STATE_DIR: join(dir, 'state') },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  started.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { child, out: () => out, err: () => err, exited };
}

async function until<T>(what: string, probe: () => T | null | undefined, withinMs: number): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const v = probe();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Node {
  name: string;
  role: string;
  pid: number;
}

/** When each PID disappeared (ms since `t0`), polling every 2 ms until all are gone or `withinMs`. */
async function deaths(nodes: Node[], t0: number, withinMs: number): Promise<Map<string, number>> {
  const gone = new Map<string, number>();
  const deadline = Date.now() + withinMs;
  while (gone.size < nodes.length && Date.now() < deadline) {
    for (const n of nodes) if (!gone.has(n.name) && !alive(n.pid)) gone.set(n.name, Date.now() - t0);
    await new Promise((r) => setTimeout(r, 2));
  }
  return gone;
}

describe('a node closing', () => {
  it('lets a request in flight finish (200) before it closes, and takes no new one', async () => {
    const spec: NodeSpec = { name: 'echo-1', role: 'web', tier: 'web-agent', host: '127.0.0.1', port: 0, secret: 's', profile: { workers: 1, queue: 4, service: { dist: 'constant', meanMs: 800 } } };
    const node = forkNode(spec, { roleModule: ECHO_ROLE });
    forked.push(node);
    const ready = await node.first;
    if (ready.type !== 'ready') throw new Error(ready.error);
    const inFlight = fetch(`${ready.url}/work`).then(async (r) => ({ status: r.status, body: await r.text() }));
    await new Promise((r) => setTimeout(r, 200));
    node.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    await expect(fetch(`${ready.url}/work`)).rejects.toThrow();
    expect(await inFlight).toEqual({ status: 200, body: 'ok' });
    expect((await node.exited).code).toBe(0);
  });
});

describe('a relay closing', () => {
  it('sends the final acks while its tunnels are still open: every frame sent before the close is acked and in the database', async () => {
    const { SqliteStore } = await import('../../src/stack/store/sqlite.js');
    const { loadRole } = await import('../../src/stack/roles/index.js');
    const { NodeMetrics } = await import('../../src/stack/runtime/node-metrics.js');
    const { NodeServer } = await import('../../src/stack/runtime/node-server.js');
    const { deriveAgent } = await import('../../src/core/identity.js');
    const { WebSocket } = await import('ws');
    const path = join(dir, 'relay-close.sqlite');
    const store = new SqliteStore(path);
    await store.init();
    const spec: NodeSpec = { name: 'relay-1', role: 'relay', tier: 'relay', host: '127.0.0.1', port: 0, secret: 'close-secret', relay: { siblings: [] } };
    const metrics = new NodeMetrics(spec);
    const server = new NodeServer(spec, await (await loadRole('relay'))({ spec, store, metrics, log: () => undefined }), metrics);
    const { url } = await server.listen();
    const a = deriveAgent('close', 'close-secret', 0);
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/agent/v1/tunnel`, { headers: { authorization: `Bearer ${a.token}`, 'x-agent-id': a.id } });
    const acks: number[] = [];
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as { t: string; seq?: number };
      if (f.t === 'ack') acks.push(f.seq!);
    });
    await new Promise<void>((r, j) => {
      ws.once('open', () => r());
      ws.once('error', j);
    });
    // 20 frames, then the close at once: they sit in the 250 ms batch window when it starts.
    for (let seq = 1; seq <= 20; seq++) ws.send(JSON.stringify({ t: 'tel', seq, cpuPct: 1, memPct: 2 }));
    await new Promise((r) => setTimeout(r, 20));
    const closedWs = new Promise<void>((r) => ws.once('close', () => r()));
    await server.close();
    await closedWs;
    await store.close();
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path, { readonly: true });
    const rows = Number((db.prepare('SELECT COUNT(*) AS n FROM telemetry').get() as { n: number }).n);
    db.close();
    expect(acks).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(rows).toBe(20);
  });
});

describe('stack up, stopped by its whole process group or killed', () => {
  async function upSplit2(): Promise<{ run: ReturnType<typeof launch>; nodes: Node[] }> {
    const run = launch(['stack', 'up', 'split2', '--json']);
    const line = await until('ready', () => run.out().split('\n').find((l) => l.includes('"event":"ready"')), 45_000);
    const nodes = (JSON.parse(line) as { nodes: Node[] }).nodes;
    expect(nodes.map((n) => n.role).sort()).toEqual(['app', 'db', 'proxy', 'web', 'web']);
    return { run, nodes };
  }

  it("a Ctrl-C to the terminal's process group: the launcher stops the nodes in order, proxy first, db last", async () => {
    const { run, nodes } = await upSplit2();
    const t0 = Date.now();
    process.kill(-run.child.pid!, 'SIGINT'); // what a terminal does: the signal goes to the foreground group
    const gone = deaths(nodes, t0, 20_000);
    expect((await run.exited).code).toBe(130);
    const at = await gone;
    expect(at.size).toBe(nodes.length);
    const when = (role: string): number[] => nodes.filter((n) => n.role === role).map((n) => at.get(n.name)!);
    const proxy = Math.max(...when('proxy'));
    const middle = [...when('web'), ...when('app')];
    const db = Math.min(...when('db'));
    // Each phase starts only after the previous one has exited.
    expect(Math.min(...middle)).toBeGreaterThanOrEqual(proxy);
    expect(db).toBeGreaterThanOrEqual(Math.max(...middle));
    expect(db).toBeGreaterThan(proxy);
    expect(readdirSync(join(dir, 'state'))).toEqual([]);
  }, 60_000);

  it('SIGKILL of the launcher: every node notices and exits within a few seconds, the db node last', async () => {
    const { run, nodes } = await upSplit2();
    const t0 = Date.now();
    run.child.kill('SIGKILL');
    const at = await deaths(nodes, t0, 8000);
    expect([...at.keys()].sort()).toEqual(nodes.map((n) => n.name).sort());
    for (const [, ms] of at) expect(ms).toBeLessThan(5000);
    const db = at.get(nodes.find((n) => n.role === 'db')!.name)!;
    for (const n of nodes.filter((x) => x.role !== 'db')) expect(db).toBeGreaterThanOrEqual(at.get(n.name)!);
  }, 60_000);
});

describe('run, killed', () => {
  it('SIGKILL of `rmmscale run`: no node of its stack is running a few seconds later', async () => {
    const file = join(dir, 'long.yaml');
    writeFileSync(file, 'name: long\nstack: {topology: split2}\nfleet: {checkin: 30%/min}\nstages:\n  - {duration: 60s, agents: 300}\nslo: {p99: 2s, errors: 1%}\ntimeLimit: 2m\n');
    const run = launch(['run', file, '--out', join(dir, 'run-out')]);
    const line = await until('stack healthy', () => (run.out() + run.err()).split('\n').find((l) => l.includes('stack healthy:')), 45_000);
    const urls = [...line.matchAll(/(\S+) (http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => ({ name: m[1], url: m[2] }));
    expect(urls.length).toBe(5);
    const nodes: Node[] = [];
    for (const u of urls) {
      const h = (await (await fetch(`${u.url}/healthz`)).json()) as { pid: number; role: string };
      nodes.push({ name: u.name, role: h.role, pid: h.pid });
    }
    run.child.kill('SIGKILL');
    const at = await deaths(nodes, Date.now(), 8000);
    expect([...at.keys()].sort()).toEqual(nodes.map((n) => n.name).sort());
    for (const [, ms] of at) expect(ms).toBeLessThan(5000);
  }, 90_000);
});

describe('the atomic write', () => {
  it('leaves the old content and no temporary file when it fails, and creates the file with the mode asked', () => {
    const sub = join(dir, 'atomic');
    mkdirSync(sub);
    const target = join(sub, 'out.json');
    writeFileAtomic(target, 'old', { mode: 0o600 });
    expect(statSync(target).mode & 0o777).toBe(0o600);
    // The rename fails: the target is now a non-empty folder.
    rmSync(target);
    mkdirSync(target);
    writeFileSync(join(target, 'keep'), 'x');
    expect(() => writeFileAtomic(target, 'new')).toThrow();
    expect(readdirSync(sub)).toEqual(['out.json']);
    // The write fails: the folder is read-only (skipped as root, who may write anyway).
    if (process.getuid?.() !== 0) {
      const ro = join(dir, 'ro');
      mkdirSync(ro);
      writeFileSync(join(ro, 'f'), 'old');
      chmodSync(ro, 0o500);
      expect(() => writeFileAtomic(join(ro, 'f'), 'new')).toThrow();
      expect(readdirSync(ro)).toEqual(['f']);
      expect(readFileSync(join(ro, 'f'), 'utf8')).toBe('old');
      chmodSync(ro, 0o700);
    }
  });
});
