import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { deriveAgent, userToken, type AgentIdentity } from '../../src/core/identity.js';
import type { TunnelFrame } from '../../src/core/protocol.js';
import { startStack, type RunningStack } from '../../src/stack/launcher.js';
import { eventually, relayKit, sleep } from '../helpers/relay-kit.js';
import { namedTopology } from '../../src/stack/topology.js';
import { resolveSwarmConfig } from '../../src/swarm/config.js';
import { runSwarm, SwarmControl } from '../../src/swarm/coordinator.js';
import { reconnectAfter } from '../../src/swarm/tunnel-log.js';
import { relayFor } from '../../src/swarm/transports/ws-tunnels.js';

/**
 * The relay role on real processes: relays2 (db, analytics, app, relay-1, relay-2), each its own OS
 * process, agents as real WebSocket clients (plain `ws` here, the swarm's TunnelFleet in the swarm
 * tests). The telemetry table is read straight from the analytics node's SQLite file (relays send
 * telemetry to the analytics plane, not to the control plane's database).
 */

const SECRET = 'relay-secret';
const SEED = 'relay-test';
const USER = `Bearer ${userToken(SECRET, 'ops', '*')}`;
let stack: RunningStack;
let dataDir = '';
const kit = relayKit(() => stack, SECRET, USER);
const { open, node, tunnelUrl, gauge, events, connect, session } = kit;
/** The db node's answer to one RPC (200 expected). */
async function dbCall<T>(method: string, args: unknown[]): Promise<T> {
  const r = await kit.dbCall<T>(method, args);
  expect(r.status).toBe(200);
  return r.result;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rmmscale-relay-test-'));
  stack = await startStack(namedTopology('relays2'), { secret: SECRET, dataDir, stopGraceMs: 3000 });
});
afterEach(() => kit.closeAll());
afterAll(async () => {
  await stack?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const agent = (i: number): AgentIdentity => deriveAgent(SEED, SECRET, i);

function telemetryRows(agentId?: string): number {
  const db = new Database(join(dataDir, 'analytics.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const row = (agentId ? db.prepare('SELECT COUNT(*) AS n FROM telemetry WHERE agent_id = ?').get(agentId) : db.prepare('SELECT COUNT(*) AS n FROM telemetry').get()) as { n: number };
    return row.n;
  } finally {
    db.close();
  }
}

/** An upgrade attempt's HTTP status (101 when it became a WebSocket). */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    open.push(ws);
    ws.once('open', () => resolve(101));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once('error', () => resolve(-1));
  });
}


