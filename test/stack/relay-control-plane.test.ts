import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { deriveAgent, userToken } from '../../src/core/identity.js';
import { startStack, type RunningStack } from '../../src/stack/launcher.js';
import { namedTopology } from '../../src/stack/topology.js';
import { relayFor } from '../../src/swarm/transports/ws-tunnels.js';
import { eventually, relayKit } from '../helpers/relay-kit.js';

/**
 * Issue 13's control-plane row on a real relays2 stack (db, app, relay-1, relay-2, each its own
 * process): with the database hung (SIGSTOP) and then killed, tunnels stay up and operator
 * sessions on them keep working, on the relay that holds the agent and through its sibling; the
 * sessions' audit records wait in the relays' spools and reach the database once it is back, one
 * row per session and none left open, including those a relay spooled before it was itself
 * killed and restarted.
 */

const SECRET = 'control-plane-secret';
const USER = `Bearer ${userToken(SECRET, 'ops', '*')}`;
let stack: RunningStack;
let dataDir = '';
const kit = relayKit(() => stack, SECRET, USER);

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'rmmscale-control-plane-'));
  stack = await startStack(namedTopology('relays2'), { secret: SECRET, dataDir, stopGraceMs: 3000 });
});
afterEach(() => kit.closeAll());
afterAll(async () => {
  await stack?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function auditRows(): Array<{ id: string; agent_id: string; relay: string; outcome: string; status: number | null }> {
  const db = new Database(join(dataDir, 'rmmscale.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT id, agent_id, relay, outcome, status FROM session_audit').all() as Array<{ id: string; agent_id: string; relay: string; outcome: string; status: number | null }>;
  } finally {
    db.close();
  }
}

describe('relays with the control plane down', () => {
  it('db hung, then killed: tunnels stay up, sessions keep working (direct and forwarded), and every audit record reaches the database once it is back', async () => {
    const fleet = Array.from({ length: 40 }, (_, i) => deriveAgent('control-plane', SECRET, i));
    const onA = fleet.filter((a) => relayFor(a.id, 2) === 0).slice(0, 2);
    const onB = fleet.filter((a) => relayFor(a.id, 2) === 1).slice(0, 2);
    const tunnels = [...(await Promise.all(onA.map((a) => kit.connect('relay-1', a)))), ...(await Promise.all(onB.map((a) => kit.connect('relay-2', a))))];
    let closes = 0;
    for (const t of tunnels) t.ws.on('close', () => closes++);
    for (const a of [...onA, ...onB]) expect(await eventually(async () => (await kit.dbCall<string | null>('getPresence', [a.id])).result !== null, 3000)).toBe(true);

    const answered: string[] = [];
    /** One session per (relay, agent) pair: direct to the holder and forwarded through the sibling; every one must answer 200. */
    const round = async (label: string): Promise<number> => {
      const t0 = Date.now();
      const pairs: Array<[string, string, string]> = [];
      for (const a of onA) pairs.push(['relay-1', a.id, a.hostname], ['relay-2', a.id, a.hostname]);
      for (const b of onB) pairs.push(['relay-2', b.id, b.hostname], ['relay-1', b.id, b.hostname]);
      const rs = await Promise.all(pairs.map(([relay, agentId]) => kit.session(relay, { agentId, protocol: 'shell', command: label, timeoutMs: 5000 })));
      rs.forEach((r, i) => {
        expect(r, `${label}: ${pairs[i]![0]} → ${pairs[i]![1]}`).toMatchObject({ status: 200, body: { agentId: pairs[i]![1], output: `${pairs[i]![2]}: ran shell ${label}` } });
        answered.push(pairs[i]![1]);
      });
      return Date.now() - t0;
    };
    await round('before');

    // Hung: every database call waits. Sessions answer after one 500 ms deadline at most (the
    // presence and audit deadlines), not after the db call's 10 s timeout.
    stack.kill('db', 'SIGSTOP');
    const hungMs = await round('hung');
    expect(hungMs).toBeLessThan(4000);
    await round('hung-again');
    expect(await kit.gauge('relay-1', 'session-audit-spooled')).toBeGreaterThan(0);
    expect(await kit.gauge('relay-2', 'session-audit-spooled')).toBeGreaterThan(0);

    // Killed: connections refused at once.
    stack.kill('db', 'SIGKILL');
    await round('down');
    expect(closes).toBe(0);
    for (const t of tunnels) expect(t.ws.readyState).toBe(WebSocket.OPEN);
    expect(await kit.gauge('relay-1', 'tunnels-open')).toBe(onA.length);
    expect(await kit.gauge('relay-2', 'tunnels-open')).toBe(onB.length);

    // relay-2 itself is killed with records in its spool, and restarted on the same file.
    const spool2 = readFileSync(join(dataDir, 'relay-2-audit.spool'), 'utf8').split('\n').filter((l) => l !== '');
    expect(spool2.length).toBeGreaterThan(0);
    stack.kill('relay-2', 'SIGKILL');
    await stack.restart('relay-2');
    expect(await kit.gauge('relay-2', 'session-audit-spooled')).toBe(spool2.length);

    // The database back on the same file: both spools drain, and the database holds one ended
    // record for every session answered, none left open.
    await stack.restart('db');
    expect(await eventually(async () => (await kit.gauge('relay-1', 'session-audit-spooled')) === 0 && (await kit.gauge('relay-2', 'session-audit-spooled')) === 0, 10_000)).toBe(true);
    const rows = auditRows();
    // Every session answered is one row ended 'answered' by the relay that held the agent (the
    // forwarding relay audits only what never reached a sibling).
    expect(rows.filter((r) => r.outcome === 'answered' && r.status === 200)).toHaveLength(answered.length);
    expect(rows.filter((r) => r.outcome === 'open')).toEqual([]);
    expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
    for (const a of onA) expect(rows.filter((r) => r.agent_id === a.id).every((r) => r.relay === 'relay-1')).toBe(true);
    expect(readFileSync(join(dataDir, 'relay-1-audit.spool'), 'utf8')).toBe('');
    expect(readFileSync(join(dataDir, 'relay-2-audit.spool'), 'utf8')).toBe('');
  }, 90_000);
});
