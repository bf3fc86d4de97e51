import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { deriveAgent, userToken, type AgentIdentity } from '../../src/core/identity.js';
import type { TunnelFrame } from '../../src/core/protocol.js';
import { loadRole } from '../../src/stack/roles/index.js';
import { NodeMetrics } from '../../src/stack/runtime/node-metrics.js';
import { NodeServer } from '../../src/stack/runtime/node-server.js';
import { StoreUnavailableError } from '../../src/stack/store/errors.js';
import { PostgresStore } from '../../src/stack/store/postgres.js';
import { SqliteStore } from '../../src/stack/store/sqlite.js';
import type { NodeSpec, RoleHandler, Store } from '../../src/stack/types.js';
import { PG_URL, freshPgSchema, pgAvailability } from './role-harness.js';
import { checkinOf } from './web-fixture.js';

/**
 * Operator sessions: one agent and one protocol each, allowed only when the user token's scope
 * covers both (403 otherwise), and every session from an authenticated user, allowed or refused,
 * one audit row (user, agent, protocol, start, end, outcome) in the database: SQLite and
 * PostgreSQL alike. Two relays in this process share the store; a session sent to the wrong one
 * is forwarded and audited once, by the relay that decides it.
 */

const SECRET = 'sessions-test-secret-77';
const A = deriveAgent('sessions-test', SECRET, 1);
const B = deriveAgent('sessions-test', SECRET, 2);
const C = deriveAgent('sessions-test', SECRET, 3);
const { skip: noPg } = pgAvailability();

interface AuditRow {
  id: string;
  user_name: string;
  agent_id: string;
  protocol: string;
  relay: string;
  started_ms: number;
  ended_ms: number | null;
  outcome: string;
  status: number | null;
}

interface Backend {
  store: Store;
  rows(): Promise<AuditRow[]>;
  close(): Promise<void>;
}