describe('relay: tunnels', () => {
  it('refuses an upgrade without a valid agent token: 401 and no WebSocket', async () => {
    const a = agent(0);
    const b = agent(1);
    const url = tunnelUrl('relay-1');
    expect(await upgradeStatus(url, {})).toBe(401);
    expect(await upgradeStatus(url, { authorization: `Bearer ${a.token}`, 'x-agent-id': b.id })).toBe(401);
    expect(await upgradeStatus(url, { authorization: USER, 'x-agent-id': a.id })).toBe(401);
    expect(await upgradeStatus(url.replace('/agent/v1/tunnel', '/agent/v1/elsewhere'), { authorization: `Bearer ${a.token}`, 'x-agent-id': a.id })).toBe(404);
    expect(await upgradeStatus(url, { authorization: `Bearer ${a.token}`, 'x-agent-id': a.id })).toBe(101);
    expect(await gauge('relay-1', 'tunnels-open')).toBe(1);
  });

  it('acks telemetry once it is on the relay\'s disk, forwards it to the analytics node behind the ack, and records presence', async () => {
    const a = agent(2);
    const t = await connect('relay-1', a);
    for (let seq = 1; seq <= 40; seq++) t.ws.send(JSON.stringify({ t: 'tel', seq, cpuPct: seq, memPct: 50 } satisfies TunnelFrame));
    expect(await eventually(() => t.acks.length === 40, 5000)).toBe(true);
    expect(t.acks).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // Behind the ack, every frame reaches the analytics node, once; the relay's spool empties.
    expect(await eventually(() => telemetryRows(a.id) === 40, 5000)).toBe(true);
    expect(await eventually(async () => (await gauge('relay-1', 'telemetry-spooled')) === 0, 3000)).toBe(true);
    expect(await eventually(async () => (await dbCall<string | null>('getPresence', [a.id])) === 'relay-1', 3000)).toBe(true);
    t.ws.close();
    expect(await eventually(async () => (await dbCall<string | null>('getPresence', [a.id])) === null, 3000)).toBe(true);
    const hdr = (await (await fetch(`${node('relay-1').url}/admin/hdr`, { headers: { authorization: `Bearer ${stack.adminKey}` } })).json()) as { histograms: Record<string, string> };
    expect(Object.keys(hdr.histograms)).toEqual(expect.arrayContaining(['op:telemetry-commit', 'op:telemetry-forward', 'op:telemetry-spool-wait']));
  });

  it('the analytics plane hung (SIGSTOP): frames are still acked (from the relay\'s spool), pings and an operator session still answer; resumed, every frame is stored once', async () => {
    const a = agent(9);
    const t = await connect('relay-1', a);
    // Presence (the control plane) first, so relay-2 can find the tunnel.
    expect(await eventually(async () => (await dbCall<string | null>('getPresence', [a.id])) === 'relay-1', 3000)).toBe(true);
    stack.kill('analytics', 'SIGSTOP');
    try {
      const t0 = performance.now();
      for (let seq = 1; seq <= 5; seq++) t.ws.send(JSON.stringify({ t: 'tel', seq, cpuPct: 99, memPct: 50, sentMs: Date.now() } satisfies TunnelFrame));
      // The agent path does not wait for the analytics plane: acked within the batch window and an fsync.
      expect(await eventually(() => t.acks.length === 5, 3000)).toBe(true);
      expect(performance.now() - t0).toBeLessThan(2000);
      expect(t.acks).toEqual([1, 2, 3, 4, 5]);
      // The data plane answers: a ping's pong, and a session brokered down this tunnel.
      const pong = new Promise<number>((r) => {
        const p0 = performance.now();
        t.ws.once('pong', () => r(performance.now() - p0));
        t.ws.ping();
      });
      expect(await pong).toBeLessThan(1000);
      expect(await session('relay-2', { agentId: a.id, protocol: 'shell', command: 'uptime' })).toMatchObject({ status: 200, body: { relay: 'relay-1', exitCode: 3 } });
      // Acked, not yet stored: the frames wait in relay-1's spool.
      expect(telemetryRows(a.id)).toBe(0);
      // (the gauge is published once a second)
      expect(await eventually(async () => (await gauge('relay-1', 'telemetry-spooled')) >= 5, 3000)).toBe(true);
      expect(telemetryRows(a.id)).toBe(0);
    } finally {
      stack.kill('analytics', 'SIGCONT');
    }
    expect(await eventually(() => telemetryRows(a.id) === 5, 10_000)).toBe(true);
    expect(await eventually(async () => (await gauge('relay-1', 'telemetry-spooled')) === 0, 10_000)).toBe(true);
  });

  it('a relay SIGKILLed with acked frames still in its spool: restarted on the same folder, it replays and forwards them, each stored once', async () => {
    const a = agent(12);
    const t = await connect('relay-2', a);
    stack.kill('analytics', 'SIGSTOP');
    try {
      for (let seq = 1; seq <= 7; seq++) t.ws.send(JSON.stringify({ t: 'tel', seq, cpuPct: 10, memPct: 50 } satisfies TunnelFrame));
      expect(await eventually(() => t.acks.length === 7, 3000)).toBe(true);
      stack.kill('relay-2', 'SIGKILL');
      expect(await eventually(() => t.ws.readyState === WebSocket.CLOSED, 5000)).toBe(true);
    } finally {
      stack.kill('analytics', 'SIGCONT');
      // (A forward the dead relay had already written to the analytics node's socket may land now:
      // the replay below then stores nothing twice, which is what the count checks.)
      await stack.restart('relay-2');
    }
    // The new relay-2 found its predecessor's acked, unanswered batch on disk and sent it again.
    expect(await eventually(async () => (await events('relay-2', 'telemetry-spool-replayed')) === 7, 5000)).toBe(true);
    expect(await eventually(() => telemetryRows(a.id) === 7, 10_000)).toBe(true);
    const db = new Database(join(dataDir, 'analytics.sqlite'), { readonly: true, fileMustExist: true });
    try {
      const seqs = (db.prepare('SELECT seq FROM telemetry WHERE agent_id = ? ORDER BY seq').all(a.id) as Array<{ seq: number }>).map((r) => r.seq);
      expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7]);
    } finally {
      db.close();
    }
    expect(await eventually(async () => (await gauge('relay-2', 'telemetry-spooled')) === 0, 5000)).toBe(true);
  });

  it('closes a tunnel that sends a malformed frame (1008) and stores nothing from it', async () => {
    const a = agent(3);
    const t = await connect('relay-2', a);
    const closed = new Promise<number>((r) => t.ws.once('close', (code) => r(code)));
    t.ws.send(JSON.stringify({ t: 'tel', seq: 'one', cpuPct: 1, memPct: 1 }));
    expect(await closed).toBe(1008);
    expect(telemetryRows(a.id)).toBe(0);
  });
});

