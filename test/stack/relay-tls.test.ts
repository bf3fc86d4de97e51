import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { deriveAgent, userToken } from '../../src/core/identity.js';
import type { TunnelFrame } from '../../src/core/protocol.js';
import type { NodeReadyMessage, NodeSiblingsSetMessage, NodeSpec } from '../../src/stack/types.js';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { runSwarm } from '../../src/swarm/coordinator.js';
import { startStack } from '../../src/stack/launcher.js';
import { namedTopology } from '../../src/stack/topology.js';
import { alive, forkNode, stopNode, type ForkedNode } from '../helpers/fork-node.js';

/**
 * A relay with spec.relay.tls, as its own node process owning a SQLite file: tunnels are wss://,
 * sessions and the admin surface https://, with a self-signed certificate made by openssl here.
 */

const SECRET = 'relay-tls-secret';
let dir = '';
let ca: Buffer;
const nodes: ForkedNode[] = [];
const sockets: WebSocket[] = [];
let dispatcher: Agent;
let dbFiles = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rmmscale-relay-tls-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
  ca = readFileSync(join(dir, 'cert.pem'));
  dispatcher = new Agent({ connect: { ca } });
});
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.all(nodes.splice(0).map(stopNode));
});
afterAll(async () => {
  await dispatcher?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function spec(over: Partial<NonNullable<NodeSpec['relay']>['tls']> = {}): NodeSpec {
  return {
    name: 'relay-1',
    role: 'relay',
    tier: 'relay',
    host: '127.0.0.1',
    port: 0,
    secret: SECRET,
    db: { kind: 'sqlite', path: join(dir, `relay-${++dbFiles}.sqlite`) },
    relay: { siblings: [], tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), ...over } },
  };
}

async function start(s: NodeSpec): Promise<NodeReadyMessage> {
  const n = forkNode(s);
  nodes.push(n);
  const m = await n.first;
  if (m.type !== 'ready') throw new Error(`relay failed: ${m.error}`);
  return m;
}