async function sqliteBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'rmmscale-sessions-'));
  const path = join(dir, 'db.sqlite');
  const store = new SqliteStore(path);
  await store.init();
  return {
    store,
    rows: async () => {
      const db = new Database(path, { readonly: true });
      try {
        return db.prepare('SELECT * FROM session_audit ORDER BY started_ms, rowid').all() as AuditRow[];
      } finally {
        db.close();
      }
    },
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresBackend(): Promise<Backend> {
  const schema = await freshPgSchema(PG_URL!);
  const store = new PostgresStore(schema.url);
  await store.init();
  return {
    store,
    rows: async () => {
      const c = new pg.Client({ connectionString: schema.url });
      await c.connect();
      try {
        const r = await c.query('SELECT * FROM session_audit ORDER BY started_ms');
        return r.rows.map((x: AuditRow) => ({ ...x, started_ms: Number(x.started_ms), ended_ms: x.ended_ms === null ? null : Number(x.ended_ms) }));
      } finally {
        await c.end();
      }
    },
    close: async () => {
      await store.close();
      await schema.drop();
    },
  };
}

interface Relay {
  name: string;
  url: string;
  role: RoleHandler;
  server: NodeServer;
}

async function startRelay(name: string, store: Store, auditSpoolMax?: number): Promise<Relay> {
  const spec: NodeSpec = { name, role: 'relay', tier: 'relay', host: '127.0.0.1', port: 0, secret: SECRET, relay: { siblings: [], auditSpoolMax } };
  const metrics = new NodeMetrics(spec);
  const role = await (await loadRole('relay'))({ spec, store, metrics, log: () => undefined });
  const server = new NodeServer(spec, role, metrics);
  const { url } = await server.listen();
  return { name, url, role, server };
}

/** An agent on a relay's tunnel; it answers every command and remembers them. */
async function tunnel(relay: Relay, a: AgentIdentity): Promise<{ ws: WebSocket; commands: string[] }> {
  const ws = new WebSocket(`${relay.url.replace(/^http/, 'ws')}/agent/v1/tunnel`, { headers: { authorization: `Bearer ${a.token}`, 'x-agent-id': a.id }, perMessageDeflate: false });
  const t = { ws, commands: [] as string[] };
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString()) as TunnelFrame;
    if (f.t === 'cmd') {
      t.commands.push(`${f.kind} ${String(f.args.command)}`);
      ws.send(JSON.stringify({ t: 'res', id: f.id, exitCode: 0, output: 'ok' } satisfies TunnelFrame));
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return t;
}

async function session(relay: Relay, token: string | null, body: Record<string, unknown>): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${relay.url}/api/v1/sessions`, { method: 'POST', headers, body: JSON.stringify(body) });
  await r.text();
  return r.status;
}

const ask = (a: AgentIdentity, protocol = 'shell'): Record<string, unknown> => ({ agentId: a.id, protocol, command: 'whoami', timeoutMs: 5000 });

describe.each([
  ['SQLite', false, sqliteBackend],
  ['PostgreSQL', noPg, postgresBackend],
] as const)('operator sessions on %s', (_kind, skip, make) => {
  let backend: Backend;
  let r1: Relay;
  let r2: Relay;
  let r3: Relay;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    if (skip) return;
    backend = await make();
    r1 = await startRelay('relay-1', backend.store);
    r2 = await startRelay('relay-2', backend.store);
    // relay-3's database refuses the audit write, and its spool holds nothing: no record, no session.
    // (A spool with room keeps the session going: test/stack/relay-control-plane.test.ts.)
    const failing = new Proxy(backend.store, {
      get: (t, p, rcv) => (p === 'auditSession' ? () => Promise.reject(new StoreUnavailableError('audit table unavailable')) : (Reflect.get(t, p, rcv) as unknown)),
    });
    r3 = await startRelay('relay-3', failing, 0);
    r1.role.setSiblings!([r2.url]);
    r2.role.setSiblings!([r1.url]);
  }, 30_000);
  afterAll(async () => {
    if (skip) return;
    for (const ws of sockets) ws.close();
    for (const r of [r1, r2, r3]) await r?.server.close(500);
    await backend?.close();
  });

  it.skipIf(skip)('each session reaches one agent with one protocol, only inside the token scope; every one is audited once', async () => {
    const a = await tunnel(r1, A);
    sockets.push(a.ws);
    const expected: Array<[string, string, string, string, number]> = []; // user, agent, protocol, outcome, status
    const check = async (user: string, scope: string | undefined, body: Record<string, unknown>, want: number): Promise<void> => {
      const status = await session(r1, userToken(SECRET, user, scope), body);
      expect([user, scope, status]).toEqual([user, scope, want]);
      expected.push([user, body.agentId as string, body.protocol as string, want === 200 ? 'answered' : 'refused-scope', want]);
    };
    await check('nobody', undefined, ask(A), 403); // a token without a scope opens no session
    await check('bea', `agents:${B.id}`, ask(A), 403);
    await check('ann', `agents:${B.id},${A.id}`, ask(A), 200);
    await check('fay', '*@files', ask(A), 403);
    await check('fay', '*@files,shell', ask(A), 200);
    await check('gus', `group:${A.client}`, ask(A), 403); // A is not in the agents table yet: in no group
    await backend.store.checkin(checkinOf(A), Date.now());
    await check('gus', `group:${A.client}`, ask(A), 200);
    await check('gus', `group:${A.client}@rdp`, ask(A), 403);
    await check('hal', 'group:client-none', ask(A), 403);
    await backend.store.rebuildGroups(Date.now(), { name: 'groups-test', token: (await backend.store.acquireLease('groups-test', 'test', 60_000, Date.now()))! });
    await check('ida', `group:${A.client}/${A.os}`, ask(A), 200);
    // Not sessions: no identity (401) or no agent and protocol (400): counted, never audited.
    expect(await session(r1, null, ask(A))).toBe(401);
    expect(await session(r1, userToken('another-secret', 'eve', '*'), ask(A))).toBe(401);
    expect(await session(r1, userToken(SECRET, 'ann', '*'), { agentId: A.id, command: 'x' })).toBe(400);

    expect(a.commands).toEqual(['shell whoami', 'shell whoami', 'shell whoami', 'shell whoami']);
    const rows = await backend.rows();
    expect(rows.map((r) => [r.user_name, r.agent_id, r.protocol, r.outcome, r.status])).toEqual(expected);
    for (const r of rows) {
      expect(r.relay).toBe('relay-1');
      expect(r.ended_ms).not.toBeNull();
      expect(r.ended_ms!).toBeGreaterThanOrEqual(r.started_ms);
    }
  });

  it.skipIf(skip)('a session sent to the wrong relay is forwarded and audited once, by the relay that decides it', async () => {
    const c = await tunnel(r1, C);
    sockets.push(c.ws);
    const before = (await backend.rows()).length;
    const token = userToken(SECRET, 'ops', `agents:${C.id}`);
    // Presence is written within 250 ms of the open; until then relay-2 rightly answers 404 (audited).
    let status = 0;
    let tries = 0;
    for (const deadline = Date.now() + 5000; status !== 200 && Date.now() < deadline; tries++) {
      status = await session(r2, token, ask(C));
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    const rows = (await backend.rows()).slice(before);
    expect(rows.filter((r) => r.outcome === 'answered').map((r) => [r.user_name, r.agent_id, r.relay])).toEqual([['ops', C.id, 'relay-1']]);
    expect(rows.filter((r) => r.outcome !== 'answered').every((r) => r.outcome === 'not-connected' && r.relay === 'relay-2')).toBe(true);
    expect(rows).toHaveLength(tries);
    // Refused at the entry relay: audited there, never forwarded.
    expect(await session(r2, userToken(SECRET, 'ops', `agents:${A.id}`), ask(C))).toBe(403);
    const last = (await backend.rows()).at(-1)!;
    expect([last.relay, last.outcome, last.user_name]).toEqual(['relay-2', 'refused-scope', 'ops']);
    expect(c.commands).toEqual(['shell whoami']);
  });

  it.skipIf(skip)('no audit record, no session: a database that cannot take it and a spool with no room fail the session with 503, and the agent gets nothing', async () => {
    const b = await tunnel(r3, B);
    sockets.push(b.ws);
    expect(await session(r3, userToken(SECRET, 'ops', '*'), ask(B))).toBe(503);
    expect(b.commands).toEqual([]);
  });
});