describe('relay: operator sessions', () => {
  it('brokers a session: user token → relay → agent tunnel → reply', async () => {
    const a = agent(10);
    const t = await connect('relay-1', a);
    const r = await session('relay-1', { agentId: a.id, protocol: 'shell', command: 'whoami', args: { cwd: '/' } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ sessionId: t.commands[0].id, agentId: a.id, relay: 'relay-1', exitCode: 3, output: `${a.hostname}: ran shell whoami` });
    expect(t.commands).toEqual([{ t: 'cmd', id: r.body.sessionId, kind: 'shell', args: { cwd: '/', command: 'whoami' } }]);
  });

  it('forwards a session sent to the wrong relay to the one holding the tunnel (by presence)', async () => {
    const a = agent(11);
    const t = await connect('relay-1', a);
    expect(await eventually(async () => (await dbCall<string | null>('getPresence', [a.id])) === 'relay-1', 3000)).toBe(true);
    const r = await session('relay-2', { agentId: a.id, protocol: 'shell', command: 'hostname' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ agentId: a.id, relay: 'relay-1', output: `${a.hostname}: ran shell hostname` });
    expect(t.commands).toHaveLength(1);
  });

  it("forwards a session whose agent's presence is not written yet (it lags the tunnel after a mass connect): the siblings are asked", async () => {
    const a = agent(15);
    const t = await connect('relay-1', a);
    expect(await eventually(async () => (await dbCall<string | null>('getPresence', [a.id])) === 'relay-1', 3000)).toBe(true);
    // As if relay-1's presence write were still waiting: no row for the agent.
    await dbCall('setPresence', [a.id, null, Date.now()]);
    expect(await dbCall<string | null>('getPresence', [a.id])).toBeNull();
    const r = await session('relay-2', { agentId: a.id, protocol: 'shell', command: 'uname' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ agentId: a.id, relay: 'relay-1', output: `${a.hostname}: ran shell uname` });
    expect(t.commands).toHaveLength(1);
  });

  it('refuses a bad user token (401), an agent token as a user token (401), and a bad body (400)', async () => {
    const a = agent(12);
    await connect('relay-1', a);
    const ok = { agentId: a.id, protocol: 'shell', command: 'id' };
    expect(await session('relay-1', ok, 'Bearer u.ops.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx')).toEqual({ status: 401, body: { error: 'user token required' } });
    expect((await session('relay-1', ok, `Bearer ${a.token}`)).status).toBe(401);
    expect(await session('relay-1', { agentId: a.id, protocol: 'shell' })).toEqual({ status: 400, body: { error: 'command: expected a string of 1-4096 characters' } });
    expect(await session('relay-1', { ...ok, timeoutMs: 0 })).toEqual({ status: 400, body: { error: 'timeoutMs: expected an integer 1-60000, got 0' } });
  });

  it('answers 404 naming the agent when no relay holds its tunnel', async () => {
    const a = agent(13);
    expect(await session('relay-2', { agentId: a.id, protocol: 'shell', command: 'id' })).toEqual({
      status: 404,
      body: { error: `agent "${a.id}" is not connected: no relay holds its tunnel (asked relay-2)` },
    });
  });

  it('answers 504 when the agent does not reply within timeoutMs, and 502 when its tunnel closes first', async () => {
    const a = agent(14);
    const t = await connect('relay-2', a, false);
    const r = await session('relay-2', { agentId: a.id, protocol: 'shell', command: 'sleep 60', timeoutMs: 300 });
    // In this order: the command reached the agent, which never answered, over a tunnel still open;
    // then the relay gave up. (How long it waits is SessionBroker's, on a fake clock in relay-parts.test.ts.)
    expect(t.commands.map((c) => c.id)).toEqual([r.body.sessionId]);
    expect(t.ws.readyState).toBe(WebSocket.OPEN);
    expect(r.status).toBe(504);
    expect(r.body.error).toBe(`agent "${a.id}" did not answer session ${String(r.body.sessionId)} within 300 ms`);
    const pending = session('relay-2', { agentId: a.id, protocol: 'shell', command: 'sleep 60', timeoutMs: 10_000 });
    expect(await eventually(() => t.commands.length === 2, 3000)).toBe(true);
    t.ws.terminate();
    const closed = await pending;
    expect(closed.status).toBe(502);
    expect(closed.body.error).toContain(`agent "${a.id}"'s tunnel to relay-2 closed before it answered`);
    expect(await gauge('relay-2', 'sessions-pending')).toBe(0);
  });
});