function outcome(ws: WebSocket): Promise<string> {
  sockets.push(ws);
  return new Promise((resolve) => {
    ws.once('open', () => resolve('open'));
    ws.once('unexpected-response', (_q, res) => resolve(`status ${res.statusCode}`));
    ws.once('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
  });
}

describe('relay over TLS', () => {
  it('serves wss:// tunnels and https:// sessions; refuses plain ws and unverified certificates', async () => {
    const ready = await start(spec());
    expect(ready.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const wss = `${ready.url.replace(/^https/, 'wss')}/agent/v1/tunnel`;
    const a = deriveAgent('tls', SECRET, 0);
    const headers = { authorization: `Bearer ${a.token}`, 'x-agent-id': a.id };

    expect(await outcome(new WebSocket(wss.replace(/^wss/, 'ws'), { headers }))).toMatch(/^error /);
    expect(await outcome(new WebSocket(wss, { headers }))).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/);
    expect(await outcome(new WebSocket(wss, { headers: {}, ca }))).toBe('status 401');

    const ws = new WebSocket(wss, { headers, ca });
    expect(await outcome(ws)).toBe('open');
    const acks: number[] = [];
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as TunnelFrame;
      if (f.t === 'ack') acks.push(f.seq);
      if (f.t === 'cmd') ws.send(JSON.stringify({ t: 'res', id: f.id, exitCode: 0, output: `tls ${String(f.args.command)}` } satisfies TunnelFrame));
    });
    ws.send(JSON.stringify({ t: 'tel', seq: 7, cpuPct: 1, memPct: 2 } satisfies TunnelFrame));
    const deadline = Date.now() + 3000;
    while (acks.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(acks).toEqual([7]);

    const r = await request(`${ready.url}/api/v1/sessions`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${userToken(SECRET, 'ops', '*')}` },
      body: JSON.stringify({ agentId: a.id, protocol: 'shell', command: 'date' }),
    });
    expect(r.statusCode).toBe(200);
    expect(await r.body.json()).toMatchObject({ agentId: a.id, relay: 'relay-1', exitCode: 0, output: 'tls date' });
  });

  it('runs the swarm over wss:// with --ca: every acked frame is in the database', async () => {
    const s = spec();
    const ready = await start(s);
    const target = `${ready.url.replace(/^https/, 'wss')}/agent/v1/tunnel`;
    const { result } = await runSwarm({ config: resolveSwarmConfig({ mode: 'ws', target, ca: join(dir, 'cert.pem'), agents: 100, checkinInterval: '2s', duration: '4s', secret: SECRET, seed: 'tls', workers: 1 }) });
    const acked = result.ops['ws-rtt'].completed;
    expect(acked).toBeGreaterThan(100); // 100 agents × 2 sends, less those due before a tunnel opened
    expect(result.ops['ws-rtt'].failed, JSON.stringify(result.errors)).toBe(0);
    const db = new Database((s.db as { path: string }).path, { readonly: true });
    try {
      expect((db.prepare('SELECT COUNT(*) AS n FROM telemetry').get() as { n: number }).n).toBe(acked);
    } finally {
      db.close();
    }
  });

  it('refuses to start with an unreadable certificate: one line naming the field and file', async () => {
    const n = forkNode(spec({ certFile: join(dir, 'missing.pem') }));
    nodes.push(n);
    const m = await n.first;
    expect(m).toMatchObject({ type: 'failed', code: 'ERR_STACK', error: `relay-1: relay.tls.certFile: cannot read ${JSON.stringify(join(dir, 'missing.pem'))} (ENOENT)` });
  });
  it('takes its siblings over IPC after it listens, and refuses a sibling off loopback in one line', async () => {
    const n = forkNode(spec());
    nodes.push(n);
    expect((await n.first).type).toBe('ready');
    const ask = (urls: string[]): Promise<NodeSiblingsSetMessage> =>
      new Promise((resolve) => {
        const on = (m: NodeSiblingsSetMessage): void => {
          if (m.type !== 'siblings-set') return;
          n.proc.off('message', on);
          resolve(m);
        };
        n.proc.on('message', on);
        n.proc.send({ type: 'siblings', urls });
      });
    expect(await ask(['https://127.0.0.1:1'])).toEqual({ type: 'siblings-set', name: 'relay-1', error: null });
    expect(await ask(['https://10.1.2.3:443'])).toEqual({
      type: 'siblings-set',
      name: 'relay-1',
      error: 'relay-1: relay.siblings[0]: expected an http(s) URL on loopback, got "https://10.1.2.3:443"',
    });
  });
  it('stack up with tls on both relays: https siblings, a session forwarded between them, a wss tunnel on each', async () => {
    const base = namedTopology('relays2');
    const tls = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
    const topology = { ...base, nodes: base.nodes.map((n) => (n.role === 'relay' ? { ...n, tls } : n)) };
    const stack = await startStack(topology, { secret: SECRET, dataDir: mkdtempSync(join(dir, 'stack-')), stopGraceMs: 3000 });
    try {
      const relays = stack.nodes.filter((n) => n.role === 'relay');
      expect(relays.map((n) => n.url.split(':')[0])).toEqual(['https', 'https']);
      // The agent's tunnel is on relay-2; the operator asks relay-1, which forwards over https.
      const a = deriveAgent('tls-stack', SECRET, 0);
      const ws = new WebSocket(`${relays[1].url.replace(/^https/, 'wss')}/agent/v1/tunnel`, { headers: { authorization: `Bearer ${a.token}`, 'x-agent-id': a.id }, ca });
      expect(await outcome(ws)).toBe('open');
      ws.on('message', (d) => {
        const f = JSON.parse(d.toString()) as TunnelFrame;
        if (f.t === 'cmd') ws.send(JSON.stringify({ t: 'res', id: f.id, exitCode: 0, output: `via ${String(f.args.command)}` } satisfies TunnelFrame));
      });
      let body: unknown = null;
      const deadline = Date.now() + 5000;
      // Presence is written within 250 ms of the open; until then relay-1 rightly answers 404.
      while (Date.now() < deadline) {
        const r = await request(`${relays[0].url}/api/v1/sessions`, {
          method: 'POST',
          dispatcher,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${userToken(SECRET, 'ops', '*')}` },
          body: JSON.stringify({ agentId: a.id, protocol: 'shell', command: 'hostname' }),
        });
        body = await r.body.json();
        if (r.statusCode === 200) break;
        expect(r.statusCode).toBe(404);
        await new Promise((res) => setTimeout(res, 100));
      }
      expect(body).toMatchObject({ agentId: a.id, relay: 'relay-2', exitCode: 0, output: 'via hostname' });
    } finally {
      await stack.stop();
    }
    for (const n of stack.nodes) expect(alive(n.pid)).toBe(false);
  });
});