describe('relay: the swarm end to end', () => {
  it('2,000 tunnelled agents for 6 s: the database holds exactly the telemetry the swarm saw acked', async () => {
    const before = telemetryRows();
    // Every 5 s (~2,400 frames): an ack that arrives after the agent's next send is counted as
    // failed (no-ack) although stored, so the interval leaves a loaded 2-core host ample room.
    const config = resolveSwarmConfig({ mode: 'ws', target: `${tunnelUrl('relay-1')},${tunnelUrl('relay-2')}`, agents: 2000, checkinInterval: '5s', duration: '6s', secret: SECRET, seed: 'relay-e2e', workers: 1 });
    let running = true;
    const run = runSwarm({ config }).finally(() => (running = false));
    // While it runs, the relays' own gauges must account for every tunnel at some point.
    let mostOpen = 0;
    while (running && mostOpen < 2000) {
      mostOpen = Math.max(mostOpen, (await gauge('relay-1', 'tunnels-open')) + (await gauge('relay-2', 'tunnels-open')));
      await sleep(100);
    }
    const { result } = await run;
    expect(mostOpen).toBe(2000);
    const acked = result.ops['ws-rtt'].completed;
    expect(result.ops['ws-rtt'].failed, JSON.stringify(result.errors)).toBe(0);
    expect(acked).toBeGreaterThan(1000); // 2,000 agents × 1.2 sends, less those due before a tunnel opened
    expect(telemetryRows() - before).toBe(acked);
  });

  it('SIGKILL a relay on the default reconnect policy: exactly its agents move to the sibling, pending sessions are retried and complete there; restarted, exactly they return home', async () => {
    const agents = 200;
    const config = resolveSwarmConfig({
      mode: 'ws',
      target: `${tunnelUrl('relay-1')},${tunnelUrl('relay-2')}`,
      agents,
      checkinInterval: '1s',
      duration: '24s',
      // The default reconnect policy (exponential:1s:60s, full jitter); home probes sooner than the default 5s:60s, to keep the test short.
      returnHome: '1s:4s',
      // Agents take their time to answer, so that sessions are still pending when the relay dies.
      commandDelay: '2s',
      secret: SECRET,
      seed: 'relay-failover',
      workers: 1,
    });
    expect(config.reconnect).toBe('exponential:1s:60s');
    const fleet = Array.from({ length: agents }, (_, i) => deriveAgent('relay-failover', SECRET, i));
    const homeA = fleet.filter((a) => relayFor(a.id, 2) === 0);
    const homeB = fleet.filter((a) => relayFor(a.id, 2) === 1);
    const control = new SwarmControl();
    const run = runSwarm({ config, control });
    expect(await eventually(async () => (await gauge('relay-1', 'tunnels-open')) === homeA.length, 5000)).toBe(true);
    const x = homeA[0];
    expect(await eventually(async () => (await dbCall<string | null>('getPresence', [x.id])) === 'relay-1', 3000)).toBe(true);
    const before = await session('relay-2', { agentId: x.id, protocol: 'shell', command: 'uptime', timeoutMs: 20_000 });
    expect(before).toMatchObject({ status: 200, body: { relay: 'relay-1', output: `ran shell on ${x.hostname}` } });

    // Operator sessions to six of relay-1's agents, through relay-2, each retried on 502/404 (retry-after) until answered.
    const targets = homeA.slice(1, 7);
    for (const a of targets) expect(await eventually(async () => (await dbCall<string | null>('getPresence', [a.id])) === 'relay-1', 3000)).toBe(true);
    const sessions = targets.map(async (a) => {
      const statuses: number[] = [];
      for (let i = 0; i < 100; i++) {
        const r = await session('relay-2', { agentId: a.id, protocol: 'shell', command: 'uptime', timeoutMs: 20_000 });
        statuses.push(r.status);
        if (r.status !== 502 && r.status !== 404) return { agent: a, statuses, last: r };
        await sleep(200);
      }
      return { agent: a, statuses, last: null };
    });
    expect(await eventually(async () => (await gauge('relay-1', 'sessions-pending')) >= 3, 5000)).toBe(true);
    const killedAtMs = Date.now();
    stack.kill('relay-1', 'SIGKILL');
    const done = await Promise.all(sessions);
    // Every session completed, on the agent's own tunnel: those pending at the kill (a 502 first) on relay-2.
    for (const d of done) {
      expect(d.last, JSON.stringify(d.statuses)).toMatchObject({ status: 200, body: { agentId: d.agent.id, output: `ran shell on ${d.agent.hostname}` } });
      if (d.statuses[0] === 502) expect(d.last!.body.relay).toBe('relay-2');
      expect(d.statuses.every((st) => st === 200 || st === 502 || st === 404)).toBe(true);
    }
    expect(done.filter((d) => d.statuses[0] === 502).length).toBeGreaterThanOrEqual(3);

    expect(await eventually(async () => (await gauge('relay-2', 'tunnels-open')) === agents, 8000)).toBe(true);
    const presence = async (a: AgentIdentity): Promise<string | null> => dbCall<string | null>('getPresence', [a.id]);
    expect(await eventually(async () => (await Promise.all(homeA.map(presence))).every((p) => p === 'relay-2'), 3000)).toBe(true);

    const restartedAtMs = Date.now();
    await stack.restart('relay-1');
    expect(await eventually(async () => (await gauge('relay-1', 'tunnels-open')) === homeA.length && (await gauge('relay-2', 'tunnels-open')) === homeB.length, 12_000)).toBe(true);
    expect(await eventually(async () => (await Promise.all(homeA.map(presence))).every((p) => p === 'relay-1'), 3000)).toBe(true);
    expect((await Promise.all(homeB.map(presence))).every((p) => p === 'relay-2')).toBe(true);

    const { result } = await run;
    expect(result.reconnect!.disconnects).toBe(homeA.length);
    expect(result.reconnect!.reconnected).toBe(homeA.length);
    // By identity, from the swarm's tunnel log: the kill dropped exactly relay-1's agents, each came
    // back on relay-2 (99% of them: t99Ms is set), and the restart brought exactly those home.
    const byId = (xs: Iterable<string>): string[] => [...xs].sort();
    const kill = reconnectAfter(control.tunnelLog.events, { fromMs: killedAtMs, untilMs: restartedAtMs, relay: 0 }, (id) => relayFor(id, 2));
    expect(byId(kill.dropped)).toEqual(byId(homeA.map((a) => a.id)));
    expect(byId(kill.back.keys())).toEqual(byId(homeA.map((a) => a.id)));
    expect(new Set([...kill.back.values()].map(([, relay]) => relay))).toEqual(new Set([1]));
    expect(kill.t99Ms).not.toBeNull();
    const restart = reconnectAfter(control.tunnelLog.events, { fromMs: restartedAtMs, untilMs: Date.now(), relay: 0 }, (id) => relayFor(id, 2));
    expect(restart.agents).toBe(0);
    expect(byId(restart.returnedHomeIds)).toEqual(byId(homeA.map((a) => a.id)));
    expect(control.tunnelLog.events.filter((e) => homeB.some((b) => b.id === e.agentId))).toEqual([]);
  });
});
